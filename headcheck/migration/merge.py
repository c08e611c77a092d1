"""The bytes of a merged tensor, computed with numpy (no torch): an adapter folded into a base weight.

Each tensor is widened to float32 (bfloat16 exactly, by a 16-bit shift), merged in float32, and stored back in the
checkpoint's dtype (bfloat16 rounded to nearest even, as torch rounds). One tensor at a time: the peak is a few
copies of the largest adapted matrix, whatever the checkpoint's size.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..read.tensor_info import TensorInfo
from .tensor_bytes import tensor_chunks

FLOATS = {"F32": "<f4", "F16": "<f2"}


class MergeError(ValueError):
    """A tensor headcheck cannot merge (its dtype or shapes do not fit)."""


class MergeUnavailableError(Exception):
    """numpy, which merging needs, is not installed (the 'export' extra); said before anything is written."""


def require_numpy() -> Any:
    """numpy, imported only when an adapter is merged: scan and every other migrate run without it."""
    try:
        import numpy
    except ImportError:
        raise MergeUnavailableError("merging an adapter into the base weights needs numpy: "
                                    "pip install 'headcheck[export]'") from None
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

    def compute(self, root: Path) -> bytes:
        np = require_numpy()
        base = _read(root, self.base)
        if self.kind == "scale":  # a factor folded into a weight (T5's tied-embedding output scaling)
            return _encode((base * np.float32(self.scaling)).astype(np.float32), self.base.dtype)
        b = _read(root, self.lora_b)
        if self.kind == "vera":  # adapters' Vera: hidden @ (vera_B @ B @ vera_D @ A).T * scaling
            vera_b, vera_d = (_read(root, info) for info in self.vera)
            merged = base + np.float32(self.scaling) * (vera_b @ b @ vera_d @ _read(root, self.lora_a))
        elif self.kind == "lora":
            delta = self._delta(np, _read(root, self.lora_a), b)
            merged = base + np.float32(self.scaling) * (delta.T if self.transposed else delta)
        else:  # (IA)^3 scales the layer's output: each output of the weight, and the bias, by the same factor
            factor = np.float32(self.scaling) * self._per_output(np, b.reshape(-1))
            if base.ndim == 1:
                merged = base * factor
            else:
                merged = base * (factor[None, :] if self.transposed else factor[:, None])
        if merged.shape != base.shape:
            raise MergeError(f"{self.target}: the merged tensor has shape {merged.shape}, the base {base.shape}")
        return _encode(merged.astype(np.float32), self.base.dtype)


    def chunks(self, root: Path):
        """The merged bytes as the writer takes a tensor's bytes (one chunk: the tensor is computed whole)."""
        yield memoryview(self.compute(root))

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
    np = require_numpy()
    raw = b"".join(bytes(chunk) for chunk in tensor_chunks(root, info))
    if info.dtype == "BF16":  # bfloat16 is the upper half of a float32: shift it back into place
        return (np.frombuffer(raw, "<u2").astype("<u4") << 16).view("<f4").reshape(info.shape)
    if info.dtype not in FLOATS:
        raise MergeError(f"{info.name}: cannot merge a {info.dtype} tensor")
    return np.frombuffer(raw, FLOATS[info.dtype]).astype(np.float32).reshape(info.shape)


def _encode(values, dtype: str) -> bytes:
    np = require_numpy()
    if dtype == "BF16":  # round to nearest even on the 16 bits dropped
        bits = values.view("<u4").astype(np.uint64)
        rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
        return rounded.astype("<u2").tobytes()
    return values.astype(FLOATS[dtype]).tobytes()
