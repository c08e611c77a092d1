"""Write a safetensors file tensor by tensor, streaming bytes from their sources.

Hand-written because safetensors' own writers need every tensor in memory (torch or numpy) at once.
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, ContextManager, Iterable

from .tensor_bytes import nbytes

ALIGNMENT = 8  # the format pads the header so tensor data starts 8-byte aligned


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
                      chunk: int = 1 << 20) -> dict[str, str]:
    """Write `tensors` in order; return the sha256 of each tensor's bytes as written."""
    raw = header_bytes(tensors, {"format": "pt"})
    digests: dict[str, str] = {}
    with path.open("wb") as sink:
        sink.write(struct.pack("<Q", len(raw)))
        sink.write(raw)
        for tensor in tensors:
            hasher = hashlib.sha256()
            with tensor.open() as (source, length):
                remaining = length
                while remaining:
                    block = source.read(min(chunk, remaining))
                    if not block:
                        raise OSError(f"{tensor.name}: source ended {remaining} bytes early (truncated file?)")
                    sink.write(block)
                    hasher.update(block)
                    remaining -= len(block)
                    if on_bytes:
                        on_bytes(len(block))
            digests[tensor.name] = hasher.hexdigest()
    return digests


def digest_stream(stream: BinaryIO, length: int, chunk: int = 1 << 20) -> str:
    hasher = hashlib.sha256()
    remaining = length
    while remaining:
        block = stream.read(min(chunk, remaining))
        if not block:
            break
        hasher.update(block)
        remaining -= len(block)
    return hasher.hexdigest()


def digest_span(path: Path, span: tuple[int, int]) -> str:
    with path.open("rb") as fh:
        fh.seek(span[0])
        return digest_stream(fh, span[1] - span[0])
