"""`--format json`: the schema_version 1 report other tools rely on."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from .. import __version__
from ..model import Report

SCHEMA_VERSION = 1


def report_dict(report: Report) -> dict[str, Any]:
    head = report.head
    plan = None
    if report.plan is not None:
        plan = asdict(report.plan)
        plan["renames"] = [asdict(r) for r in report.plan.renames]
        plan["dropped"] = list(report.plan.dropped)
    return {
        "schema_version": SCHEMA_VERSION,
        "headcheck_version": __version__,
        "source": report.source,
        "kind": report.kind.value,
        "layout": report.layout.value,
        "model_type": report.model_type,
        "head": {
            "type": head.type,
            "architecture": head.architecture,
            "problem_type": head.problem_type,
            "num_labels": head.num_labels,
            "name": head.name,
            "evidence": list(head.evidence),
            "candidates": list(head.candidates),
        },
        "verdict": report.verdict.value,
        "findings": [
            {"rule": f.rule, "severity": str(f.severity), "message": f.message, "file": f.file, "hint": f.hint,
             "key": f.key}
            for f in report.findings
        ],
        "plan": plan,
        "files": list(report.files),
    }


def render_json(report: Report, color: bool = False) -> str:
    return json.dumps(report_dict(report), indent=2, ensure_ascii=False)
