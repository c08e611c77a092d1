"""Torch pickle tensor index, hand-written: no library reads it without importing torch and running the file's code."""

from __future__ import annotations

import io
import math
import pathlib
import pickle
import pickletools
import re
import tarfile
import zipfile
from typing import BinaryIO, Callable, NamedTuple

from headcheck.errors import InputError, UnsafePickleError
from .safetensors_header import DTYPE_SIZES as _ITEMSIZE
from .torch_zip import read_data_pkl, records_torch_ignores
from .tensor_info import TensorIndex, TensorInfo

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
# A storage's location is where torch.load puts it back (without map_location): a device type torch knows, with
# an optional index; anything else makes it raise.
_DEVICE = re.compile(r"(cpu|cuda|mps|meta|xpu|hpu|mtia|xla|maia|privateuseone)(:\d+)?")

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


class _Globals(set):
    """The globals one pickle names, and `notes` on what else the scan saw (a set, so a stand-in scanner fits)."""

    notes: list[str]


def _scan_globals(f: io.BufferedIOBase) -> _Globals:
    """Every global one pickle names, read from its opcodes without running any (picklescan's method).

    STACK_GLOBAL takes module and name from the stack, so track the last two pushed values; anything
    that is not a plain (or memoised) string push makes the reference unresolvable, which counts as unsafe.
    A PROTO anywhere but first is noted: pickle reads on, a strict reader (and any hand-written one) stops.
    """
    found = _Globals()
    found.notes = notes = []
    first = f.tell()
    memo: dict[int, str | None] = {}
    prev2: str | None = None
    prev1: str | None = None
    try:
        for op, arg, pos in pickletools.genops(f):
            name = op.name
            if name == "PROTO" and pos != first:
                notes.append(f"a second PROTO opcode (protocol {arg}) at byte {pos - first} of a pickle; torch.save "
                             "writes one, first")
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
    legacy = False  # legacy persistent ids carry a sixth field, view metadata

    def __init__(self, f: BinaryIO, notes: list[str]):
        super().__init__(f)
        self.notes = notes
        self.problems: list[str] = []  # why torch.load would refuse the file, raised once every pickle is scanned
        self.storages: dict[str, _Storage] = {}

    def find_class(self, module: str, name: str) -> object:
        # Second line of defence: _scan_globals already refused anything outside the allow-list.
        try:
            return _ALLOWED[f"{module}.{name}"]
        except KeyError:
            raise UnsafePickleError(self.rel_name, [_clean(f"{module}.{name}")]) from None

    def persistent_load(self, pid: object) -> _Storage:
        # torch's persistent id: ('storage', storage_type, key, location, numel[, view_metadata])
        ok = isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage" and isinstance(pid[1], _DType)
        if not (ok and isinstance(pid[2], (str, int)) and type(pid[4]) is int and pid[4] >= 0):
            raise ValueError("unexpected persistent id")
        key, location, fields = pid[2], pid[3], 6 if self.legacy else 5
        if len(pid) != fields:  # torch.load unpacks exactly these
            self.problems.append(f"a persistent id of {len(pid)} fields, not {fields}")
        if not (isinstance(location, str) and _DEVICE.fullmatch(location)):
            self.problems.append(f"storage {_clean(repr(key))}: location {_clean(repr(location))} is not a device")
        if type(key) is not str:  # torch.load reads data/<key> all the same
            self.notes.append(f"storage key {_clean(repr(key))} is not a string")
        storage = self.storages.setdefault(str(key), _Storage(pid[1].code, str(key), pid[4]))  # torch: first wins
        return storage


def _load(f: io.BufferedIOBase, rel_name: str, notes: list[str], unpickler: _Unpickler | None = None) -> object:
    """Scan one pickle from `f`, refuse it if it names a global outside the allow-list, else unpickle it
    (with `unpickler`, when its persistent ids are wanted)."""
    start = f.tell()
    found = _scan_globals(f)
    notes += getattr(found, "notes", ())
    unsafe = sorted({_clean(g) for g in found if g not in _ALLOWED})
    if unsafe:
        raise UnsafePickleError(rel_name, unsafe)
    f.seek(start)
    unpickler = unpickler or _Unpickler(f, notes)
    unpickler.rel_name = rel_name
    return unpickler.load()


def _load_checked(f: BinaryIO, rel_name: str, notes: list[str], ok: Callable[[object], bool], problem: str) -> object:
    obj = _load(f, rel_name, notes)
    if not ok(obj):  # never repr() it: a hostile object's repr can be exponentially large
        raise InputError(f"{rel_name}: not a readable PyTorch checkpoint (legacy format: {problem})")
    return obj


class _Read(NamedTuple):
    obj: object
    prefix: str | None  # the zip folder of the storages; None for the legacy format
    sizes: dict[str, int]  # every zip entry's size ({} for legacy)
    storages: dict[str, _Storage]  # by key, as the persistent ids give them


def _refuse_if(problems: list[str], rel_name: str) -> None:
    if problems:
        raise InputError(f"{rel_name}: not a readable PyTorch checkpoint ({problems[0]}; torch.load refuses it)")


def _read_object(f: BinaryIO, rel_name: str, notes: list[str]) -> _Read:
    """The pickled object and where its storages are, read as torch.load reads them (or refused)."""
    head = f.read(tarfile.BLOCKSIZE)
    if not head:
        raise InputError(f"{rel_name}: not a readable PyTorch checkpoint (empty file)")
    f.seek(0)
    if head.startswith(b"PK\x03\x04"):  # torch's own test for the zip format
        try:
            data, prefix, sizes = read_data_pkl(f, rel_name, notes)
        except (InputError, OSError):
            raise
        except Exception as e:  # zipfile raises BadZipFile, but also EOFError, zlib.error, UnicodeDecodeError...
            raise InputError(f"{rel_name}: not a readable PyTorch checkpoint (corrupt or truncated zip: "
                             f"{_clean(str(e) or type(e).__name__)})") from None
        stream = io.BytesIO(data)
        unpickler = _Unpickler(stream, notes)
        obj = _load(stream, rel_name, notes, unpickler)
        _refuse_if(unpickler.problems, rel_name)
        if stream.read(1):  # torch.load stops at STOP
            notes.append(f"data.pkl holds {len(data) - stream.tell() + 1} bytes after the pickle's end")
        return _Read(obj, prefix, sizes, unpickler.storages)
    try:  # torch.load tries its oldest format, a tar of pickles, before the legacy stream
        tarfile.TarInfo.frombuf(head, tarfile.ENCODING, "surrogateescape")
    except tarfile.HeaderError:
        pass
    else:
        raise InputError(f"{rel_name}: not a readable PyTorch checkpoint (neither zip nor legacy torch format: "
                         "a tar archive, which torch.load reads as its oldest format)")
    # Legacy: magic number, protocol version, sys info, the object, its storage keys (torch.load unpickles
    # all five), then each storage's record in the order of the keys.
    # Check the magic from the head first so arbitrary bytes never drive a large read.
    head_f = io.BytesIO(head[:64])
    try:
        magic = _load(head_f, rel_name, notes)
    except (ValueError, EOFError, pickle.UnpicklingError):
        magic = None
    if type(magic) is not int or magic != _LEGACY_MAGIC:
        raise InputError(f"{rel_name}: not a readable PyTorch checkpoint (neither zip nor legacy torch format)")
    if zipfile.is_zipfile(f):  # transformers tests this way (zip end record anywhere in the tail), then mmaps
        raise InputError(f"{rel_name}: a legacy torch stream that also ends like a zip archive (a polyglot): "
                         "zip readers see another checkpoint, and transformers' torch.load(mmap=True) refuses it")
    f.seek(head_f.tell())
    _load_checked(f, rel_name, notes, lambda v: type(v) is int and v == _LEGACY_PROTOCOL,
                  f"the protocol version is not {_LEGACY_PROTOCOL}")
    _load_checked(f, rel_name, notes, lambda v: isinstance(v, dict), "sys_info is not a dict")
    unpickler = _Unpickler(f, notes)
    unpickler.legacy = True
    obj = _load(f, rel_name, notes, unpickler)
    keys = _load_checked(f, rel_name, notes, lambda v: isinstance(v, list) and all(type(k) is str for k in v),
                         "the storage keys are not a list of strings")
    _refuse_if(unpickler.problems + _walk_storage_records(f, keys, unpickler.storages, notes), rel_name)
    return _Read(obj, None, {}, unpickler.storages)


def _walk_storage_records(f: BinaryIO, keys: list[str], storages: dict[str, _Storage], notes: list[str]) -> list[str]:
    """Follow the legacy storage records (element count, then the bytes) as torch.load fills the storages from
    them: why it would refuse the file, or [] (a note for bytes after the last record). Seeks past the bytes."""
    at, end = f.tell(), f.seek(0, io.SEEK_END)
    for key in keys:
        storage = storages.get(key)
        if storage is None:
            return [f"storage key {_clean(repr(key))} names no storage of the object"]
        if at + 8 > end:
            return [f"storage {_clean(repr(key))}: its record is cut off"]
        f.seek(at)
        count = int.from_bytes(f.read(8), "little", signed=True)
        if count != storage.numel:
            return [f"storage {_clean(repr(key))}: its record holds {count} elements, the pickle says {storage.numel}"]
        at += 8 + count * _ITEMSIZE[storage.dtype]
        if at > end:
            return [f"storage {_clean(repr(key))}: its record ends past the end of the file"]
    if unfilled := sorted(set(storages) - set(keys)):
        notes.append(f"storage {_clean(repr(unfilled[0]))} has no record; torch.load leaves its memory unset")
    if at < end:
        notes.append(f"{end - at} bytes after the last storage record")
    return []


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
    itemsize, numel = _ITEMSIZE[t.dtype], math.prod(t.shape)
    last = t.offset + sum((size - 1) * step for size, step in zip(t.shape, t.stride))  # its farthest element
    if numel and (last + 1) * itemsize > t.storage.numel * _ITEMSIZE[t.storage.dtype]:  # whatever its strides
        raise InputError(f"{rel_name}: tensor {_clean(repr(name))} extends past the end of its storage (offset "
                         f"{t.offset}, shape {list(t.shape)}, strides {_clean(str(list(t.stride)))}): torch refuses it")
    transposed = len(t.shape) == 2 and not _is_contiguous(t.shape, t.stride) and _is_contiguous(t.shape[::-1], t.stride[::-1])
    if prefix is not None and (transposed or _is_contiguous(t.shape, t.stride)):
        span = (t.offset * itemsize, (t.offset + numel) * itemsize)
    return TensorInfo(name=name, dtype=t.dtype, shape=t.shape, file=rel_name, span=span, storage=storage,
                      transposed=transposed)


def read_pickle_index(source: pathlib.Path | BinaryIO, rel_name: str) -> TensorIndex:
    """Name -> TensorInfo for every top-level tensor of a torch.save state dict, without loading any storage;
    its `notes` say what torch.load reads past though torch.save never writes it.

    `source` is a path or a seekable binary stream (e.g. ranged reads of a remote file).
    """
    notes: list[str] = []
    try:
        if isinstance(source, pathlib.Path):
            with source.open("rb") as f:
                read = _read_object(f, rel_name, notes)
        else:
            read = _read_object(source, rel_name, notes)
    except InputError:
        raise
    except OSError as e:
        raise InputError(f"{rel_name}: cannot read ({e.strerror or e})") from None
    except EOFError:
        raise InputError(f"{rel_name}: not a readable PyTorch checkpoint (truncated pickle)") from None
    except Exception as e:  # any other malformed structure reaching genops, the unpickler or our stand-ins
        raise InputError(f"{rel_name}: not a readable PyTorch checkpoint (corrupt pickle: {_clean(str(e))})") from None
    obj = read.obj
    if not isinstance(obj, dict):
        kind = "a tensor" if isinstance(obj, _Tensor) else type(obj).__name__
        raise InputError(f"{rel_name}: not a state dict (top-level object is {kind})")
    if not any(isinstance(v, _Tensor) for v in obj.values()):  # training checkpoints nest the state dict
        obj = next((obj[k] for k in ("state_dict", "model") if isinstance(obj.get(k), dict)), obj)
    index = TensorIndex(
        (name, _tensor_info(name, t, rel_name, read.prefix, read.sizes))
        for name, t in obj.items()
        if isinstance(name, str) and isinstance(t, _Tensor)
    )
    if read.prefix is not None:
        notes += records_torch_ignores(list(read.sizes), read.prefix, set(read.storages))
    index.notes = _summarised(notes)
    return index


def _summarised(notes: list[str], shown: int = 3) -> tuple[str, ...]:
    """Each note once, in the order seen; past the first few, how many more (a file can repeat one per tensor)."""
    distinct = list(dict.fromkeys(notes))
    if len(distinct) > shown:
        distinct[shown - 1:] = [f"{distinct[shown - 1]} (and {len(distinct) - shown} more irregularities)"]
    return tuple(distinct)
