"""Scan many targets concurrently, yielding each outcome as it finishes (the CLI writes them as JSON Lines)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator

from .engine import scan_target
from ..errors import InputError, NothingScannedError
from ..exitcodes import ExitCode
from ..model import Report


@dataclass(frozen=True)
class Outcome:
    target: str
    report: Report | None
    error: str | None = None
    exit_code: ExitCode = ExitCode.OK  # for errors: INPUT_ERROR or NOTHING_SCANNED


def scan_one(target: str, **options) -> Outcome:
    try:
        return Outcome(target, scan_target(target, **options))
    except InputError as exc:
        return Outcome(target, None, str(exc), ExitCode.INPUT_ERROR)
    except NothingScannedError as exc:
        return Outcome(target, None, str(exc), ExitCode.NOTHING_SCANNED)


def scan_many(targets: Iterable[str], jobs: int = 1, **options) -> Iterator[Outcome]:
    """Outcomes in completion order; a failing target is an Outcome with an error, the rest continue."""
    from concurrent.futures import ThreadPoolExecutor, as_completed  # only bulk scans pay for the import

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(scan_one, target, **options) for target in targets]
        for future in as_completed(futures):
            yield future.result()
