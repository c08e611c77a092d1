"""The least a Python process can do for migrate's promise: copy a folder's files (mmap windows, written by two
threads, digested while read) and check every written byte against that digest (two threads). No headcheck
import, no scan, no plan: its wall time against `cp -r` is the ratio no migrate in Python can beat on this
machine.

    python benchmarks/copy_floor.py SRC_FOLDER OUT_FOLDER
"""

from __future__ import annotations

import mmap
import os
import sys
import threading

import xxhash

WINDOW = 8 << 20


def _windows(fd: int, start: int, end: int):
    at = start
    while at < end:
        length = min(WINDOW, end - at)
        window = mmap.mmap(fd, length, offset=at, flags=mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0),
                           prot=mmap.PROT_READ)
        view = memoryview(window)
        yield at, view
        view.release()
        window.close()
        at += length


def _copy(src: int, dst: int, start: int, end: int, digests: list) -> None:
    digest = xxhash.xxh3_128()
    for at, view in _windows(src, start, end):
        digest.update(view)
        os.pwrite(dst, view, at)
    digests.append(digest.digest())


def _digest(fd: int, start: int, end: int, digests: list) -> None:
    digest = xxhash.xxh3_128()
    for _, view in _windows(fd, start, end):
        digest.update(view)
    digests.append(digest.digest())


def _halves(work, size: int, *fds: int) -> list[bytes]:
    half = size // 2 // WINDOW * WINDOW
    results: list[list] = [[], []]
    threads = [threading.Thread(target=work, args=(*fds, start, end, results[i]))
               for i, (start, end) in enumerate(((0, half), (half, size)))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [r[0] for r in results]


def main(src_folder: str, out_folder: str) -> int:
    os.mkdir(out_folder)
    for name in sorted(os.listdir(src_folder)):
        src, out = os.path.join(src_folder, name), os.path.join(out_folder, name)
        size = os.path.getsize(src)
        with open(src, "rb") as source, open(out, "w+b") as sink:
            sink.truncate(size)
            if size == 0:
                continue
            read = _halves(_copy, size, source.fileno(), sink.fileno())
            if _halves(_digest, size, sink.fileno()) != read:
                print(f"{out}: bytes differ from {src}", file=sys.stderr)
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
