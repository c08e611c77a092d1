"""`--summary FILE`: a Markdown job summary (GitHub's `$GITHUB_STEP_SUMMARY`).

A table of the scanned checkpoints (source, kind, head type, verdict, number of findings), then every
finding with its file and line and a link to its rule's documentation. Findings the project configuration
ignores are counted in the table, not listed.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ..judge import ruledata
from ..read.locate import display_path, finding_line, finding_path
from ..model import Report, Severity, Verdict
from .sarif import finding_text, rule_url

VERDICT_ICONS = {
    Verdict.CONVERTIBLE: "✅",
    Verdict.ALREADY_FLEX: "✅",
    Verdict.NO_HEAD: "➖",
    Verdict.AMBIGUOUS: "⚠️",
    Verdict.NOT_CONVERTIBLE: "❌",
}
SEVERITY_ICONS = {Severity.ERROR: "❌", Severity.WARNING: "⚠️", Severity.INFO: "ℹ️"}


def render_summary(reports: Sequence[Report], color: bool = False, *, root: str | os.PathLike | None = None) -> str:
    base = Path(root) if root is not None else None
    lines = ["## headcheck", ""]
    if not reports:
        return "\n".join([*lines, "Nothing was scanned.", ""])
    lines += ["| Checkpoint | Kind | Head type | Verdict | Findings |", "|---|---|---|---|---|"]
    for report in reports:
        head = report.head.type + (f" ({report.head.architecture})" if report.head.architecture else "")
        cells = [_code(display_path(report.source, base)), report.kind.value, head,
                 f"{VERDICT_ICONS[report.verdict]} {report.verdict.value}", _findings_cell(report)]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    lines.append("")
    if not any(report.counted() for report in reports):
        return "\n".join([*lines, "No findings.", ""])
    lines += ["### Findings", ""]
    registry = ruledata.registry()
    for report in reports:
        if not report.counted():
            continue
        lines.append(f"**{_code(display_path(report.source, base))}**: {report.verdict.value}")
        lines.append("")
        for finding in report.counted():
            rule = registry.get(finding.rule)
            label = f"{finding.rule} {rule.name}" if rule else finding.rule
            path, _ = finding_path(report, finding)
            where = _code(f"{display_path(path, base)}:{finding_line(report, finding)}")
            lines.append(f"- {SEVERITY_ICONS[finding.severity]} **{finding.severity}** "
                         f"[{label}]({rule_url(finding.rule)}) {where}: {_text(finding_text(finding))}")
        lines.append("")
    return "\n".join(lines)


def _findings_cell(report: Report) -> str:
    ignored = len(report.ignored())
    return str(len(report.counted())) + (f" ({ignored} ignored)" if ignored else "")


def _text(text: str) -> str:
    return " ".join(text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").split())


def _cell(text: str) -> str:
    return " ".join(text.replace("|", "\\|").split())


def _code(text: str) -> str:
    return f"`` {text} ``" if "`" in text else f"`{text}`"
