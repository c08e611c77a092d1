"""One tensor's bytes in its file, as a stream of chunks, read without loading the checkpoint.

safetensors files are mapped window by window (MAP_POPULATE): writing a chunk from the mapping copies
it once, as `cp` does in the kernel, and peak memory stays at two windows whatever the checkpoint size.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import zipfile
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import xxhash

from ..errors import InputError
from ..read.safetensors_header import DTYPE_SIZES, nbytes
from ..read.tensor_info import TensorInfo

WINDOW = 8 << 20  # bytes mapped (or read) at a time
_POPULATE = getattr(mmap, "MAP_POPULATE", 0)  # Linux: fault the window in with one call
_ITEM_FORMATS = {1: "B", 2: "H", 4: "I", 8: "Q"}  # moving elements by size needs no knowledge of the dtype


def tensor_chunks(root: Path, info: TensorInfo) -> Iterator[memoryview]:
    """The tensor's bytes in order, as chunks valid until the next one is requested."""
    if info.span is None:
        raise InputError(f"{info.file}: tensor {info.name!r} is not stored contiguously; re-save it to migrate")
    start, end = info.span
    if info.storage is None:  # safetensors: the span is absolute in the file
        with (root / info.file).open("rb") as fh:
            yield from _mapped(fh.fileno(), start, end, f"{info.file}: {info.name}")
        return
    try:
        yield from _zip_member_chunks(root, info, start, end)
    except (zipfile.BadZipFile, EOFError) as exc:  # a CRC or size the scan had no reason to check (storages are not read)
        raise InputError(f"{info.file}: {info.name}: corrupt or truncated zip member "
                         f"({exc or 'ends early'})") from None


def read_into(root: Path, info: TensorInfo, into: memoryview) -> None:
    """The tensor's bytes copied into `into`, which holds exactly as many. A safetensors tensor is read with pread,
    not mapped: merging reads a few MB per weight on two threads at once, and each mapping takes the process's
    memory map lock (mapped a block at a time, bert-base's 36 merges took 87 ms, two threads no faster than one;
    read so, 23-38 ms on two threads)."""
    if info.span is not None and info.storage is None:
        start, end = info.span
        if end - start != len(into):
            raise InputError(f"{info.file}: {info.name} spans {end - start} bytes, its shape {len(into)}")
        with (root / info.file).open("rb") as fh:
            done = 0
            while done < end - start:
                with into[done:] as rest:
                    read = os.preadv(fh.fileno(), [rest], start + done)
                if not read:
                    raise InputError(f"{info.file}: {info.name} ends {end - start - done} bytes early (truncated file?)")
                done += read
        return
    at = 0
    for chunk in tensor_chunks(root, info):
        into[at:at + len(chunk)] = chunk
        at += len(chunk)
    if at != len(into):
        raise InputError(f"{info.file}: {info.name}: {at} bytes read, {len(into)} expected")


def _zip_member_chunks(root: Path, info: TensorInfo, start: int, end: int) -> Iterator[memoryview]:
    # torch.save never compresses storages, so a stored member seeks cheaply
    with zipfile.ZipFile(root / info.file) as archive, archive.open(info.storage) as member:
        member.seek(start)
        if info.transposed:
            yield _transposed(member.read(end - start), info)
            return
        buffer = memoryview(bytearray(min(WINDOW, end - start)))
        remaining = end - start
        while remaining:
            read = member.readinto(buffer[:min(len(buffer), remaining)])
            if not read:
                raise InputError(f"{info.file}: {info.name} ends {remaining} bytes early (truncated file?)")
            yield buffer[:read]
            remaining -= read


def _mapped(fd: int, start: int, end: int, what: str) -> Iterator[memoryview]:
    at = start
    while at < end:
        base = at - at % mmap.ALLOCATIONGRANULARITY  # mappings start at a granularity boundary
        length = min(end, base + WINDOW) - base
        try:
            window = mmap.mmap(fd, length, offset=base, flags=mmap.MAP_SHARED | _POPULATE, prot=mmap.PROT_READ)
        except ValueError:  # the span reaches past the end of the file
            raise InputError(f"{what} ends {end - at} bytes early (truncated file?)") from None
        view = memoryview(window)
        chunk = view[at - base:length]
        try:
            yield chunk
        finally:  # released here, so that the mapping can close whatever references the caller still holds
            chunk.release()
            view.release()
            window.close()
        at = base + length


def _transposed(block: bytes, info: TensorInfo) -> memoryview:
    """A 2-D tensor's bytes in row order, from storage holding its transpose (the whole tensor in memory:
    transposed tensors are single layers of a few MB)."""
    if len(block) != nbytes(info.dtype, info.shape):
        raise InputError(f"{info.file}: {info.name} ends early (truncated file?)")
    rows = info.shape[0]
    items = memoryview(block).cast(_ITEM_FORMATS[DTYPE_SIZES[info.dtype]])
    return memoryview(b"".join(items[row::rows].tobytes() for row in range(rows)))


def zero_chunks(length: int) -> Iterator[memoryview]:
    zeros = memoryview(bytes(min(WINDOW, length)))
    while length:
        yield zeros[:min(len(zeros), length)]
        length -= min(len(zeros), length)


def file_chunks(path: Path) -> Iterator[memoryview]:
    """A whole file's bytes, a window at a time (copied files are compared with their source this way)."""
    with open(path, "rb") as handle:
        while block := handle.read(WINDOW):
            yield memoryview(block)


def span_windows(path: Path, spans: Sequence[tuple[int, int]]) -> Iterator[tuple[memoryview, list[tuple[int, memoryview]]]]:
    """Each mapped window over a file's spans, from the first span's start to the last one's end, with the
    (index, part) of every span in it; the spans in file order and not overlapping, window and parts valid until
    the next window is requested. The file is mapped a window at a time across the spans, as cp and the
    bare-Python floor read it: a mapping per tensor doubled the mmap and munmap calls of copying bert-4x (521
    tensors) and made the byte check of bert-base take a third longer."""
    if not spans:
        return
    with open(path, "rb") as fh:
        at, first = spans[0][0], 0
        for window in _mapped(fh.fileno(), spans[0][0], spans[-1][1], str(path)):
            stop = at + len(window)
            parts = []
            for index in range(first, len(spans)):
                start, end = spans[index]
                if start >= stop:
                    break
                if max(start, at) < min(end, stop):
                    parts.append((index, window[max(start, at) - at:min(end, stop) - at]))
                if end > stop:  # continues in the next window
                    break
                first = index + 1
            try:
                yield window, parts
            finally:  # released here, so that the mapping can close
                for _, part in parts:
                    part.release()
            at = stop


def span_digests(path: Path, spans: Sequence[tuple[int, int]]) -> list[bytes]:
    """digest_of each span of a file (read as span_windows maps it)."""
    digests = [xxhash.xxh3_128() for _ in spans]
    for _, parts in span_windows(path, spans):
        for index, part in parts:
            digests[index].update(part)
    return [digest.digest() for digest in digests]


def digest_of(chunks: Iterator[memoryview], sink: Callable[[memoryview], Any] | None = None) -> bytes:
    """xxh3-128 of a tensor's bytes: what the write saw, compared with what the file holds afterwards; `sink`
    receives each chunk too (a copy digested on its way)."""
    digest = xxhash.xxh3_128()
    with contextlib.closing(chunks):
        for chunk in chunks:
            digest.update(chunk)
            if sink is not None:
                sink(chunk)
    return digest.digest()
