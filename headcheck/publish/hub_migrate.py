"""Migrate a Hub checkpoint: scan it (headers only), download the folder's files into huggingface_hub's cache,
then run the local migration on them. The same path goes into flex (`to="flex"`) and out of adapters
(`to="transformers"`, `to="peft"`): only the judgement that lets it go on differs."""

from __future__ import annotations

import contextlib
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from ..judge.engine import scan_hub_repo
from ..migration.export_plan import prepare_export
from ..migration.peft_plan import prepare_peft_export
from ..migration.plan import Migration, plan_for
from ..migration.run import MigrateResult, NotConvertibleError, NotExportableError, migrate
from ..model import EXPORT_TARGETS, Report, Verdict
from ..read.facts import build_facts_from
from ..read.hub import HubRepo


@dataclass(frozen=True)
class HubMigration:
    repo: HubRepo  # the scanned revision: repo.sha is what any commit builds on
    report: Report  # the scan of the Hub repository
    result: MigrateResult  # the local migration of its files

    @property
    def to(self) -> str:
        return self.result.migration.target


def open_repo(target: str, *, revision: str | None = None, token: str | None = None, subfolder: str | None = None,
              base: Path | str | None = None, **options) -> tuple[HubRepo, Report]:
    """The repository at a fixed commit, and its scan; refused before anything is downloaded. `options` as for
    migrate: with `to="transformers"` (or "peft") the export is judged (for `head` and `adapter`; the report's exports
    entry then is that judgement) and an adapter repository's `base` model must be found (NotExportableError,
    ExportChoiceError); into flex, NotConvertibleError unless convertible or already flex."""
    repo = HubRepo(target, revision=revision, token=token, subfolder=subfolder)
    report = scan_hub_repo(repo)
    if options.get("to") in EXPORT_TARGETS:
        report, _ = _export_from_headers(repo, report, base, options)
    elif report.verdict not in (Verdict.CONVERTIBLE, Verdict.ALREADY_FLEX):
        raise NotConvertibleError(report)
    return repo, report


def plan_from_headers(repo: HubRepo, report: Report, *, base: Path | str | None = None, **options) -> Migration:
    """What the migration would write, from the scanned headers alone: a dry run downloads no weights."""
    if options.get("to") in EXPORT_TARGETS:
        return _export_from_headers(repo, report, base, options)[1]
    if report.verdict is Verdict.ALREADY_FLEX:  # as migration.run.prepare: a checked copy
        return Migration(report.kind, (), (), (), {}, None)
    return plan_for(report, build_facts_from(repo), head_name=options.get("head_name"),
                    num_choices=options.get("num_choices"))


def _export_from_headers(repo: HubRepo, report: Report, base: Path | str | None, options) -> tuple[Report, Migration]:
    facts = build_facts_from(repo)
    if options["to"] == "peft":
        report, migration = prepare_peft_export(facts, base=base, report=report, token=repo.token)
    else:
        report, migration = prepare_export(facts, head=options.get("head"), adapter=options.get("adapter"),
                                           base=base, report=report, token=repo.token)
    if migration is None:
        raise NotExportableError(report, options["to"])
    return report, migration


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
    """`options` as for migration.run.migrate (force, verify, base, head_name, num_choices, to, head, adapter,
    on_bytes, on_stage): the local migration, with all its checks, of the downloaded files (a Hub base model read
    with the repository's token)."""
    with staged(repo, out.resolve().parent) as folder:
        result = migrate(folder, out, token=repo.token, **options)
    return HubMigration(repo, report, result)
