"""The local git-LFS object store, where the objects of pointers (parsed in read/lfs.py) live once fetched.

A file tracked with git-lfs is committed as a small pointer; its content lives in
`<git-common-dir>/lfs/objects/<oid[0:2]>/<oid[2:4]>/<oid>` once it was added or fetched on this machine
(`lfs.storage` moves that folder).
"""

from __future__ import annotations

from pathlib import Path

from .repo import Repo
from ..read.lfs import Pointer


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
