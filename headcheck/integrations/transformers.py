"""A transformers `TrainerCallback` that judges every checkpoint the Trainer writes.

    from headcheck.integrations.transformers import HeadcheckCallback
    trainer = Trainer(..., callbacks=[HeadcheckCallback(fail_on="error")])

At each save (`on_save`) the checkpoint folder `output_dir/checkpoint-N` is scanned as `headcheck scan`
scans a folder (config files and weight headers only), together with each sub-folder that holds a
checkpoint of its own: adapters' `AdapterTrainer` writes one folder per adapter (with its head) and per
head there (`save_all_adapters`, `save_all_heads`). The verdicts and findings go to the Trainer's logger;
a finding at or above `fail_on`, or a checkpoint nothing could be read or judged in, raises
`HeadcheckFailed`, which ends `trainer.train()` before the next step, so before the next save.

The Trainer calls `on_save` after `_save_checkpoint` has returned, and with `push_to_hub=True` that
method has already started the save's Hub upload (a background job; skipped while an earlier one still
runs) unless `hub_strategy="end"`: the check cannot hold back that one upload, only every later one.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

try:
    from transformers import TrainerCallback
    from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR
    from transformers.utils import logging as transformers_logging
except ImportError as exc:  # pragma: no cover - exercised in a subprocess by tests/test_callback.py
    raise ImportError("headcheck.integrations.transformers needs transformers (pip install transformers); "
                      "`import headcheck` alone does not") from exc

from ..errors import InputError, NothingScannedError
from ..judge.engine import scan_path
from ..model import Report, Severity

__all__ = ["HeadcheckCallback", "HeadcheckFailed"]

# the Trainer's own logger: its verbosity follows TrainingArguments(log_level=...) and transformers' handler
logger = transformers_logging.get_logger("transformers.trainer")

FAIL_ON: dict[str | None, Severity | None] = {
    "error": Severity.ERROR, "warning": Severity.WARNING, "info": Severity.INFO, "never": None, None: None,
}
CHECKPOINT_FOLDER = re.compile(rf"{re.escape(PREFIX_CHECKPOINT_DIR)}-[0-9]+")
LOG_LEVELS = {Severity.ERROR: logging.ERROR, Severity.WARNING: logging.WARNING, Severity.INFO: logging.INFO}


class HeadcheckFailed(RuntimeError):
    """A checkpoint failed the check; raised from `on_save`, so it ends `trainer.train()`.

    `checkpoint` is the folder, `reports` the reports of what could be judged in it, `problems` one line
    per failing folder or finding (rule code first), as in the message.
    """

    def __init__(self, message: str, checkpoint: str, reports: tuple[Report, ...], problems: tuple[str, ...]):
        super().__init__(message)
        self.checkpoint = checkpoint
        self.reports = reports
        self.problems = problems


class HeadcheckCallback(TrainerCallback):
    """Scan each checkpoint folder when the Trainer has saved it; log the verdicts; stop on failure.

    fail_on: "error" (default), "warning" or "info": the lowest finding severity that stops training;
    None (or "never") only logs. With any fail_on, a checkpoint that cannot be read (a corrupt weight
    file, an unsafe pickle) or holds nothing headcheck can judge also stops training.
    head_type: decides a head the weights leave ambiguous, as `headcheck scan --head-type`.

    `reports` maps each checked checkpoint folder to the reports of the folders judged in it.
    """

    def __init__(self, fail_on: str | None = "error", head_type: str | None = None):
        if fail_on not in FAIL_ON:
            raise ValueError(f"fail_on must be one of 'error', 'warning', 'info' or None, not {fail_on!r}")
        self.fail_on = fail_on
        self.threshold = FAIL_ON[fail_on]
        self.head_type = head_type
        self.reports: dict[str, tuple[Report, ...]] = {}

    def on_train_begin(self, args, state, control, **kwargs):
        strategy = _hub_strategy(args)
        if args.push_to_hub and strategy != "end" and self.threshold is not None and args.should_save:
            logger.warning(
                f"headcheck: push_to_hub with hub_strategy={strategy!r}: the Trainer starts each save's Hub upload "
                "before callbacks run, so the check cannot hold back the upload of the checkpoint that fails it, "
                "only the later ones (training stops); with hub_strategy='end' nothing is uploaded during training")

    def on_save(self, args, state, control, **kwargs):
        if not args.should_save:  # another process of a distributed run wrote the checkpoint
            return
        folder = os.path.join(args.output_dir, f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}")
        if not os.path.isdir(folder):
            logger.warning(f"headcheck: {folder} not found after the save at step {state.global_step}; not checked")
            return
        pushed = None
        if args.push_to_hub and _hub_strategy(args) != "end":
            pushed = (f"the Trainer's Hub upload for step {state.global_step} (push_to_hub, hub_strategy="
                      f"{_hub_strategy(args)!r}) runs before callbacks and was not held back; nothing later is "
                      "uploaded")
        self._check(folder, args.output_dir, step=state.global_step, pushed=pushed)

    def check(self, folder: str | os.PathLike) -> tuple[Report, ...]:
        """Check one folder the way `on_save` checks a checkpoint: e.g. what `trainer.save_model()` wrote,
        before `trainer.push_to_hub()`. Logs, returns the reports, raises HeadcheckFailed on failure."""
        folder = os.fspath(folder)
        return self._check(folder, os.path.dirname(os.path.abspath(folder)))

    def _check(self, folder: str, base: str, step: int | None = None, pushed: str | None = None
               ) -> tuple[Report, ...]:
        name = _relative(folder, base)
        reports: list[Report] = []
        problems: list[str] = []
        skipped: list[str] = []
        for target in _targets(folder):
            label = _relative(target, base)
            try:
                report = scan_path(Path(target), self.head_type)
            except NothingScannedError as exc:
                skipped.append(f"{label}: nothing headcheck can judge ({_without_path(exc, target)})")
                continue
            except InputError as exc:
                message = f"{label}: cannot be read: {_without_path(exc, target)}"
                logger.error(f"headcheck: {message}")
                problems.append(message)
                continue
            reports.append(report)
            _log_report(label, report)
            failing = [f for f in report.findings if self.threshold is not None and f.severity >= self.threshold]
            problems.extend(f"{label}: {report.verdict.value}: {f.rule} {f.message}" for f in failing)
        for line in skipped:
            logger.debug(f"headcheck: {line}")
        if not reports and not problems:
            message = f"{name}: nothing headcheck can judge in it (no model, adapter or head checkpoint)"
            logger.log(logging.ERROR if self.threshold is not None else logging.WARNING, f"headcheck: {message}")
            problems.append(message)
        self.reports[folder] = tuple(reports)
        if problems and self.threshold is not None:
            where = f"training stopped at step {step}, " if step is not None else ""
            kept = f"; {name} is left on disk" if step is not None else ""
            message = f"headcheck: {'; '.join(problems)} ({where}fail_on={self.fail_on!r}{kept})"
            if pushed:
                message += f"; {pushed}"
            raise HeadcheckFailed(message, folder, tuple(reports), tuple(problems))
        return tuple(reports)


def _targets(folder: str) -> list[str]:
    """The folder itself, then each sub-folder (sorted): adapters writes adapter, head and fusion folders there.
    The Trainer's own checkpoint folders inside an output_dir were checked when they were saved."""
    subfolders = sorted(entry.path for entry in os.scandir(folder) if entry.is_dir() and not entry.name.startswith(".")
                        and not CHECKPOINT_FOLDER.fullmatch(entry.name))
    return [folder, *subfolders]


def _log_report(label: str, report: Report) -> None:
    head = report.head.type + (f" [{report.head.architecture}]" if report.head.architecture else "")
    counts = _finding_counts(report)
    logger.info(f"headcheck: {label}: {report.verdict.value} ({report.kind.value}, head {head}){counts}")
    for f in report.findings:
        where = f" ({f.file})" if f.file else ""
        hint = f"; hint: {f.hint}" if f.hint else ""
        logger.log(LOG_LEVELS[f.severity], f"headcheck: {label}: {f.rule} {f.severity}{where}: {f.message}{hint}")


def _finding_counts(report: Report) -> str:
    if not report.findings:
        return ", no findings"
    counts: dict[str, int] = {}
    for f in report.findings:
        counts[str(f.severity)] = counts.get(str(f.severity), 0) + 1
    return ", " + ", ".join(f"{n} {severity}{'s' if n != 1 else ''}" for severity, n in counts.items())


def _hub_strategy(args: Any) -> str:
    strategy = getattr(args, "hub_strategy", "every_save")
    return str(getattr(strategy, "value", strategy))


def _relative(path: str, base: str) -> str:
    try:
        return os.path.relpath(path, base)
    except ValueError:  # another drive (Windows)
        return path


def _without_path(exc: Exception, target: str) -> str:
    """headcheck's errors start with the folder they are about; the log line names it already."""
    message = str(exc)
    for prefix in (f"{target}/", f"{target}: "):
        if message.startswith(prefix):
            return message[len(prefix):]
    return message
