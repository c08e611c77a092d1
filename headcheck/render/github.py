"""`--format github`: GitHub Actions workflow commands that annotate files in a run.

One `::error` / `::warning` / `::notice` line per finding, on the finding's file and the line of its
key (line 1 for binary files), escaped per the workflow-command rules. GitHub shows at most 10
annotations of each level per step, so at most 10 per level are written and one notice tells how
many more there are (infos are then capped at 9, so that notice is shown too). A plain line per
checkpoint gives its verdict in the log. Findings the project configuration ignores are not annotated;
the verdict line says how many there are.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ..judge import ruledata
from ..read.locate import display_path, finding_line, finding_path
from ..model import Finding, Report, Severity
from .sarif import finding_text

COMMANDS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}
LIMIT = 10  # GitHub's per-step limit for each annotation level


def escape_data(text: str) -> str:
    """Escape the message part of a workflow command (after `::`)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """Escape a property value of a workflow command (file=..., title=...)."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def command(name: str, message: str, **properties: str | int) -> str:
    props = ",".join(f"{key}={escape_property(str(value))}" for key, value in properties.items())
    return f"::{name}{' ' + props if props else ''}::{escape_data(message)}"


def annotation(report: Report, finding: Finding, base: Path | None = None) -> str:
    path, _ = finding_path(report, finding)
    rule = ruledata.registry().get(finding.rule)
    title = f"{finding.rule} {rule.name}" if rule else finding.rule
    return command(COMMANDS[finding.severity], finding_text(finding), file=display_path(path, base),
                   line=finding_line(report, finding), title=title)


def render_github(reports: Sequence[Report], color: bool = False, *, root: str | os.PathLike | None = None) -> str:
    base = Path(root) if root is not None else None
    pairs = [(report, finding) for report in reports for finding in report.counted()]  # ignored: not annotated
    by_level = {level: [p for p in pairs if p[1].severity == level] for level in COMMANDS}
    overflow = {level: max(0, len(items) - LIMIT) for level, items in by_level.items()}
    if any(overflow.values()) and len(by_level[Severity.INFO]) >= LIMIT:  # room for the one overflow notice
        overflow[Severity.INFO] = len(by_level[Severity.INFO]) - (LIMIT - 1)
    lines = [escape_data(f"headcheck: {display_path(report.source, base)}: {report.verdict.value}, "
                         f"{_count(len(report.counted()), 'finding')}"
                         + (f" ({len(report.ignored())} ignored)" if report.ignored() else "")) for report in reports]
    for level in sorted(COMMANDS, reverse=True):
        items = by_level[level]
        lines.extend(annotation(report, finding, base) for report, finding in items[:len(items) - overflow[level]])
    if any(overflow.values()):
        rest = ", ".join(_count(overflow[level], str(level)) for level in sorted(COMMANDS, reverse=True)
                         if overflow[level])
        lines.append(command("notice", f"{rest} not annotated (GitHub shows {LIMIT} per level); "
                                       f"see the job summary or the SARIF report", title="headcheck"))
    return "\n".join(lines)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def render_github_errors(errors: Sequence[str]) -> str:
    """An error annotation per target that could not be scanned (each message names its target)."""
    return "\n".join(f"::error title=headcheck::{escape_data(message)}" for message in errors)
