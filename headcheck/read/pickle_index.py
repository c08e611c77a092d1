"""Torch pickle tensor index, hand-written: no library reads it without importing torch and running the file's code."""

from __future__ import annotations

import io
import math
import pathlib
import pickle
import pickletools
import tarfile
import zipfile
from typing import BinaryIO, Callable, NamedTuple

from headcheck.errors import InputError, UnsafePickleError
from .safetensors_header import DTYPE_SIZES as _ITEMSIZE
from .torch_zip import read_data_pkl
from .tensor_info import TensorInfo

# _rebuild_tensor_v2 pickles carry the dtype in the typed storage class.
STORAGE_DTYPES = {
    "DoubleStorage": "F64", "FloatStorage": "F32", "HalfStorage": "F16", "BFloat16Storage": "BF16",
    "LongStorage": "I64", "IntStorage": "I32", "ShortStorage": "I16", "CharStorage": "I8",
    "ByteStorage": "U8", "BoolStorage": "BOOL",
}
# _rebuild_tensor_v3 pickles (dtypes torch serialises as UntypedStorage + dtype) name the dtype as a global.
_TORCH_DTYPES = {
    "float64": "F64", "float32": "F32", "float16": "F16", "bfloat16": "BF16", "int64": "I64", "int32": "I32",
    "int16": "I16", "int8": "I8", "uint8": "U8", "bool": "BOOL", "uint16": "U16", "uint32": "U32",
    "uint64": "U64", "float8_e4m3fn": "F8_E4M3", "float8_e5m2": "F8_E5M2",
}
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C  # first pickle of a legacy (pre-1.6, non-zip) torch.save file
_LEGACY_PROTOCOL = 1001  # its second pickle; torch.load refuses any other

def _clean(text: str) -> str:
    """One short printable line: messages quote names and bytes taken from a possibly hostile file."""
    text = " ".join(text.split())
    return (text if text.isprintable() else text.encode("ascii", "backslashreplace").decode())[:200]


class _DType(NamedTuple):
    """Stand-in for a torch storage class or torch dtype: only its safetensors code matters."""

    code: str


class _Storage(NamedTuple):
    dtype: str  # "U8" for UntypedStorage, whose numel is a byte count
    key: str
    numel: int


class _Tensor(NamedTuple):
    storage: _Storage
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]
    dtype: str


class _OrderedDict(dict):
    def __setstate__(self, state: object) -> None:  # state_dict() attaches `_metadata` via BUILD; unused here
        pass


def _is_ints(value: object) -> bool:
    return isinstance(value, tuple) and all(type(x) is int and x >= 0 for x in value)


def _tensor(storage: object, offset: object, size: object, stride: object, dtype: object) -> _Tensor:
    # Check every field so a crafted pickle cannot smuggle odd objects into TensorInfo.
    ok = isinstance(storage, _Storage) and type(offset) is int and offset >= 0 and isinstance(dtype, _DType)
    if not (ok and _is_ints(size) and _is_ints(stride) and len(size) == len(stride)):
        raise ValueError("bad tensor record")
    return _Tensor(storage, offset, size, stride, dtype.code)


def _rebuild_tensor(storage, offset, size, stride, *_rest):  # v1 and v2 share the leading arguments
    return _tensor(storage, offset, size, stride, _DType(getattr(storage, "dtype", "")))


def _rebuild_tensor_v3(storage, offset, size, stride, requires_grad, hooks, dtype, *_rest):
    return _tensor(storage, offset, size, stride, dtype)


def _rebuild_parameter(data, *_rest):  # a Parameter indexes like the tensor it wraps
    if not isinstance(data, _Tensor):
        raise ValueError("bad parameter record")
    return data


def _encode(text, encoding="utf-8"):  # protocol-2 pickles spell bytes as _codecs.encode(str, "latin1")
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1", "utf-8", "utf8", "ascii"):
        raise ValueError("bad _codecs.encode call")
    return text.encode(encoding)


_ALLOWED: dict[str, object] = {
    "collections.OrderedDict": _OrderedDict,
    "torch._utils._rebuild_tensor": _rebuild_tensor,
    "torch._utils._rebuild_tensor_v2": _rebuild_tensor,
    "torch._utils._rebuild_tensor_v3": _rebuild_tensor_v3,
    "torch._utils._rebuild_parameter": _rebuild_parameter,
    "torch._utils._rebuild_parameter_with_state": _rebuild_parameter,
    "torch.Size": tuple,
    "_codecs.encode": _encode,
    "torch.storage.UntypedStorage": _DType("U8"),
    **{f"torch.{name}": _DType(code) for name, code in STORAGE_DTYPES.items()},
    **{f"torch.{name}": _DType(code) for name, code in _TORCH_DTYPES.items()},
}

_STRING_OPS = {"UNICODE", "SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "STRING", "BINSTRING", "SHORT_BINSTRING"}
_MEMO_PUT_OPS = {"PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"}
_MEMO_GET_OPS = {"GET", "BINGET", "LONG_BINGET"}


def _scan_globals(f: io.BufferedIOBase) -> set[str]:
    """Every global one pickle names, read from its opcodes without running any (picklescan's method).

    STACK_GLOBAL takes module and name from the stack, so track the last two pushed values; anything
    that is not a plain (or memoised) string push makes the reference unresolvable, which counts as unsafe.
    """
    found: set[str] = set()
    memo: dict[int, str | None] = {}
    prev2: str | None = None
    prev1: str | None = None
    try:
        for op, arg, pos in pickletools.genops(f):
            name = op.name
            if name in _STRING_OPS:
                prev2, prev1 = prev1, arg
                continue
            if name in _MEMO_PUT_OPS:
                if name != "MEMOIZE" and arg > pos:  # picklers number memo slots in order; a huge one is a memory bomb
                    raise ValueError("implausible memo index")
                memo[len(memo) if name == "MEMOIZE" else arg] = prev1
                continue
            if name in _MEMO_GET_OPS:
                prev2, prev1 = prev1, memo.get(arg)
                continue
            if name in ("GLOBAL", "INST"):
                found.add(arg.replace(" ", ".", 1))
            elif name == "STACK_GLOBAL":
                ok = isinstance(prev2, str) and isinstance(prev1, str)
                found.add(f"{prev2}.{prev1}" if ok else "<unresolved STACK_GLOBAL>")
            elif name.startswith("EXT"):  # copyreg extension codes resolve to arbitrary globals
                found.add(f"<extension code {arg}>")
            prev2, prev1 = prev1, None
    except ValueError:
        if any(g not in _ALLOWED for g in found):  # a loader runs what came before the break: report that
            return found
        if f.read(1):  # genops reports a cut-off stream as ValueError; only genuine garbage has bytes left
            raise
        raise EOFError from None
    return found


class _Unpickler(pickle.Unpickler):
    rel_name = ""

    def find_class(self, module: str, name: str) -> object:
        # Second line of defence: _scan_globals already refused anything outside the allow-list.
        try:
            return _ALLOWED[f"{module}.{name}"]
        except KeyError:
            raise UnsafePickleError(self.rel_name, [_clean(f"{module}.{name}")]) from None

    def persistent_load(self, pid: object) -> _Storage:
        # torch's persistent id: ('storage', storage_type, key, location, numel[, view_metadata])
        ok = isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage" and isinstance(pid[1], _DType)
        if not (ok and isinstance(pid[2], (str, int)) and type(pid[4]) is int):
            raise ValueError("unexpected persistent id")
        return _Storage(pid[1].code, str(pid[2]), pid[4])


def _load(f: io.BufferedIOBase, rel_name: str) -> object:
    """Scan one pickle from `f`, refuse it if it names a global outside the allow-list, else unpickle it."""
    start = f.tell()
    unsafe = sorted({_clean(g) for g in _scan_globals(f) if g not in _ALLOWED})
    if unsafe:
        raise UnsafePickleError(rel_name, unsafe)
    f.seek(start)
    unpickler = _Unpickler(f)
    unpickler.rel_name = rel_name
    return unpickler.load()


def _load_checked(f: BinaryIO, rel_name: str, ok: Callable[[object], bool], problem: str) -> object:
    obj = _load(f, rel_name)
    if not ok(obj):  # never repr() it: a hostile object's repr can be exponentially large
        raise InputError(f"{rel_name}: not a readable PyTorch checkpoint (legacy format: {problem})")
    return obj


def _read_object(f: BinaryIO, rel_name: str) -> tuple[object, str | None, dict[str, int]]:
    """The pickled object, the zip folder of its storages and every zip entry's size (None, {} for legacy)."""
    head = f.read(tarfile.BLOCKSIZE)
    if not head:
        raise InputError(f"{rel_name}: not a readable PyTorch checkpoint (empty file)")
    f.seek(0)
    if head.startswith(b"PK\x03\x04"):  # torch's own test for the zip format
        try:
            data, prefix, sizes = read_data_pkl(f, rel_name)
        except (InputError, OSError):
            raise
        except Exception as e:  # zipfile raises BadZipFile, but also EOFError, zlib.error, UnicodeDecodeError...
            raise InputError(f"{rel_name}: not a readable PyTorch checkpoint (corrupt or truncated zip: "
                             f"{_clean(str(e) or type(e).__name__)})") from None
        return _load(io.BytesIO(data), rel_name), prefix, sizes
    try:  # torch.load tries its oldest format, a tar of pickles, before the legacy stream
        tarfile.TarInfo.frombuf(head, tarfile.ENCODING, "surrogateescape")
    except tarfile.HeaderError:
        pass
    else:
        raise InputError(f"{rel_name}: not a readable PyTorch checkpoint (neither zip nor legacy torch format: "
                         "a tar archive, which torch.load reads as its oldest format)")
    # Legacy: magic number, protocol version, sys info, the object, its storage keys (torch.load unpickles
    # all five); the storages' raw bytes follow and are not read.
    # Check the magic from the head first so arbitrary bytes never drive a large read.
    head_f = io.BytesIO(head[:64])
    try:
        magic = _load(head_f, rel_name)
    except (ValueError, EOFError, pickle.UnpicklingError):
        magic = None
    if type(magic) is not int or magic != _LEGACY_MAGIC:
        raise InputError(f"{rel_name}: not a readable PyTorch checkpoint (neither zip nor legacy torch format)")
    if zipfile.is_zipfile(f):  # transformers tests this way (zip end record anywhere in the tail), then mmaps
        raise InputError(f"{rel_name}: a legacy torch stream that also ends like a zip archive (a polyglot): "
                         "zip readers see another checkpoint, and transformers' torch.load(mmap=True) refuses it")
    f.seek(head_f.tell())
    _load_checked(f, rel_name, lambda v: type(v) is int and v == _LEGACY_PROTOCOL,
                  f"the protocol version is not {_LEGACY_PROTOCOL}")
    _load_checked(f, rel_name, lambda v: isinstance(v, dict), "sys_info is not a dict")
    obj = _load(f, rel_name)
    _load_checked(f, rel_name, lambda v: isinstance(v, list) and all(type(k) is str for k in v),
                  "the storage keys are not a list of strings")
    return obj, None, {}


def _is_contiguous(shape: tuple[int, ...], stride: tuple[int, ...]) -> bool:
    expected = 1
    for size, step in zip(reversed(shape), reversed(stride)):
        if size == 0:
            return True
        if size != 1 and step != expected:  # torch ignores the stride of size-1 dims too
            return False
        expected *= size
    return True


def _tensor_info(name: str, t: _Tensor, rel_name: str, prefix: str | None, sizes: dict[str, int]) -> TensorInfo:
    span = None
    storage = None if prefix is None else f"{prefix}data/{t.storage.key}"
    if storage is not None and sizes.get(storage) != t.storage.numel * _ITEMSIZE[t.storage.dtype]:
        raise InputError(f"{rel_name}: tensor {_clean(repr(name))}: its storage {_clean(repr(storage))} is missing "
                         "from the zip or not the size the pickle gives it (torch refuses to load it)")
    transposed = len(t.shape) == 2 and not _is_contiguous(t.shape, t.stride) and _is_contiguous(t.shape[::-1], t.stride[::-1])
    if prefix is not None and (transposed or _is_contiguous(t.shape, t.stride)):
        itemsize, numel = _ITEMSIZE[t.dtype], math.prod(t.shape)
        span = (t.offset * itemsize, (t.offset + numel) * itemsize)
        if numel and span[1] > t.storage.numel * _ITEMSIZE[t.storage.dtype]:
            raise InputError(f"{rel_name}: tensor {_clean(repr(name))} extends past the end of its storage")
    return TensorInfo(name=name, dtype=t.dtype, shape=t.shape, file=rel_name, span=span, storage=storage,
                      transposed=transposed)


def read_pickle_index(source: pathlib.Path | BinaryIO, rel_name: str) -> dict[str, TensorInfo]:
    """Name -> TensorInfo for every top-level tensor of a torch.save state dict, without loading any storage.

    `source` is a path or a seekable binary stream (e.g. ranged reads of a remote file).
    """
    try:
        if isinstance(source, pathlib.Path):
            with source.open("rb") as f:
                obj, prefix, sizes = _read_object(f, rel_name)
        else:
            obj, prefix, sizes = _read_object(source, rel_name)
    except InputError:
        raise
    except OSError as e:
        raise InputError(f"{rel_name}: cannot read ({e.strerror or e})") from None
    except EOFError:
        raise InputError(f"{rel_name}: not a readable PyTorch checkpoint (truncated pickle)") from None
    except Exception as e:  # any other malformed structure reaching genops, the unpickler or our stand-ins
        raise InputError(f"{rel_name}: not a readable PyTorch checkpoint (corrupt pickle: {_clean(str(e))})") from None
    if not isinstance(obj, dict):
        kind = "a tensor" if isinstance(obj, _Tensor) else type(obj).__name__
        raise InputError(f"{rel_name}: not a state dict (top-level object is {kind})")
    if not any(isinstance(v, _Tensor) for v in obj.values()):  # training checkpoints nest the state dict
        obj = next((obj[k] for k in ("state_dict", "model") if isinstance(obj.get(k), dict)), obj)
    return {
        name: _tensor_info(name, t, rel_name, prefix, sizes)
        for name, t in obj.items()
        if isinstance(name, str) and isinstance(t, _Tensor)
    }
