"""`--format json`: the schema_version 1 report other tools rely on (built by Report.to_dict)."""

from __future__ import annotations

from ..model import SCHEMA_VERSION, Report
from ..read.json_text import dump_json


def render_json(report: Report, color: bool = False) -> str:
    return dump_json(report.to_dict(), indent=2)


def error_record(target: str, error: str, exit_code: int) -> dict:
    """What JSON output says for a target that could not be scanned (one line of JSON Lines, or alone)."""
    return {"schema_version": SCHEMA_VERSION, "source": target, "error": error, "exit_code": int(exit_code)}
