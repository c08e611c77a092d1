"""Git plumbing for the hooks: resolve revisions, list trees, diff two commits, stream blobs.

Only `git` itself is run (no GitPython); every path list is NUL-separated so names with spaces,
quotes or non-ASCII characters come through unchanged.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ..errors import InputError

ZERO_SHA_CHARS = {"0"}
BLOB_MODES = {"100644", "100755"}  # symlinks (120000) and submodules (160000) are never checkpoint files
CHUNK = 1 << 20


class GitError(InputError):
    """git failed or the repository/revision does not exist (exit code 2, like any unreadable input)."""


def is_zero_sha(sha: str) -> bool:
    return bool(sha) and set(sha) <= ZERO_SHA_CHARS


@dataclass(frozen=True)
class TreeEntry:
    mode: str
    oid: str
    path: str  # POSIX, relative to the repository root

    @property
    def folder(self) -> str:
        """The folder holding the file, '' for the repository root."""
        return self.path.rpartition("/")[0]

    @property
    def name(self) -> str:
        return self.path.rpartition("/")[2]


class Repo:
    """A git working repository (or bare one), addressed by any path inside it."""

    def __init__(self, path: Path | str = "."):
        self.cwd = Path(path)
        if not self.cwd.is_dir():
            raise GitError(f"{self.cwd}: no such directory")
        top = self._run("rev-parse", "--show-toplevel", check=False)
        if top.returncode == 0 and top.stdout.strip():
            self.root = Path(os.fsdecode(top.stdout.strip()))
        else:
            git_dir = self._run("rev-parse", "--absolute-git-dir", check=False)
            if git_dir.returncode != 0:
                raise GitError(f"{self.cwd}: not a git repository")
            self.root = Path(os.fsdecode(git_dir.stdout.strip()))  # bare repository
        self.cwd = self.root

    def _run(self, *args: str, check: bool = True, stdin: bytes | None = None) -> subprocess.CompletedProcess:
        try:
            done = subprocess.run(["git", *args], cwd=self.cwd, input=stdin, capture_output=True, check=False)
        except FileNotFoundError:
            raise GitError("git is not installed (or not on PATH)") from None
        if check and done.returncode != 0:
            message = done.stderr.decode(errors="replace").strip() or f"exit code {done.returncode}"
            raise GitError(f"git {' '.join(args)}: {message}")
        return done

    def text(self, *args: str) -> str:
        return os.fsdecode(self._run(*args).stdout).strip()

    def path_of(self, git_path: str) -> Path:
        """`git rev-parse --git-path` resolved to an absolute path (honours core.hooksPath, worktrees)."""
        found = Path(self.text("rev-parse", "--git-path", git_path))
        return found if found.is_absolute() else self.root / found

    def common_dir(self) -> Path:
        found = Path(self.text("rev-parse", "--git-common-dir"))
        return (found if found.is_absolute() else self.root / found).resolve()

    def config(self, key: str) -> str | None:
        done = self._run("config", "--get", key, check=False)
        return os.fsdecode(done.stdout).strip() if done.returncode == 0 else None

    def commit(self, rev: str) -> str | None:
        """The full sha of the commit REV names, or None when it names no commit here."""
        done = self._run("rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}", check=False)
        if done.returncode != 0:
            return None
        return os.fsdecode(done.stdout).strip() or None

    def ls_tree(self, commit: str) -> list[TreeEntry]:
        """Every regular file of COMMIT's tree."""
        return parse_ls_tree(self._run("ls-tree", "-r", "-z", "--full-tree", commit).stdout)

    def changed_paths(self, base: str, commit: str) -> set[str]:
        """Paths added, modified or deleted between two commits (renames as delete + add)."""
        out = self._run("diff", "--name-only", "--no-renames", "-z", base, commit, "--").stdout
        return {os.fsdecode(p) for p in out.split(b"\0") if p}

    def blobs(self) -> BlobReader:
        return BlobReader(self)


def parse_ls_tree(out: bytes) -> list[TreeEntry]:
    """The regular files in `git ls-tree -r -z` output: `<mode> <kind> <oid>\t<path>` records ended by NUL; paths
    are any bytes but NUL (newlines and tabs included), decoded as the filesystem does."""
    entries = []
    for record in out.split(b"\0"):
        if not record:
            continue
        meta, tab, path = record.partition(b"\t")
        fields = meta.decode("ascii", "replace").split(" ")
        if not tab or not path or len(fields) != 3:
            raise InputError(f"git ls-tree printed an unexpected record: {record[:80]!r}")
        mode, kind, oid = fields
        if kind == "blob" and mode in BLOB_MODES:
            entries.append(TreeEntry(mode, oid, os.fsdecode(path)))
    return entries


class BlobReader:
    """One `git cat-file --batch` process for many blobs; use as a context manager."""

    def __init__(self, repo: Repo):
        self.repo = repo
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> BlobReader:
        self.proc = subprocess.Popen(["git", "cat-file", "--batch"], cwd=self.repo.root,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        return self

    def __exit__(self, *exc) -> None:
        assert self.proc is not None
        self.proc.stdin.close()
        self.proc.stdout.close()
        self.proc.wait()

    def stream(self, oid: str) -> tuple[int, Iterator[bytes]]:
        """(size, chunks) of a blob; the chunks must be consumed before the next call."""
        assert self.proc is not None
        self.proc.stdin.write(oid.encode() + b"\n")
        self.proc.stdin.flush()
        header = self.proc.stdout.readline().split()
        if len(header) != 3 or header[1] != b"blob":
            raise GitError(f"git cat-file: {oid} is not a readable blob ({b' '.join(header).decode(errors='replace')})")
        size = int(header[2])
        return size, _chunks(self.proc.stdout, size)

    def read(self, oid: str) -> bytes:
        _, chunks = self.stream(oid)
        return b"".join(chunks)


def _chunks(fh: BinaryIO, size: int) -> Iterator[bytes]:
    left = size
    while left:
        chunk = fh.read(min(CHUNK, left))
        if not chunk:
            raise GitError("git cat-file: blob ended early")
        left -= len(chunk)
        yield chunk
    fh.read(1)  # the newline after each object
