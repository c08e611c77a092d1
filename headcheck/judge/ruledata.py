"""Load the rule registry and head layouts from `rules/`, validated against their JSON Schemas."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path
from typing import Any

from ..model import Severity
from ..read.schema_check import first_error

# Section titles of a rule's explanation, in the order `headcheck rule CODE` prints them.
EXPLANATION_SECTIONS = {
    "what_it_checks": "What it checks",
    "why_it_matters": "Why it matters",
    "example": "Example",
    "how_to_fix": "How to fix",
}


class RuleDataError(Exception):
    """A file under rules/ is missing, not JSON, or does not match its schema."""


@dataclass(frozen=True)
class Rule:
    code: str
    name: str
    severity: Severity
    blocks_conversion: bool
    summary: str
    explanation: dict[str, str]


def rules_root() -> Traversable:
    # The wheel carries rules/ inside the package; a source checkout keeps it at the repository root.
    packaged = resources.files("headcheck") / "rules"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "rules"


def _load_validated(name: str) -> dict[str, Any]:
    """Parse rules/<name>.json; validate it against its schema unless these exact bytes validated before.

    The stamp spares every later run jsonschema's import (~250 ms): validation is keyed by content, so an
    edited file is validated again on its next load.
    """
    root = rules_root()
    label = f"rules/{name}.json"
    try:
        raw_data = (root / f"{name}.json").read_bytes()
        raw_schema = (root / "schema" / f"{name}.schema.json").read_bytes()
    except FileNotFoundError as exc:
        raise RuleDataError(f"{label}: missing ({exc.filename})") from None
    try:
        data = json.loads(raw_data)
    except json.JSONDecodeError as exc:
        raise RuleDataError(f"{label}: invalid JSON at line {exc.lineno}: {exc.msg}") from None
    error = first_error(data, raw_data, raw_schema, "validated-rules")
    if error is not None:
        raise RuleDataError(f"{label}: {error.json_path}: {error.message}")
    return data


@functools.cache
def registry() -> dict[str, Rule]:
    data = _load_validated("rules")
    rules: dict[str, Rule] = {}
    for entry in data["rules"]:
        if entry["code"] in rules:
            raise RuleDataError(f"rules/rules.json: code {entry['code']} is defined twice")
        rules[entry["code"]] = Rule(
            code=entry["code"],
            name=entry["name"],
            severity=Severity[entry["severity"].upper()],
            blocks_conversion=entry["blocks_conversion"],
            summary=entry["summary"],
            explanation=entry["explanation"],
        )
    return rules


@functools.cache
def redirects() -> dict[str, str]:
    return dict(_load_validated("rules").get("redirects", {}))


def lookup(code_or_name: str) -> Rule | None:
    """A rule by code (HC101) or kebab-case name, following redirects of retired codes."""
    wanted = redirects().get(code_or_name, code_or_name)
    rules = registry()
    if wanted.upper() in rules:
        return rules[wanted.upper()]
    return next((r for r in rules.values() if r.name == wanted), None)


@functools.cache
def head_layouts() -> dict[str, dict[str, Any]]:
    return _load_validated("head_layouts")["static_to_flex"]


@functools.cache
def flex_heads() -> dict[str, dict[str, Any]]:
    return _load_validated("flex_heads")["head_types"]


@functools.cache
def families() -> dict[str, Any]:
    return _load_validated("families")


@functools.cache
def exports() -> dict[str, Any]:
    return _load_validated("exports")
