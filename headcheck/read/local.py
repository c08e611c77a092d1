"""Where checkpoint bytes come from. Facts are built from any Source; only sources do I/O on checkpoints."""

from __future__ import annotations

import os
import re
import stat
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from ..errors import InputError
from .json_text import MAX_JSON_BYTES, parse_json
from .lfs import MalformedPointer, read_pointer_file
from .names import read_by_name
from .safetensors_header import read_safetensors_index
from .tensor_info import TensorInfo


REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+(/[\w.-]+)*(@[\w./-]+)?$")


def looks_like_repo_id(target: str) -> bool:
    """`org/name`, `org/name/sub/folder` or either `@revision`, as the Hub spells repository ids (and folders)."""
    return bool(REPO_ID.match(target))


def names_hub_repo(target: str) -> bool:
    """A Hub repository, not a local path: spelled as one, and no part of it exists here (`models/missing`
    beside an existing `models/` folder is a mistyped path)."""
    path = Path(target)
    # os.path answers False where Path raises (a folder on the way the user may not enter): then a local path
    return (looks_like_repo_id(target) and not os.path.lexists(path)
            and not any(os.path.isdir(parent) for parent in path.parents if parent != Path(".")))


class Source(Protocol):
    label: str  # how reports name the checkpoint

    def files(self) -> tuple[str, ...]: ...

    def read_json(self, rel: str) -> Any: ...

    def read_weights(self, rel: str) -> dict[str, TensorInfo]: ...

    def read_card(self, rel: str) -> dict[str, Any] | None: ...


def check_not_pointer(path: Path, rel: str) -> None:
    try:
        pointer = read_pointer_file(path)
    except MalformedPointer as exc:
        raise InputError(f"{rel}: starts like a git-LFS pointer but is not a valid one ({exc}) "
                         "nor the real file: restore it from the repository") from None
    if pointer is not None:
        raise InputError(f"{rel}: LFS pointer, not the real file: run `git lfs pull`")


def read_json_file(path: Path, rel: str) -> Any:
    with _reading(rel):
        regular_file(path, rel)
        check_not_pointer(path, rel)
        with path.open("rb") as fh:
            raw = fh.read(MAX_JSON_BYTES + 1)
    return parse_json(raw, rel)


@contextmanager
def _reading(rel: str):
    """The OS refusing a read (permission denied, an I/O error, a file removed meanwhile) is unreadable input."""
    try:
        yield
    except OSError as exc:
        raise InputError(f"{rel}: cannot be read ({exc.strerror or exc})") from None


FILE_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
              (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def regular_file(path: Path, rel: str) -> None:
    """Only regular files are read: a FIFO would block, a device never ends, a folder is not a file."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:  # missing, unreachable, or a symlink that leads nowhere or in a circle
        what = "a symlink to nothing readable" if os.path.islink(path) else "cannot be read"
        raise InputError(f"{rel}: {what} ({exc.strerror})") from None
    if not stat.S_ISREG(mode):
        kind = next((name for test, name in FILE_KINDS if test(mode)), "a special file")
        raise InputError(f"{rel}: {kind}, not a regular file")


def read_weights_file(path: Path, rel: str) -> dict[str, TensorInfo]:
    with _reading(rel):
        regular_file(path, rel)
        check_not_pointer(path, rel)
        if rel.endswith(".safetensors"):
            return read_safetensors_index(path, rel)[0]
        from .pickle_index import read_pickle_index  # pickletools and zipfile only for .bin files

        return read_pickle_index(path, rel)


def read_card_file(path: Path) -> dict[str, Any] | None:
    # huggingface_hub's own front-matter reader; imported lazily since most folders have no card worth it.
    from huggingface_hub.repocard import metadata_load

    try:
        return metadata_load(path) or None
    except Exception:  # a broken card is context only, never a reason to fail a scan
        return None


class LocalFolder:
    def __init__(self, root: Path):
        self.root = root
        self.label = str(root)

    def files(self) -> tuple[str, ...]:
        """Regular files, and any entry under a name loaders read, whatever it is: reading it then says why it
        cannot be read (a folder or FIFO named config.json is unreadable input, not an absent file)."""
        try:
            entries = list(self.root.iterdir())
        except OSError as exc:
            raise InputError(f"{self.label}: cannot be listed ({exc.strerror})") from None
        # os.path.isfile: an entry the OS will not even stat is no regular file either
        return tuple(sorted(p.name for p in entries if os.path.isfile(p) or read_by_name(p.name)))

    def read_json(self, rel: str) -> Any:
        return read_json_file(self.root / rel, rel)

    def read_weights(self, rel: str) -> dict[str, TensorInfo]:
        return read_weights_file(self.root / rel, rel)

    def read_card(self, rel: str) -> dict[str, Any] | None:
        return read_card_file(self.root / rel)
