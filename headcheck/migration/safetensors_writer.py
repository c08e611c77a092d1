"""Write a safetensors file tensor by tensor, streaming bytes from their sources.

Hand-written because safetensors' own writers need every tensor in memory (torch or numpy) at once.
"""

from __future__ import annotations

import errno
import io
import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, ContextManager, Iterable

from ..read.safetensors_header import nbytes

ALIGNMENT = 8  # the format pads the header so tensor data starts 8-byte aligned
_NO_KERNEL_COPY = {errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP}


@dataclass(frozen=True)
class PendingTensor:
    name: str
    dtype: str
    shape: tuple[int, ...]
    length: int
    open: Callable[[], ContextManager[tuple[BinaryIO, int]]]  # yields (stream at first byte, length)


def header_bytes(tensors: Iterable[PendingTensor], metadata: dict[str, str]) -> bytes:
    header: dict[str, object] = {"__metadata__": metadata}
    offset = 0
    for tensor in tensors:
        if nbytes(tensor.dtype, tensor.shape) != tensor.length:
            raise ValueError(f"{tensor.name}: {tensor.length} bytes do not fit shape {tensor.shape} {tensor.dtype}")
        header[tensor.name] = {"dtype": tensor.dtype, "shape": list(tensor.shape), "data_offsets": [offset, offset + tensor.length]}
        offset += tensor.length
    raw = json.dumps(header, separators=(",", ":")).encode()
    return raw + b" " * (-len(raw) % ALIGNMENT)


def write_safetensors(path: Path, tensors: list[PendingTensor], on_bytes: Callable[[int], None] | None = None,
                      chunk: int = 1 << 20) -> None:
    """Write `tensors` in order. Bytes from plain files are copied in the kernel (os.copy_file_range)."""
    raw = header_bytes(tensors, {"format": "pt"})
    buffer = bytearray(chunk)
    with path.open("wb") as sink:
        sink.write(struct.pack("<Q", len(raw)))
        sink.write(raw)
        for tensor in tensors:
            with tensor.open() as (source, length):
                if not (isinstance(source, io.BufferedReader) and _copy_in_kernel(source, sink, length, on_bytes)):
                    _copy_through_python(source, sink, length, buffer, on_bytes, tensor.name)


def _copy_in_kernel(source: io.BufferedReader, sink: BinaryIO, length: int, on_bytes) -> bool:
    """Copy with os.copy_file_range; False (nothing copied) where the kernel or file system cannot."""
    sink.flush()
    src_at, dst_at, remaining = source.tell(), sink.tell(), length
    while remaining:
        try:
            copied = os.copy_file_range(source.fileno(), sink.fileno(), remaining, src_at, dst_at)
        except (AttributeError, OSError) as exc:  # not Linux, or EXDEV/ENOSYS/EINVAL
            if remaining == length and (isinstance(exc, AttributeError) or exc.errno in _NO_KERNEL_COPY):
                return False
            raise
        if not copied:
            raise OSError(f"source ended {remaining} bytes early (truncated file?)")
        src_at, dst_at, remaining = src_at + copied, dst_at + copied, remaining - copied
        if on_bytes:
            on_bytes(copied)
    sink.seek(dst_at)
    return True


def _copy_through_python(source: BinaryIO, sink: BinaryIO, length: int, buffer: bytearray, on_bytes,
                         name: str) -> None:
    view = memoryview(buffer)
    remaining = length
    while remaining:
        read = source.readinto(view[:min(len(buffer), remaining)])
        if not read:
            raise OSError(f"{name}: source ended {remaining} bytes early (truncated file?)")
        sink.write(view[:read])
        remaining -= read
        if on_bytes:
            on_bytes(read)


class ByteComparer:
    """Compares streams block by block, reusing two buffers (zero-filling new ones per tensor cost more
    than the comparison itself)."""

    def __init__(self, chunk: int = 1 << 20):
        self.left, self.right = bytearray(chunk), bytearray(chunk)

    def same(self, left: BinaryIO, right: BinaryIO, length: int) -> bool:
        a, b, size = self.left, self.right, len(self.left)
        remaining = length
        while remaining:
            n = min(size, remaining)
            if left.readinto(memoryview(a)[:n]) != n or right.readinto(memoryview(b)[:n]) != n:
                return False
            # bytearray equality is a memcmp; memoryview equality compares item by item in a slow path
            if (a != b) if n == size else (a[:n] != b[:n]):
                return False
            remaining -= n
        return True
