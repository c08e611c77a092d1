"""Write a safetensors file tensor by tensor, streaming bytes from their sources.

Hand-written because safetensors' own writers need every tensor in memory (torch or numpy) at once.
"""

from __future__ import annotations

import contextlib
import json
import os
import struct
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import xxhash

from ..read.safetensors_header import nbytes

ALIGNMENT = 8  # the format pads the header so tensor data starts 8-byte aligned
WRITERS = 2  # threads writing one file: the copy is memory-bound, a second core doubles it


@dataclass(frozen=True)
class PendingTensor:
    name: str
    dtype: str
    shape: tuple[int, ...]
    length: int
    chunks: Callable[[], Iterator[memoryview]]  # the tensor's bytes, in order


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


def write_safetensors(path: Path, tensors: list[PendingTensor],
                      on_bytes: Callable[[int], None] | None = None) -> dict[str, bytes]:
    """Write `tensors` in order, reading each source byte once; return each tensor's digest of the bytes
    as read, for checking the finished file. Every tensor's place is known from the header, so two
    threads write the two halves of the data at once (writing and digesting release the GIL)."""
    raw = header_bytes(tensors, {"format": "pt"})
    data_start = 8 + len(raw)
    placed, offset = [], data_start
    for tensor in tensors:
        placed.append((tensor, offset))
        offset += tensor.length
    with path.open("wb") as sink:
        sink.write(struct.pack("<Q", len(raw)) + raw)
        sink.truncate(offset)
        fd = sink.fileno()
        with ThreadPoolExecutor(max_workers=WRITERS) as pool:
            halves = pool.map(lambda group: _write_group(fd, group, on_bytes), split_by_bytes(placed, WRITERS))
            return {name: digest for half in halves for name, digest in half}


def split_by_bytes(items: list[tuple[PendingTensor, int]], parts: int) -> list[list[tuple[PendingTensor, int]]]:
    """Consecutive groups of about equal byte counts."""
    total = sum(tensor.length for tensor, _ in items) or 1
    groups: list[list] = [[] for _ in range(parts)]
    done = 0
    for item in items:
        groups[min(parts - 1, done * parts // total)].append(item)
        done += item[0].length
    return [group for group in groups if group]


def _write_group(fd: int, group: list[tuple[PendingTensor, int]], on_bytes) -> list[tuple[str, bytes]]:
    digests = []
    for tensor, offset in group:
        digest, at = xxhash.xxh3_128(), offset
        chunks = tensor.chunks()
        with contextlib.closing(chunks):
            for chunk in chunks:
                digest.update(chunk)
                _pwrite_all(fd, chunk, at)
                at += len(chunk)
                if on_bytes:
                    on_bytes(len(chunk))
        if at - offset != tensor.length:
            raise OSError(f"{tensor.name}: the source gave {at - offset} bytes, not {tensor.length}")
        digests.append((tensor.name, digest.digest()))
    return digests


def _pwrite_all(fd: int, chunk: memoryview, at: int) -> None:
    done = 0
    while done < len(chunk):  # a write may take only part of a large chunk
        with chunk[done:] as rest:  # released even when the write fails, so the source mapping can close
            done += os.pwrite(fd, rest, at + done)
