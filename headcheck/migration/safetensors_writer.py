"""Write a safetensors file tensor by tensor, streaming bytes from their sources.

Hand-written because safetensors' own writers need every tensor in memory (torch or numpy) at once.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import xxhash

from ..read.safetensors_header import nbytes
from .tensor_bytes import span_windows
from .threads import WRITERS, on_threads, split_by_bytes

ALIGNMENT = 8  # the format pads the header so tensor data starts 8-byte aligned
CACHE_LINE = 64  # and ours pads it further, so the data sits where its source does within a cache line (_padding)


@dataclass(frozen=True)
class PendingTensor:
    name: str
    dtype: str
    shape: tuple[int, ...]
    length: int
    chunks: Callable[[], Iterator[memoryview]]  # the tensor's bytes, in order
    # the file and offset its bytes are copied from as they are (a safetensors source); None: computed or unpacked.
    # write_safetensors reads runs of such tensors that lie one after another through shared windows (span_windows)
    mapped_from: tuple[Path, int] | None = None


def header_bytes(tensors: Sequence[PendingTensor], metadata: dict[str, str]) -> bytes:
    header: dict[str, object] = {"__metadata__": metadata}
    offset = 0
    for tensor in tensors:
        if nbytes(tensor.dtype, tensor.shape) != tensor.length:
            raise ValueError(f"{tensor.name}: {tensor.length} bytes do not fit shape {tensor.shape} {tensor.dtype}")
        header[tensor.name] = {"dtype": tensor.dtype, "shape": list(tensor.shape), "data_offsets": [offset, offset + tensor.length]}
        offset += tensor.length
    raw = json.dumps(header, separators=(",", ":")).encode()
    return raw + b" " * _padding(tensors, 8 + len(raw))


def _padding(tensors: Sequence[PendingTensor], data_start: int) -> int:
    """Spaces after the header's JSON: the data starts 8-byte aligned, at the offset within a cache line that puts
    the most bytes where their source has them. The kernel copies fastest between equally aligned addresses: an
    8-byte shift cost 1.6x the CPU of copying bert-base (AMD EPYC, Linux 6.18)."""
    shifts: dict[int, int] = {}
    offset = 0
    for tensor in tensors:
        if tensor.mapped_from is not None:
            shift = (tensor.mapped_from[1] - offset) % CACHE_LINE
            shifts[shift] = shifts.get(shift, 0) + tensor.length
        offset += tensor.length
    best = max(shifts, key=shifts.__getitem__, default=None)
    if best is None or best % ALIGNMENT:  # nothing mapped, or a source not 8-byte aligned itself
        return -data_start % ALIGNMENT
    return (best - data_start) % CACHE_LINE


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
        halves = on_threads(lambda group: _write_group(fd, group, on_bytes), _shares(placed))
        return {name: digest for half in halves for name, digest in half}


def _shares(placed: list[tuple[PendingTensor, int]]) -> list[list[tuple[PendingTensor, int]]]:
    """The writers' work: each thread copies its half of the copied bytes, then computes its half of the computed
    tensors (which a merge's file order puts together at the end: split by bytes alone, one thread computed them all
    while the other had ended; and a computed tensor may wait for its arithmetic's import, merge.numpy_meanwhile)."""
    copied = [item for item in placed if item[0].mapped_from is not None]
    made = [item for item in placed if item[0].mapped_from is None]
    shares = itertools.zip_longest(*(split_by_bytes(part, WRITERS, lambda item: item[0].length) for part in (copied, made)),
                                   fillvalue=[])
    return [share_copied + share_made for share_copied, share_made in shares]


def _write_group(fd: int, group: list[tuple[PendingTensor, int]], on_bytes) -> list[tuple[str, bytes]]:
    digests = []
    for run in _runs(group):
        if run[0][0].mapped_from is not None:
            digests.extend(_write_run(fd, run, on_bytes))
            continue
        tensor, offset = run[0]
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


def _runs(group: list[tuple[PendingTensor, int]]) -> Iterator[list[tuple[PendingTensor, int]]]:
    """Consecutive tensors whose bytes follow one another in one source file (written one after another, they
    follow one another in the output too); every other tensor is a run of its own."""
    run: list[tuple[PendingTensor, int]] = []
    for item in group:
        tensor = item[0]
        if run and tensor.mapped_from is not None and (last := run[-1][0]).mapped_from is not None and \
                tensor.mapped_from == (last.mapped_from[0], last.mapped_from[1] + last.length):
            run.append(item)
            continue
        if run:
            yield run
        run = [item]
    if run:
        yield run


def _write_run(fd: int, run: list[tuple[PendingTensor, int]], on_bytes) -> list[tuple[str, bytes]]:
    """The run's bytes follow one another in source and output alike, so each mapped window is written with one
    call and digested tensor by tensor: a write per tensor took the file's lock 4 times as often and made copying
    bert-base a quarter slower."""
    path, start = run[0][0].mapped_from
    spans = [(tensor.mapped_from[1], tensor.mapped_from[1] + tensor.length) for tensor, _ in run]
    digests = [xxhash.xxh3_128() for _ in run]
    done = 0
    for window, parts in span_windows(path, spans):
        for index, part in parts:
            digests[index].update(part)
        _pwrite_all(fd, window, run[0][1] + done)
        done += len(window)
        if on_bytes:
            on_bytes(len(window))
    if done != spans[-1][1] - start:
        raise OSError(f"{run[0][0].name}: the source gave {done} bytes, not {spans[-1][1] - start}")
    return [(tensor.name, digest.digest()) for (tensor, _), digest in zip(run, digests)]


def _pwrite_all(fd: int, chunk: memoryview, at: int) -> None:
    done = 0
    while done < len(chunk):  # a write may take only part of a large chunk
        with chunk[done:] as rest:  # released even when the write fails, so the source mapping can close
            done += os.pwrite(fd, rest, at + done)
