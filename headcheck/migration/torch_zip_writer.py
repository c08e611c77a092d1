"""Write a state dict in torch.save's zip format without torch, streaming each tensor's bytes from its source.

adapters' load_adapter reads a head as `torch.load(pytorch_model_head.bin, weights_only=True)`, so a migrated
head keeps that format, and headcheck must write it where torch is not installed. The file is laid out byte for
byte as torch.save (2.x) writes a state dict of contiguous tensors, one storage per tensor; only the random
.data/serialization_id differs (ours is derived from the content: equal inputs give equal files).
"""

from __future__ import annotations

import contextlib
import math
import struct
import zlib
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Iterator

import xxhash

from ..read.pickle_index import STORAGE_DTYPES
from ..read.safetensors_header import nbytes
from .plan import MigrationError
from .safetensors_writer import PendingTensor

ALIGNMENT = 64  # torch pads every record so its data starts 64-byte aligned (storages can be mapped in place)
_STORAGE_CLASSES = {code: name for name, code in STORAGE_DTYPES.items()}
_LOCAL = struct.Struct("<4s5H3L2H")  # signature, version, flags, method, time, date, crc, sizes, name, extra
_DESCRIPTOR = struct.Struct("<4s3L")  # after the data: signature, crc, sizes
_CENTRAL = struct.Struct("<4s6H3L5H2L")  # ..., as the local header, then comment, disk, attributes, offset
_END64 = struct.Struct("<4sQ2H2L4Q")  # ZIP64 end record: ..., entries, directory size, directory offset
_LOCATOR = struct.Struct("<4sLQL")
_END = struct.Struct("<4s4H2LH")
_UTF8 = 0x0800  # names are UTF-8
_FLAGS = _UTF8 | 0x0008  # sizes and CRC follow the data (known once it is streamed)
_LIMIT = 0xFFFFFFFF  # torch switches to ZIP64 fields past this; head files never get there
_BATCH = 1000  # pairs per SETITEMS, as Python's pickler batches them


def write_torch_zip(path: Path, tensors: list[PendingTensor],
                    on_bytes: Callable[[int], None] | None = None) -> dict[str, bytes]:
    """Write `tensors` as an OrderedDict state dict, reading each source byte once; return each tensor's
    digest of the bytes as read, for checking the finished file."""
    for tensor in tensors:
        if tensor.dtype not in _STORAGE_CLASSES:  # torch.save writes these with _rebuild_tensor_v3 instead
            raise MigrationError(f"{tensor.name}: dtype {tensor.dtype} has no typed storage torch.save would name")
        if tensor.length != nbytes(tensor.dtype, tensor.shape):
            raise MigrationError(f"{tensor.name}: {tensor.length} bytes do not fit shape {tensor.shape} {tensor.dtype}")
    prefix = f"{path.stem}/"  # torch names the archive's folder after the file
    digests: dict[str, bytes] = {}
    with path.open("wb") as sink:
        archive = _Archive(sink)
        pickled = data_pkl(tensors)
        archive.record(prefix + "data.pkl", [pickled], len(pickled))
        for name, content in ((".format_version", b"1"), (".storage_alignment", str(ALIGNMENT).encode()),
                              ("byteorder", b"little")):
            archive.record(prefix + name, [content], len(content))
        for key, tensor in enumerate(tensors):
            digest = xxhash.xxh3_128()
            chunks = tensor.chunks()
            with contextlib.closing(chunks):
                archive.record(f"{prefix}data/{key}", _digested(chunks, digest, on_bytes), tensor.length, tensor.name)
            digests[tensor.name] = digest.digest()
        archive.record(prefix + "version", [b"3\n"], 2)
        archive.record(prefix + ".data/serialization_id", [_serialization_id(digests)], 40)
        archive.close()
    return digests


def _digested(chunks: Iterator[memoryview], digest, on_bytes) -> Iterator[memoryview]:
    for chunk in chunks:
        digest.update(chunk)
        yield chunk
        if on_bytes:
            on_bytes(len(chunk))


def _serialization_id(digests: dict[str, bytes]) -> bytes:
    # torch writes 40 digits, partly random; ours come from the tensors' digests
    combined = xxhash.xxh3_128(b"".join(name.encode() + d for name, d in digests.items())).intdigest()
    return f"{combined % 10**40:040d}".encode()


class _Archive:
    """Records appended one after another, each streamed once, then the central directory, as torch's writer
    (miniz) lays them out."""

    def __init__(self, sink: BinaryIO):
        self.sink = sink
        self.entries: list[tuple[bytes, int, int, int, int]] = []  # name, flags, crc, size, local header offset

    def record(self, name: str, chunks: Iterable[bytes | memoryview], length: int, what: str = "") -> None:
        raw, offset = name.encode(), self.sink.tell()
        if offset + length > _LIMIT:
            raise MigrationError(f"{name}: records beyond 4 GiB need ZIP64 fields this writer does not write")
        flags = _FLAGS if length else _UTF8  # miniz writes an empty record without a data descriptor
        padding = -(offset + _LOCAL.size + len(raw) + 4) % ALIGNMENT
        extra = b"FB" + struct.pack("<H", padding) + b"Z" * padding
        self.sink.write(_LOCAL.pack(b"PK\x03\x04", 0, flags, 0, 0, 0, 0, 0, 0, len(raw), len(extra)) + raw + extra)
        crc = size = 0
        for chunk in chunks:
            crc = zlib.crc32(chunk, crc)
            size += len(chunk)
            self.sink.write(chunk)
        if size != length:
            raise OSError(f"{what or name}: the source gave {size} bytes, not {length}")
        if length:
            self.sink.write(_DESCRIPTOR.pack(b"PK\x07\x08", crc, size, size))
        self.entries.append((raw, flags, crc, size, offset))

    def close(self) -> None:
        start = self.sink.tell()
        for raw, flags, crc, size, offset in self.entries:
            self.sink.write(_CENTRAL.pack(b"PK\x01\x02", 0, 0, flags, 0, 0, 0, crc, size, size, len(raw),
                                          0, 0, 0, 0, 0, offset) + raw)
        end, count = self.sink.tell(), len(self.entries)
        if end > _LIMIT:
            raise MigrationError("head files beyond 4 GiB need ZIP64 fields this writer does not write")
        self.sink.write(_END64.pack(b"PK\x06\x06", _END64.size - 12, 0x031E, 0x2D, 0, 0, count, count,
                                    end - start, start))
        self.sink.write(_LOCATOR.pack(b"PK\x06\x07", 0, end, 1))
        self.sink.write(_END.pack(b"PK\x05\x06", 0, 0, count, count, end - start, start, 0))


def data_pkl(tensors: list[PendingTensor]) -> bytes:
    """The pickle torch.save writes for OrderedDict(name -> tensor), one storage per tensor, keys 0, 1, ...
    The opcodes are emitted by hand: Python's pickler cannot name torch's globals without importing torch."""
    p = _Pickler()
    ordered_dict = p.global_("collections", "OrderedDict")
    p.op(b")R")  # OrderedDict(): EMPTY_TUPLE, REDUCE
    p.memoize()
    memo: dict[str, int] = {}  # what torch's pickler memoises once and then refers to
    for start in range(0, len(tensors), _BATCH):
        batch = tensors[start:start + _BATCH]
        if len(batch) > 1:
            p.op(b"(")  # MARK: SETITEMS takes every pair pushed since
        for key, tensor in enumerate(batch, start):
            p.string(tensor.name)
            p.once(memo, "rebuild", lambda: p.global_("torch._utils", "_rebuild_tensor_v2"))
            p.op(b"((")  # MARK for the arguments, MARK for the persistent id
            p.once(memo, "storage", lambda: p.string("storage"))
            cls = _STORAGE_CLASSES[tensor.dtype]
            p.once(memo, cls, lambda: p.global_("torch", cls))
            p.string(str(key))
            p.once(memo, "cpu", lambda: p.string("cpu"))
            p.int(math.prod(tensor.shape))  # the storage's element count
            p.op(b"t")  # TUPLE
            p.memoize()
            p.op(b"Q")  # BINPERSID: the storage
            p.int(0)  # storage offset
            p.tuple(tensor.shape)
            p.tuple(_contiguous_stride(tensor.shape))
            p.op(b"\x89")  # NEWFALSE: requires_grad
            p.get(ordered_dict)
            p.op(b")R")  # backward hooks: OrderedDict()
            p.memoize()
            p.op(b"t")  # TUPLE of the arguments
            p.memoize()
            p.op(b"R")  # REDUCE: _rebuild_tensor_v2(...)
            p.memoize()
        p.op(b"u" if len(batch) > 1 else b"s")  # SETITEMS or, for one pair, SETITEM
    return p.finish()


def _contiguous_stride(shape: tuple[int, ...]) -> tuple[int, ...]:
    stride, step = [], 1
    for size in reversed(shape):
        stride.append(step)
        step *= max(size, 1)  # torch's strides skip empty dimensions
    return tuple(reversed(stride))


class _Pickler:
    """The few protocol-2 opcodes a state dict needs, memoised as Python's pickler numbers them."""

    def __init__(self):
        self.out = bytearray(b"\x80\x02")  # PROTO 2
        self.slots = 0

    def op(self, code: bytes) -> None:
        self.out += code

    def memoize(self) -> int:
        slot, self.slots = self.slots, self.slots + 1
        self.out += b"q" + bytes([slot]) if slot < 256 else b"r" + struct.pack("<I", slot)  # (LONG_)BINPUT
        return slot

    def get(self, slot: int) -> None:
        self.out += b"h" + bytes([slot]) if slot < 256 else b"j" + struct.pack("<I", slot)  # (LONG_)BINGET

    def once(self, memo: dict[str, int], key: str, push: Callable[[], int]) -> None:
        """Push an object the first time, refer to its memo slot after."""
        if key in memo:
            self.get(memo[key])
        else:
            memo[key] = push()

    def global_(self, module: str, name: str) -> int:
        self.out += f"c{module}\n{name}\n".encode()
        return self.memoize()

    def string(self, text: str) -> int:
        raw = text.encode("utf-8", "surrogatepass")
        self.out += b"X" + struct.pack("<I", len(raw)) + raw  # BINUNICODE
        return self.memoize()

    def int(self, value: int) -> None:
        if value < 256:
            self.out += b"K" + bytes([value])  # BININT1
        elif value < 65536:
            self.out += b"M" + struct.pack("<H", value)  # BININT2
        elif value < 2**31:
            self.out += b"J" + struct.pack("<i", value)  # BININT
        else:
            raw = value.to_bytes(value.bit_length() // 8 + 1, "little", signed=True)
            self.out += b"\x8a" + bytes([len(raw)]) + raw  # LONG1

    def tuple(self, values: tuple[int, ...]) -> None:
        if not values:
            self.out += b")"  # EMPTY_TUPLE, never memoised
            return
        if len(values) > 3:
            self.out += b"("  # MARK
        for value in values:
            self.int(value)
        self.out += b"t" if len(values) > 3 else b"\x85\x86\x87"[len(values) - 1:len(values)]  # TUPLE(1|2|3)
        self.memoize()

    def finish(self) -> bytes:
        return bytes(self.out + b".")  # STOP
