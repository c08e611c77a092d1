"""Renderers: the only code that formats reports.

`RENDERERS`: format name -> function(report, color) -> text, for one report (`headcheck scan`).
`MULTI_RENDERERS`: format name -> function(reports, color) -> text, for several reports at once (hook
mode scans several folders); `render(fmt, reports)` picks from it. SARIF, GitHub annotations and the
Markdown summary are written for a sequence of reports; text and JSON for one (several text reports
are joined by a blank line, several JSON reports make a JSON array).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..model import Report
from ..read.json_text import dump_json
from .json_report import render_json
from .text import render_text


def render_sarif(reports: Sequence[Report], color: bool = False) -> str:
    from .sarif import render_sarif as render_many  # imported on use: its tables and hashlib cost every scan

    return render_many(reports, color=color)


def render_github(reports: Sequence[Report], color: bool = False) -> str:
    from .github import render_github as render_many

    return render_many(reports, color=color)

Single = Callable[..., str]  # (report, color=False) -> str
Multi = Callable[..., str]  # (reports, color=False) -> str


def _one(render_many: Multi) -> Single:
    def render_one(report: Report, color: bool = False) -> str:
        return render_many([report], color=color)

    render_one.__name__ = render_many.__name__
    render_one.__doc__ = render_many.__doc__
    return render_one


def _texts(reports: Sequence[Report], color: bool = False) -> str:
    return "\n\n".join(render_text(report, color=color) for report in reports)


def _jsons(reports: Sequence[Report], color: bool = False) -> str:
    return dump_json([report.to_dict() for report in reports], indent=2)


MULTI_RENDERERS: dict[str, Multi] = {"text": _texts, "json": _jsons, "sarif": render_sarif, "github": render_github}
RENDERERS: dict[str, Single] = {"text": render_text, "json": render_json,
                                "sarif": _one(render_sarif), "github": _one(render_github)}


def render(fmt: str, reports: Sequence[Report], color: bool = False) -> str:
    """Render several reports in FMT (one of MULTI_RENDERERS)."""
    return MULTI_RENDERERS[fmt](reports, color=color)


__all__ = ["MULTI_RENDERERS", "RENDERERS", "render", "render_github", "render_json", "render_sarif",
           "render_text"]
