"""Migrate a Hub checkpoint: scan it (headers only), download the folder's files into huggingface_hub's cache,
then run the local migration on them."""

from __future__ import annotations

import contextlib
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from ..judge.engine import scan_hub_repo
from ..migration.run import MigrateResult, NotConvertibleError, migrate
from ..model import Report, Verdict
from ..read.hub import HubRepo


@dataclass(frozen=True)
class HubMigration:
    repo: HubRepo  # the scanned revision: repo.sha is what any commit builds on
    report: Report  # the scan of the Hub repository
    result: MigrateResult  # the local migration of its files


def open_repo(target: str, *, revision: str | None = None, token: str | None = None,
              subfolder: str | None = None) -> tuple[HubRepo, Report]:
    """The repository at a fixed commit, and its scan; NotConvertibleError before anything is downloaded."""
    repo = HubRepo(target, revision=revision, token=token, subfolder=subfolder)
    report = scan_hub_repo(repo)
    if report.verdict not in (Verdict.CONVERTIBLE, Verdict.ALREADY_FLEX):
        raise NotConvertibleError(report)
    return repo, report


@contextlib.contextmanager
def staged(repo: HubRepo, near: Path) -> Iterator[Path]:
    """The checkpoint's files as a local folder: links into huggingface_hub's cache (downloaded once, at the
    scanned commit), in a temporary folder next to `near` that is removed afterwards."""
    near.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".headcheck-download-", dir=near) as tmp:
        folder = Path(tmp) / "checkpoint"
        folder.mkdir()
        for name in repo.files():
            (folder / name).symlink_to(repo.download(name))
        yield folder


def migrate_hub(repo: HubRepo, report: Report, out: Path, **options) -> HubMigration:
    """`options` as for migration.run.migrate (force, verify, base, head_name, num_choices, on_bytes,
    on_stage)."""
    with staged(repo, out.resolve().parent) as folder:
        result = migrate(folder, out, **options)
    return HubMigration(repo, report, result)
