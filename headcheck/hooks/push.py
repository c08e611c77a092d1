"""What a push asks to judge: git's pre-push stdin, pre-commit's environment, and the fallbacks.

git runs `pre-push <remote-name> <url>` with one stdin line per ref being pushed:

    <local-ref> SP <local-sha> SP <remote-ref> SP <remote-sha> LF

* a deletion has a local sha of zeros: nothing is pushed, nothing to judge;
* a new branch has a remote sha of zeros: the whole tree of the local commit is judged;
* an update is judged on the checkpoint folders holding a file that changed between the two commits;
  when the remote commit is not known locally (someone else pushed since the last fetch) nothing can be
  diffed and the whole tree is judged;
* stdin may be empty (nothing to push) or hold several refs.

pre-commit reads that stdin itself and hands hooks `PRE_COMMIT_TO_REF` only when it found both commits;
for a new branch whose history reaches the root commit, and for `--all-files`, it is absent, and the
commit judged is the local branch pre-commit names (`PRE_COMMIT_LOCAL_BRANCH`), else HEAD.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ..errors import InputError
from .repo import is_zero_sha


@dataclass(frozen=True)
class PushedRef:
    local_ref: str
    local_sha: str
    remote_ref: str
    remote_sha: str

    @property
    def is_deletion(self) -> bool:
        return is_zero_sha(self.local_sha)

    @property
    def is_new(self) -> bool:
        return is_zero_sha(self.remote_sha)


@dataclass(frozen=True)
class Target:
    """One commit to judge; base None means every checkpoint folder of its tree, else those changed since base."""

    commit: str
    base: str | None
    what: str  # for the output: which ref, and why the whole tree when it is


def parse_pre_push(text: str) -> tuple[PushedRef, ...]:
    refs = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.rsplit(maxsplit=3)  # a local ref given as an expression may hold spaces
        if len(parts) != 4 or not all(_is_sha(p) for p in (parts[1], parts[3])):
            raise InputError(
                f"pre-push stdin line {number}: expected '<local-ref> <local-sha> <remote-ref> <remote-sha>', got {line!r}"
            )
        refs.append(PushedRef(*parts))
    return tuple(refs)


def push_targets(refs: tuple[PushedRef, ...], known: Callable[[str], bool]) -> list[Target]:
    """What to judge for each pushed ref; KNOWN tells whether a commit exists in the local repository."""
    targets = []
    for ref in refs:
        if ref.is_deletion:
            continue
        if ref.is_new:
            targets.append(Target(ref.local_sha, None, f"{ref.remote_ref} (new branch: whole tree)"))
        elif not known(ref.remote_sha):
            targets.append(Target(ref.local_sha, None,
                                  f"{ref.remote_ref} (remote commit {ref.remote_sha[:12]} not here: whole tree)"))
        else:
            targets.append(Target(ref.local_sha, ref.remote_sha, f"{ref.remote_ref} (changes since {ref.remote_sha[:12]})"))
    return targets


def hook_commit_candidates(env: Mapping[str, str], ref: str | None = None) -> list[tuple[str, str]]:
    """(revision, where it came from), best first: --ref, PRE_COMMIT_TO_REF, PRE_COMMIT_LOCAL_BRANCH, HEAD."""
    candidates = []
    if ref:
        candidates.append((ref, "--ref"))
    for name in ("PRE_COMMIT_TO_REF", "PRE_COMMIT_LOCAL_BRANCH"):
        if env.get(name):
            candidates.append((env[name], name))
    candidates.append(("HEAD", "HEAD"))
    return candidates


def _is_sha(text: str) -> bool:
    return len(text) in (40, 64) and all(c in "0123456789abcdef" for c in text)
