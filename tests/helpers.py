"""Shared test helpers: scan in-process and validate every JSON report against the shipped schema."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import resources
from pathlib import Path

import jsonschema

from headcheck.judge.engine import scan_path

REPO = Path(__file__).resolve().parent.parent
CHECKPOINTS = REPO / "tests" / "fixtures" / "checkpoints"
REPORT_SCHEMA = json.loads((resources.files("headcheck") / "schemas" / "report.schema.json").read_text())
_validator = jsonschema.Draft202012Validator(REPORT_SCHEMA)


def validated(report_json: dict) -> dict:
    _validator.validate(report_json)
    # DESIGN.md: the plan is present exactly when the verdict is convertible.
    assert (report_json["verdict"] == "convertible") == (report_json["plan"] is not None), report_json
    return report_json


def scan(path: Path, **kwargs) -> dict:
    """Scan and return the JSON report (validated), the form other tools consume."""
    return validated(json.loads(json.dumps(scan_path(Path(path), **kwargs).to_dict())))


def rules_of(report: dict) -> set[str]:
    return {f["rule"] for f in report["findings"]}


def run_cli(*args: str, env: dict[str, str] | None = None, **kwargs) -> subprocess.CompletedProcess:
    """`python -m headcheck ...` in a subprocess, importing headcheck from this checkout."""
    full_env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}  # colour only when a test asks
    full_env.update(env or {})
    full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), full_env.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-m", "headcheck", *map(str, args)], cwd=REPO, env=full_env,
                          capture_output="stdout" not in kwargs, text=True, timeout=120, **kwargs)
