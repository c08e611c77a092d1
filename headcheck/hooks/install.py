"""Install and remove the native pre-push hook (for repositories without pre-commit).

The hook is a small sh script that runs `<python> -m headcheck hook pre-push "$@"` with the Python that
installed it. It is recognised by a marker line, so that uninstall removes only our hook and install never
overwrites someone else's unless forced. A forced install keeps the other hook (git-lfs installs one to
upload objects) as `pre-push.headcheck-saved` and runs it after headcheck with the same stdin; uninstall
puts it back.
"""

from __future__ import annotations

import os
import shlex
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

from .repo import Repo

MARKER = "# headcheck-pre-push-hook v1"
SAVED_SUFFIX = ".headcheck-saved"
HOOK_NAME = "pre-push"

TEMPLATE = """#!/bin/sh
{marker}: installed by `headcheck hook install`; `headcheck hook uninstall` removes it.
# Judges the checkpoints of the commits being pushed; bypass once with `git push --no-verify`.
HEADCHECK_PYTHON={python}
if [ ! -x "$HEADCHECK_PYTHON" ]; then
    echo "headcheck pre-push hook: $HEADCHECK_PYTHON is gone; reinstall with 'headcheck hook install --force'" >&2
    exit 1
fi
refs=$(cat)
printf '%s\\n' "$refs" | "$HEADCHECK_PYTHON" -m headcheck hook pre-push{options} "$@" || exit $?
saved="$(dirname "$0")/{hook}{saved}"
if [ -x "$saved" ]; then
    printf '%s\\n' "$refs" | "$saved" "$@" || exit $?
fi
"""


class HookExistsError(Exception):
    """A pre-push hook that is not ours is in the way."""


@dataclass(frozen=True)
class Installed:
    path: Path
    saved: Path | None  # the foreign hook kept aside, when --force moved one


def hook_path(repo: Repo) -> Path:
    return repo.path_of("hooks") / HOOK_NAME


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def is_ours(path: Path) -> bool:
    return MARKER in _text(path)


def script(python: str = sys.executable, fail_on: str | None = None) -> str:
    options = f" --fail-on {shlex.quote(fail_on)}" if fail_on else ""
    return TEMPLATE.format(marker=MARKER, python=shlex.quote(python), options=options, hook=HOOK_NAME,
                           saved=SAVED_SUFFIX)


def install(repo: Repo, *, force: bool = False, fail_on: str | None = None, python: str = sys.executable) -> Installed:
    path = hook_path(repo)
    saved = path.with_name(path.name + SAVED_SUFFIX)
    moved = None
    if (path.exists() or path.is_symlink()) and not is_ours(path):
        if not force:
            whose = "git-lfs' pre-push hook" if "git lfs pre-push" in _text(path) else "a pre-push hook not written by headcheck"
            raise HookExistsError(
                f"{path} is {whose}; use --force to keep it as {saved.name} (it then runs after headcheck, "
                "with the same input), or call `headcheck hook pre-push \"$@\"` from it"
            )
        if saved.exists():
            raise HookExistsError(f"{saved} exists already; move it away first")
        os.replace(path, saved)
        moved = saved
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.headcheck-tmp")
    tmp.write_text(script(python, fail_on), encoding="utf-8")
    tmp.chmod(tmp.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    os.replace(tmp, path)
    return Installed(path, moved)


def uninstall(repo: Repo) -> tuple[Path, Path | None] | None:
    """Remove our hook (restoring a saved one); None when there is none. Raises HookExistsError for a foreign hook."""
    path = hook_path(repo)
    if not (path.exists() or path.is_symlink()):
        return None
    if not is_ours(path):
        raise HookExistsError(f"{path} was not written by headcheck; left alone")
    path.unlink()
    saved = path.with_name(path.name + SAVED_SUFFIX)
    if saved.exists() or saved.is_symlink():
        os.replace(saved, path)
        return path, path
    return path, None
