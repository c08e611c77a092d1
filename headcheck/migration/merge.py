"""The bytes of a merged tensor, computed with numpy (no torch): an adapter folded into a base weight.

Each tensor is widened to float32 (bfloat16 exactly, by a 16-bit shift), merged in float32, and stored back in the
checkpoint's dtype (bfloat16 rounded to nearest even, as torch rounds). One tensor at a time: the peak is a few
copies of the largest adapted matrix, whatever the checkpoint's size.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import MergeUnavailableError
from ..read.safetensors_header import nbytes
from ..read.tensor_info import TensorInfo
from .tensor_bytes import read_into

FLOATS = {"F32": "<f4", "F16": "<f2"}
# Read by the BLAS numpy loads, once, when numpy is imported. The products are small (rank r), and the writer's two
# threads each compute their own: a BLAS pool per call on top of them oversubscribes the cores and spins (measured:
# a 768x8 @ 8x768 product took 30 ms on two busy cores, 0.3 ms with one BLAS thread).
BLOCK_BYTES = 1 << 20  # float32 bytes of a weight merged at a time (see MergedTensor.chunks)
BLAS_THREADS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


class MergeError(ValueError):
    """A tensor headcheck cannot merge (its dtype or shapes do not fit)."""


_MISSING = "merging an adapter into the base weights needs numpy: pip install 'headcheck[export]'"
_importing: list[threading.Thread] = []  # the import numpy_meanwhile started, joined by require_numpy


def numpy_installed() -> None:
    """Raise MergeUnavailableError unless numpy can be found; the plan asks this, so a missing extra is told before
    anything is written (and numpy is imported only when the write starts: a dry run or a refusal never needs it)."""
    if "numpy" in sys.modules:
        return
    try:
        found = importlib.util.find_spec("numpy") is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise MergeUnavailableError(_MISSING)


def numpy_meanwhile(computed) -> None:
    """Import numpy on a thread of its own if any of these computed tensors is a merge: the writer copies the tensors
    it does not compute while numpy loads (its import, about 50 ms, is a seventh of exporting bert-base); the first
    merge waits for it (require_numpy)."""
    if "numpy" in sys.modules or _importing or not any(isinstance(tensor, MergedTensor) for tensor in computed):
        return
    thread = threading.Thread(target=_import_in_background, daemon=True)
    _importing.append(thread)
    thread.start()


def _import_in_background() -> None:
    try:
        _import_numpy()
    except Exception:  # noqa: BLE001 - not printed from this thread: require_numpy imports again and raises it
        pass


def require_numpy() -> Any:
    """numpy, imported only when an adapter is merged: scan and every other migrate run without it."""
    for thread in _importing:  # numpy is in sys.modules from the start of its import: wait for the end
        thread.join()
    return sys.modules.get("numpy") or _import_numpy()


def _import_numpy() -> Any:
    """Imported here first, its BLAS runs one thread (see BLAS_THREADS); the environment is restored afterwards, so
    nothing else (torch in --verify, a user's own code) inherits the setting. A numpy imported earlier keeps its
    pool."""
    saved = {name: os.environ.get(name) for name in BLAS_THREADS}
    os.environ.update(dict.fromkeys(BLAS_THREADS, "1"))
    try:
        import numpy
    except ImportError:
        raise MergeUnavailableError(_MISSING) from None
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return numpy


@dataclass(frozen=True)
class MergedTensor:
    """A base weight (or bias) with an adapter folded in; the others are the adapter's tensors."""

    target: str
    base: TensorInfo
    kind: str  # "lora": base + scaling * B @ A; "vera": base + scaling * b @ B @ d @ A;
    # "ia3": base * scaling * l (row by row); "scale": base * scaling
    scaling: float
    lora_a: TensorInfo | None  # lora and vera (VeRA's shared A)
    lora_b: TensorInfo | None  # B of a LoRA (VeRA's shared B), the vector l of (IA)^3
    transposed: bool = False  # a Conv1D weight, [in, out] (adapters' fan_in_fan_out)
    blocks: tuple[bool, ...] = ()  # a fused q/k/v layer: which of its equal output blocks the adapter holds
    # VeRA's trained vera_B [out, out] and vera_D [r, r] (adapters starts them diagonal, training fills them)
    vera: tuple[TensorInfo, TensorInfo] | None = None

    @property
    def summary(self) -> str:
        what = {"lora": "LoRA merged in", "vera": "VeRA merged in", "ia3": "(IA)^3 scaling folded in",
                "scale": f"times {self.scaling:.6g}"}[self.kind]
        return f"{self.base.name}, {what}"

    @property
    def dtype(self) -> str:  # stored back in the base's dtype
        return self.base.dtype

    @property
    def shape(self) -> tuple[int, ...]:
        return self.base.shape

    def compute(self, root: Path):
        """The merged tensor's bytes, as a buffer (a numpy array's). Copies held at once: the base weight (widened to
        float32, merged in place), the adapter's product (LoRA) and, for a 16-bit dtype, the narrowed result."""
        np = require_numpy()
        base = _read(root, self.base)  # our own writable float32 array
        if self.kind == "scale":  # a factor folded into a weight (T5's tied-embedding output scaling)
            base *= np.float32(self.scaling)
            return _encode(base, self.base.dtype)
        b = _read(root, self.lora_b)
        if self.kind in ("lora", "vera"):
            if self.kind == "vera":  # adapters' Vera: hidden @ (vera_B @ B @ vera_D @ A).T * scaling
                vera_b, vera_d = (_read(root, info) for info in self.vera)
                delta = vera_b @ b @ vera_d @ _read(root, self.lora_a)
            else:
                delta = self._delta(np, _read(root, self.lora_a), b)
            delta *= np.float32(self.scaling)  # base + scaling * (B @ A), each product rounded as before
            delta = delta.T if self.transposed else delta
            if delta.shape != base.shape:
                raise MergeError(f"{self.target}: the merged tensor has shape {delta.shape}, the base {base.shape}")
            base += delta
            del delta
        else:  # (IA)^3 scales the layer's output: each output of the weight, and the bias, by the same factor
            factor = np.float32(self.scaling) * self._per_output(np, b.reshape(-1))
            try:
                if base.ndim == 1:
                    base *= factor
                else:
                    base *= factor[None, :] if self.transposed else factor[:, None]
            except ValueError:  # in place: a factor that does not fit cannot broadcast into the base's shape
                raise MergeError(f"{self.target}: the (IA)^3 vector has {factor.shape[0]} values, the base the shape "
                                 f"{base.shape}") from None
        return _encode(base, self.base.dtype)

    def chunks(self, root: Path):
        """The merged bytes as the writer takes a tensor's bytes. A LoRA on a plain [out, in] weight is merged a
        block of rows at a time (base rows + scaling * B rows @ A: the same products, in the same float32 order), so
        memory stays at one block whatever the matrix's size; other merges compute the tensor whole (one chunk)."""
        info = self.base
        if self.kind != "lora" or self.transposed or self.blocks or info.transposed or info.span is None \
                or len(info.shape) != 2:
            with memoryview(self.compute(root)) as view:
                yield view.cast("B")
            return
        np = require_numpy()
        a, b = _read(root, self.lora_a), _read(root, self.lora_b)
        rows, cols = info.shape
        if a.ndim != 2 or b.ndim != 2 or b.shape[0] != rows or a.shape[1] != cols or b.shape[1] != a.shape[0]:
            raise MergeError(f"{self.target}: B {b.shape} @ A {a.shape} does not fit the base {info.shape}")
        step, row_bytes, start = max(1, BLOCK_BYTES // (4 * cols)), nbytes(info.dtype, (cols,)), info.span[0]
        merged = np.empty((min(step, rows), cols), np.float32)  # each block's result, written before the next
        for first in range(0, rows, step):
            last = min(rows, first + step)
            delta = np.matmul(b[first:last], a, out=merged[:last - first])
            delta *= np.float32(self.scaling)  # then + base: the sum base + scaling * (B @ A) (addition commutes)
            delta += _read(root, dataclasses.replace(info, shape=(last - first, cols),
                                                     span=(start + first * row_bytes, start + last * row_bytes)))
            with memoryview(_encode(delta, info.dtype)) as view:
                yield view.cast("B")

    def _delta(self, np, a, b):
        """B @ A, [out, in]; for a fused layer, as adapters' grouped conv1d computes it: block g of B times block g
        of A, placed at the output block of the g-th matrix the adapter holds, zeros elsewhere."""
        if not self.blocks:
            return b @ a
        held = [i for i, on in enumerate(self.blocks) if on]
        rank, rows = a.shape[0] // len(held), b.shape[0] // len(held)
        delta = np.zeros((rows * len(self.blocks), a.shape[1]), np.float32)
        for j, i in enumerate(held):
            delta[i * rows:(i + 1) * rows] = b[j * rows:(j + 1) * rows] @ a[j * rank:(j + 1) * rank]
        return delta

    def _per_output(self, np, vector):
        """(IA)^3's vector over the layer's outputs; a fused layer's blocks the adapter does not hold keep 1."""
        if not self.blocks:
            return vector
        held = [i for i, on in enumerate(self.blocks) if on]
        rows = vector.shape[0] // len(held)
        full = np.ones(rows * len(self.blocks), np.float32)
        for j, i in enumerate(held):
            full[i * rows:(i + 1) * rows] = vector[j * rows:(j + 1) * rows]
        return full


def _read(root: Path, info: TensorInfo):
    """The tensor as a float32 array of its own (writable), read straight into place (tensor_bytes.read_into)."""
    np = require_numpy()
    if info.dtype != "BF16" and info.dtype not in FLOATS:
        raise MergeError(f"{info.name}: cannot merge a {info.dtype} tensor")
    raw = np.empty(nbytes(info.dtype, info.shape), np.uint8)
    with memoryview(raw) as into:
        read_into(root, info, into)
    if info.dtype == "BF16":  # bfloat16 is the upper half of a float32: shift it back into place
        return (raw.view("<u2").astype("<u4") << 16).view("<f4").reshape(info.shape)
    return raw.view(FLOATS[info.dtype]).astype(np.float32, copy=False).reshape(info.shape)


def _encode(values, dtype: str):
    """float32 `values` (C-contiguous, ours to change) in `dtype`, as a C-contiguous array."""
    np = require_numpy()
    if dtype == "BF16":  # round to nearest even on the 16 bits dropped
        bits = values.view("<u4").astype(np.uint64)
        lsb = bits >> 16
        lsb &= 1
        bits += lsb
        del lsb
        bits += 0x7FFF
        bits >>= 16
        return bits.astype("<u2")
    return np.ascontiguousarray(values.astype(FLOATS[dtype], copy=False))
