"""Recognise git-LFS pointer files, which stand in for weights or configs when `git lfs pull` was not run."""

from __future__ import annotations

from pathlib import Path

LFS_SIGNATURE = b"version https://git-lfs.github.com/spec/v1"
# Pointer files are tiny text files; anything bigger is real content.
MAX_POINTER_BYTES = 1024


def is_lfs_pointer(path: Path) -> bool:
    if path.stat().st_size > MAX_POINTER_BYTES:
        return False
    with path.open("rb") as fh:
        return fh.read(len(LFS_SIGNATURE)) == LFS_SIGNATURE
