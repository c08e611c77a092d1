"""headcheck: classify a checkpoint's prediction head and judge whether it can become an adapters flex head.

The public API, for notebooks and training scripts::

    import headcheck

    report = headcheck.scan("./checkpoint")          # or "org/name", "org/name/subfolder", "org/name@rev"
    report.verdict, report.head.type, report.to_dict()
    result = headcheck.migrate("./checkpoint", "./fixed", verify=True)

Everything else is internal. The layer packages (read, judge, migration, hooks, render, cli) are
imported on first use, so `import headcheck` stays cheap.
"""

from __future__ import annotations

from os import PathLike
from typing import TYPE_CHECKING

from .version import __version__

if TYPE_CHECKING:
    from .migration.run import MigrateResult
    from .model import Report

__all__ = [
    "scan", "migrate", "Report", "Finding", "Head", "Plan", "Rename", "Severity", "Verdict", "Kind", "Layout",
    "Suppression", "ConfigError", "PublishRefusedError",
    "MigrateResult", "Migration", "InputError", "NothingScannedError", "UnsafePickleError", "NotConvertibleError",
    "OutputExistsError", "OutputBusyError", "OutputWriteError", "MigrationError", "VerifyFailedError",
    "VerifyUnavailableError", "NotExportableError", "ExportChoiceError", "BaseModelNameError", "Export", "ExportVerdict",
    "__version__",
]

# public name -> module that defines it, imported when first asked for (PEP 562)
_LAZY = {
    **dict.fromkeys(["Report", "Finding", "Head", "Plan", "Rename", "Severity", "Verdict", "Kind", "Layout",
                     "Suppression", "Export", "ExportVerdict"], "headcheck.model"),
    "ExportChoiceError": "headcheck.judge.export",
    "BaseModelNameError": "headcheck.read.base_model",
    **dict.fromkeys(["InputError", "NothingScannedError", "UnsafePickleError", "ConfigError", "PublishRefusedError"],
                    "headcheck.errors"),
    **dict.fromkeys(["MigrateResult", "NotConvertibleError", "OutputExistsError", "OutputBusyError",
                     "OutputWriteError", "VerifyFailedError", "VerifyUnavailableError", "NotExportableError"],
                    "headcheck.migration.run"),
    **dict.fromkeys(["Migration", "MigrationError"], "headcheck.migration.plan"),
}


def scan(target: str | PathLike, *, head_type: str | None = None, revision: str | None = None,
         token: str | None = None, subfolder: str | None = None) -> Report:
    """Judge one checkpoint: a local folder or file, or a Hub repository `org/name[/subfolder][@revision]`.

    Reads config files and weight headers only. Raises InputError (unreadable input) or
    NothingScannedError (nothing recognisable); findings are data in the returned Report.
    """
    from .judge.engine import scan_target

    return scan_target(str(target), head_type=head_type, revision=revision, token=token, subfolder=subfolder)


def migrate(source: str | PathLike, out: str | PathLike, *, head_name: str | None = None,
            head_type: str | None = None, num_choices: int | None = None, force: bool = False,
            verify: bool = False, base: str | PathLike | None = None, to: str = "flex", head: str | None = None,
            adapter: str | None = None, token: str | None = None) -> MigrateResult:
    """Rewrite a convertible local checkpoint into the adapters flex-head layout in `out`; with
    `to="transformers"`, an exportable one out of adapters, as the transformers class its scan names in
    `exports.transformers` (`head` / `adapter` choose where it carries several; NotExportableError when it is
    not exportable, ExportChoiceError when a choice is missing or names nothing); with `to="peft"`, an adapter
    folder as a PEFT adapter of its base model (`exports.peft`; `verify=True` is refused: VerifyUnavailableError).
    An adapter folder's `base` is a folder or a Hub repository id (default: adapter_config.json's model_name),
    fetched into the HF cache with `token` (default: HF_TOKEN or the stored login); BaseModelNameError when it
    names neither.

    Every tensor's bytes are checked and the result must scan as already-flex before `out` appears;
    `verify=True` also compares outputs and loss with transformers/adapters (the 'verify' extra).
    Raises NotConvertibleError (with the scan's Report), OutputExistsError, OutputBusyError (another
    migrate writes `out`), OutputWriteError (disk full, read-only), MigrationError, VerifyUnavailableError,
    InputError or NothingScannedError; nothing is written then.
    """
    from pathlib import Path

    from .migration.run import migrate as run_migration

    return run_migration(Path(source), Path(out), head_name=head_name, head_type=head_type,
                         num_choices=num_choices, force=force, verify=verify, base=base, to=to, head=head,
                         adapter=adapter, token=token)


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'headcheck' has no attribute {name!r}")
