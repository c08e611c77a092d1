"""git-LFS pointer files, which stand in for weights or configs when `git lfs pull` was not run.

Decided as git-lfs 3 decides (lfs/pointer.go, DecodeFrom): at most 1024 bytes, surrounding whitespace
trimmed, blank lines skipped, `version`, `oid`, `size` in that order with `ext-<n>-<name>` extension lines
allowed before any of them, the version one of git-lfs' v1 strings, `oid sha256:<64 lowercase hex>`, and a
size Go's ParseInt reads as a non-negative int64. An empty file, which git-lfs also takes for the pointer
of an empty object, is left to the format readers. Hand-written: no maintained Python library parses pointers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

VERSIONS = ("http://git-media.io/v/2", "https://hawser.github.com/spec/v1", "https://git-lfs.github.com/spec/v1")
MAX_POINTER_BYTES = 1024  # git-lfs never reads a bigger blob as a pointer
KEYS = ("version", "oid", "size")
_GO_SPACE = "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
_EXTENSION = re.compile(r"ext-\d-\w")  # a prefix match, as git-lfs' extRE
_OID = re.compile(r"sha256:([0-9a-f]{64})")
_SIZE = re.compile(r"[+-]?[0-9]+")  # what Go's strconv.ParseInt(value, 10, 64) reads


class MalformedPointer(ValueError):
    """Content that starts like a pointer (its first line names an LFS spec version) but breaks the spec."""


@dataclass(frozen=True)
class Pointer:
    oid: str
    size: int


def parse_pointer(data: bytes) -> Pointer | None:
    """The pointer DATA holds; None when it is content; MalformedPointer when it only looks like one
    (its first line starts with `version `)."""
    if len(data) > MAX_POINTER_BYTES:
        return None
    text = data.decode("utf-8", "surrogateescape").strip(_GO_SPACE)
    if not text.startswith("version "):
        return None
    fields: dict[str, str] = {}
    extensions: dict[str, str] = {}
    for line in text.split("\n"):
        line = line.removesuffix("\r")  # bufio.ScanLines drops one carriage return per line
        if not line:
            continue
        key, space, value = line.partition(" ")
        if not space:
            raise MalformedPointer(f"line {line[:40]!r} is not `key value`")
        if len(fields) == len(KEYS):
            raise MalformedPointer(f"extra line {line[:40]!r}")
        if key != KEYS[len(fields)]:
            if not _EXTENSION.match(key):
                raise MalformedPointer(f"expected key {KEYS[len(fields)]!r}, got {key[:40]!r}")
            extensions[key] = value
            continue
        fields[key] = value
    if fields.get("version") not in VERSIONS:
        raise MalformedPointer("the version is not one git-lfs knows")
    oid = _OID.fullmatch(fields.get("oid", ""))
    if oid is None:
        raise MalformedPointer("no `oid sha256:<64 lowercase hex digits>` line")
    size = fields.get("size", "")
    if not _SIZE.fullmatch(size) or not 0 <= int(size) < 1 << 63:
        raise MalformedPointer(f"size {size[:40]!r} is not a non-negative 64-bit integer")
    priorities = []
    for key, value in extensions.items():
        if not _OID.fullmatch(value):
            raise MalformedPointer(f"extension {key[:40]!r} has no sha256 oid")
        priorities.append(int(key.split("-")[1]))
    if len(set(priorities)) != len(priorities):
        raise MalformedPointer("two extensions share a priority")
    return Pointer(oid.group(1), int(size))


def read_pointer_file(path: Path) -> Pointer | None:
    """parse_pointer on a file, reading at most what a pointer can hold."""
    if path.stat().st_size > MAX_POINTER_BYTES:
        return None
    with path.open("rb") as fh:
        return parse_pointer(fh.read(MAX_POINTER_BYTES + 1))
