"""numpy files beside the weights (.npy, and the .npy members of .npz archives) that np.load unpickles: object
arrays, and .npy files that are no array at all. Only headers are read, as text (`ast.literal_eval`), never
np.load: with allow_pickle=True it would run the very code this looks for.
"""

from __future__ import annotations

import ast
import io
import pickletools
import struct
import zipfile
import zlib
from pathlib import Path

MAGIC = b"\x93NUMPY"
MAX_HEADER = 1 << 16  # numpy refuses longer headers too (np.load's max_header_size is 10000 by default)
MAX_MEMBERS = 10_000  # an .npz holding more is not a side file worth reading member by member
_OPCODES = {op.code.encode("latin1") for op in pickletools.opcodes}


def _has_object(descr: object) -> bool:
    """Whether an .npy `descr` (a dtype string, or a list of (name, dtype[, shape]) fields) holds objects."""
    if isinstance(descr, str):
        return descr.lstrip("<>|=").startswith("O")
    if isinstance(descr, list):
        return any(isinstance(f, (tuple, list)) and len(f) >= 2 and _has_object(f[1]) for f in descr)
    return False


def _header_descr(head: bytes) -> object:
    """The `descr` of an .npy header, or None when the header is not one np.load would read."""
    version = head[6:7]
    if version == b"\x01":
        (size,), start, encoding = struct.unpack("<H", head[8:10]), 10, "latin1"
    elif version in (b"\x02", b"\x03") and len(head) >= 12:
        (size,), start = struct.unpack("<I", head[8:12]), 12
        encoding = "latin1" if version == b"\x02" else "utf8"
    else:
        return None
    text = head[start:start + size]
    if size > MAX_HEADER or len(text) != size:
        return None
    try:
        header = ast.literal_eval(text.decode(encoding))
    except (ValueError, SyntaxError, UnicodeDecodeError, MemoryError, RecursionError, TypeError):
        return None  # np.load refuses the file: nothing of it runs
    return header.get("descr") if isinstance(header, dict) else None


def _looks_pickled(head: bytes, last: bytes) -> bool:
    """A pickle's first opcode, and PROTO or the final STOP: not an LFS pointer or other text left in its place."""
    return head[:1] in _OPCODES and (head[:1] == b"\x80" or last == b".")


def _npy_problem(head: bytes, *, member: bool, last: bytes = b"") -> str | None:
    if not head.startswith(MAGIC):
        # np.load unpickles a file that is neither .npy nor .npz; an .npz member without the magic comes back as bytes
        pickled = not member and _looks_pickled(head, last)
        return "is no .npy array but a pickle (np.load falls back to unpickling it)" if pickled else None
    if _has_object(descr := _header_descr(head)):
        return f"holds an object array (dtype {str(descr)[:80]!r}), stored as a pickle"
    return None


def pickled_arrays(path: Path, rel: str) -> list[str]:
    """One line per array of an .npy or .npz file that np.load loads only with allow_pickle=True (unpickling it).
    Told apart by their first bytes, as np.load does. A file np.load cannot read at all is no finding here:
    nothing of it runs."""
    head_size = MAX_HEADER + 12
    try:
        with path.open("rb") as fh:
            head = fh.read(head_size)
            if head:
                fh.seek(-1, io.SEEK_END)
            last = fh.read(1)
        if not head.startswith(b"PK\x03\x04"):
            problem = _npy_problem(head, member=False, last=last)
            return [f"{rel} {problem}"] if problem else []
        found = []
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist()[:MAX_MEMBERS]:  # np.load reads any member with the magic, whatever its name
                with zf.open(info) as member:  # a bounded read: a bomb inflates no further
                    problem = _npy_problem(member.read(head_size), member=True)
                if problem:
                    found.append(f"{rel}: member {info.filename[:200]!r} {problem}")
        return found
    except (OSError, zipfile.BadZipFile, EOFError, ValueError, NotImplementedError, RuntimeError, zlib.error):
        return []  # unreadable as numpy reads it (or encrypted): np.load fails before any pickle
