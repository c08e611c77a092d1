"""git-LFS pointers as stored in git, and the local LFS object store they point into.

A file tracked with git-lfs is committed as a small pointer (spec v1):

    version https://git-lfs.github.com/spec/v1
    oid sha256:<64 hex digits>
    size <bytes>

The real content lives in `<git-common-dir>/lfs/objects/<oid[0:2]>/<oid[2:4]>/<oid>` once it was added or
fetched on this machine (`lfs.storage` moves that folder).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .repo import Repo
from ..read.lfs import LFS_SIGNATURE, MAX_POINTER_BYTES

_OID = re.compile(rb"^oid sha256:([0-9a-f]{64})$", re.MULTILINE)
_SIZE = re.compile(rb"^size (\d+)$", re.MULTILINE)


@dataclass(frozen=True)
class Pointer:
    oid: str
    size: int


def parse_pointer(data: bytes) -> Pointer | None:
    """The pointer a blob holds, or None when the blob is real content."""
    if len(data) > MAX_POINTER_BYTES or not data.startswith(LFS_SIGNATURE):
        return None
    oid, size = _OID.search(data), _SIZE.search(data)
    if oid is None or size is None:
        return None
    return Pointer(oid.group(1).decode(), int(size.group(1)))


def objects_dir(repo: Repo) -> Path:
    storage = repo.config("lfs.storage")
    common = repo.common_dir()
    root = common / "lfs" if not storage else (Path(storage) if Path(storage).is_absolute() else common / storage)
    return root / "objects"


def local_object(objects: Path, pointer: Pointer) -> Path | None:
    """The local object for POINTER when it is present and has the pointer's size (it is not re-hashed)."""
    path = objects / pointer.oid[0:2] / pointer.oid[2:4] / pointer.oid
    try:
        return path if path.is_file() and path.stat().st_size == pointer.size else None
    except OSError:
        return None
