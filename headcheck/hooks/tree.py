"""Materialise one checkpoint folder of a commit into a temporary directory, for scan_facts to read.

Small blobs are written; git-LFS pointers are replaced by a symlink to the local LFS object when it is
present (big weights are never copied) and left out when it is not, so that the scan goes on without them
and the caller can say which files were not checked. A shard index whose shards are left out is left out
with them (a partial shard set would read as a broken checkpoint rather than an unchecked one).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from .lfs import local_object
from .repo import BlobReader, TreeEntry
from ..read.lfs import MAX_POINTER_BYTES, MalformedPointer, Pointer, parse_pointer


@dataclass(frozen=True)
class Skipped:
    name: str  # file name inside the folder
    pointer: Pointer | None  # the LFS pointer whose object is missing; None for a file left out with its shards
    shards: tuple[str, ...] = ()  # for a left-out shard index: its shards that are missing


@dataclass(frozen=True)
class Materialized:
    path: Path
    linked: tuple[str, ...]  # files that are symlinks into the local LFS store
    skipped: tuple[Skipped, ...]


def materialize(blobs: BlobReader, entries: list[TreeEntry], dest: Path, lfs_objects: Path) -> Materialized:
    """Write ENTRIES (the files directly inside one folder) into DEST."""
    dest.mkdir(parents=True, exist_ok=True)
    linked: list[str] = []
    skipped: list[Skipped] = []
    for entry in entries:
        target = dest / entry.name
        size, chunks = blobs.stream(entry.oid)
        if size <= MAX_POINTER_BYTES:
            data = b"".join(chunks)
            try:
                pointer = parse_pointer(data)
            except MalformedPointer:  # content as far as git-lfs is concerned: the scan says what is wrong with it
                pointer = None
            if pointer is None:
                target.write_bytes(data)
            elif (found := local_object(lfs_objects, pointer)) is not None:
                _link(found, target)
                linked.append(entry.name)
            else:
                skipped.append(Skipped(entry.name, pointer))
            continue
        with target.open("wb") as fh:  # real content committed without LFS: streamed, never held in memory
            for chunk in chunks:
                fh.write(chunk)
    skipped.extend(_drop_incomplete_shard_sets(dest, {s.name for s in skipped}))
    return Materialized(dest, tuple(linked), tuple(skipped))


def _link(source: Path, target: Path) -> None:
    try:
        os.symlink(source, target)
    except OSError:  # no symlinks (some Windows setups): a copy is slower but reads the same
        shutil.copyfile(source, target)


def _drop_incomplete_shard_sets(dest: Path, missing: set[str]) -> list[Skipped]:
    if not missing:
        return []
    dropped = []
    for index in sorted(dest.glob("*.index.json")):
        try:
            weight_map = json.loads(index.read_text(encoding="utf-8")).get("weight_map")
            shards = sorted({s for s in weight_map.values() if isinstance(s, str)})
        except (ValueError, AttributeError, UnicodeDecodeError):
            continue  # a broken index is the scan's to report
        absent = tuple(s for s in shards if s in missing)
        if not absent:
            continue
        for shard in shards:
            if shard in (".", "..") or Path(shard).name != shard:
                continue  # only files of this folder are ours to remove; the scan reports odd shard paths
            if (dest / shard).is_symlink() or (dest / shard).is_file():
                (dest / shard).unlink()
        index.unlink()
        dropped.append(Skipped(index.name, None, absent))
    return dropped
