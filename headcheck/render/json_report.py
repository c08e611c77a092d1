"""`--format json`: the schema_version 1 report other tools rely on (built by Report.to_dict)."""

from __future__ import annotations

import json

from ..model import Report


def render_json(report: Report, color: bool = False) -> str:
    return json.dumps(report.to_dict(), indent=2, ensure_ascii=False)
