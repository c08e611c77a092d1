"""Hook mode's project configuration: read from the commit being judged, not from the working tree.

A push of commit X is judged by the `[tool.headcheck]` / `.headcheck.toml` that X holds, found from each
checkpoint folder upwards to the repository root, as `headcheck scan` finds it on disk: the rules that come
with a commit judge it, whatever the working tree holds at push time (an edited, uncommitted pyproject.toml
does not let a broken checkpoint through, and a commit that changes the configuration is judged by it).
`--config FILE` (a file on disk) applies to every folder instead; `--no-config` uses none.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path, PurePath, PurePosixPath

from ..judge.suppress import Policy, policy
from ..read.project_config import discover, load_config
from .repo import Repo, TreeEntry


class CommitConfigs:
    """The policy of each checkpoint folder of each commit judged; every configuration is read once."""

    def __init__(self, repo: Repo, *, config_file: Path | None = None, no_config: bool = False,
                 ignores: Iterable[str] = (), require_export: Iterable[str] = ()):
        self.repo = repo
        self.ignores = tuple(ignores)
        self.require_export = tuple(require_export)
        self.no_config = no_config
        # resolved now, so that a bad --config or --ignore is reported before anything is judged
        self.fixed = (policy(load_config(config_file), self.ignores, self.require_export)
                      if config_file is not None else None)
        self.none = policy(None, self.ignores, self.require_export)
        self._policies: dict[tuple[str, str], Policy] = {}

    def policy_for(self, commit: str, folder: str, entries: list[TreeEntry]) -> tuple[Policy, PurePath]:
        """(policy, the path its patterns are matched against) for FOLDER (repository-relative) at COMMIT."""
        if self.fixed is not None:  # a file on disk: its patterns are relative to its folder on disk
            return self.fixed, Path(os.path.abspath(self.repo.root)) / folder
        if self.no_config:
            return self.none, PurePosixPath(folder)
        key = (commit, folder)
        if key not in self._policies:
            oids = {e.path: e.oid for e in entries}
            start = PurePosixPath(folder)

            def read(path: PurePath) -> bytes | None:
                oid = oids.get(PurePosixPath(path).as_posix())
                if oid is None:
                    return None
                with self.repo.blobs() as blobs:
                    return blobs.read(oid)

            def show(path: PurePath) -> str:
                return f"{PurePosixPath(path).as_posix()}@{commit[:12]}"

            found = discover([start, *start.parents], read, show)
            self._policies[key] = policy(found, self.ignores, self.require_export)
        return self._policies[key], PurePosixPath(folder)
