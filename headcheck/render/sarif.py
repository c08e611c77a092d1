"""`--format sarif`: SARIF 2.1.0 for GitHub code scanning and other SARIF viewers.

One run for all scanned checkpoints. Every rule of the registry is a `reportingDescriptor` with the
explanation sections `headcheck rule CODE` prints; every finding is a result pointing at its file and
at the line of its key (line 1 for binary files); a finding the project configuration ignores carries
an external `suppression` naming the file and key that ignore it. Artifact URIs are relative to the root (the current
directory by default), against the base id `%SRCROOT%`, so that code scanning maps them onto the
repository. The verdict of each checkpoint is in the run's properties (`checkpoints`) and in each
result's properties.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..version import __version__
from ..judge import ruledata
from ..read.json_text import dump_json
from ..read.locate import checkpoint_dir, display_path, finding_line, finding_path
from ..model import Finding, Report, Severity

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://github.com/headcheck/headcheck"
RULES_DOC_URI = INFORMATION_URI + "/blob/main/docs/rules.md"
SRCROOT = "%SRCROOT%"
FINGERPRINT = "headcheckFinding/v1"
LEVELS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}


def rule_url(code: str) -> str:
    """The stable documentation URL of a rule: docs/rules.md, anchor = lower-case code (#hc101)."""
    return f"{RULES_DOC_URI}#{code.lower()}"


def render_sarif(reports: Sequence[Report], color: bool = False, *, root: str | os.PathLike | None = None,
                 errors: Sequence[str] = ()) -> str:
    """The SARIF log of REPORTS as JSON text; ROOT is where relative URIs start (default: the cwd); ERRORS
    say which targets could not be scanned (each message names its target)."""
    return dump_json(sarif_log(reports, root=root, errors=errors), indent=2)


def sarif_log(reports: Sequence[Report], *, root: str | os.PathLike | None = None,
              errors: Sequence[str] = ()) -> dict[str, Any]:
    base = Path(root if root is not None else os.getcwd()).resolve()
    rules = list(ruledata.registry().values())
    index = {rule.code: i for i, rule in enumerate(rules)}
    results: list[dict[str, Any]] = []
    seen: Counter[str] = Counter()
    checkpoints = []
    for report in reports:
        checkpoints.append(checkpoint_properties(report, base))
        for finding in report.findings:
            results.append(_result(report, finding, index, base, seen))
    run: dict[str, Any] = {
        "tool": {"driver": {
            "name": "headcheck",
            "version": __version__,
            "semanticVersion": __version__,
            "informationUri": INFORMATION_URI,
            "rules": [_descriptor(rule) for rule in rules],
        }},
        "originalUriBaseIds": {SRCROOT: {"uri": base.as_uri().rstrip("/") + "/"}},
        "columnKind": "unicodeCodePoints",
        "results": results,
        "properties": {"checkpoints": checkpoints},
    }
    if errors:  # a target that could not be read is a failed execution, never an empty (clean) run
        run["invocations"] = [{"executionSuccessful": False, "toolExecutionNotifications": [
            {"level": "error", "message": {"text": message}} for message in errors]}]
    return {"$schema": SCHEMA_URI, "version": "2.1.0", "runs": [run]}


def checkpoint_properties(report: Report, base: Path) -> dict[str, Any]:
    return {
        "source": report.source,
        "uri": _artifact(checkpoint_dir(report.source), base)["uri"],
        "kind": report.kind.value,
        "layout": report.layout.value,
        "model_type": report.model_type,
        "head_type": report.head.type,
        "architecture": report.head.architecture,
        "verdict": report.verdict.value,
        "findings": len(report.findings),
        "ignored": len(report.ignored()),
    }


def _descriptor(rule: ruledata.Rule) -> dict[str, Any]:
    sections = [(title, rule.explanation[key]) for key, title in ruledata.EXPLANATION_SECTIONS.items()]
    return {
        "id": rule.code,
        "name": rule.name,
        "shortDescription": {"text": rule.summary},
        "fullDescription": {"text": f"{rule.explanation['what_it_checks']} {rule.explanation['why_it_matters']}"},
        "help": {
            "text": "\n\n".join(f"{title}: {body}" for title, body in sections),
            "markdown": f"**{rule.code} {rule.name}**: {rule.summary}\n\n"
                        + "\n\n".join(f"## {title}\n\n{body}" for title, body in sections)
                        + f"\n\n[Rule documentation]({rule_url(rule.code)})",
        },
        "helpUri": rule_url(rule.code),
        "defaultConfiguration": {"level": LEVELS[rule.severity]},
        "properties": {"tags": ["headcheck", str(rule.severity)], "blocks_conversion": rule.blocks_conversion},
    }


def finding_text(finding: Finding) -> str:
    """The finding's message with its hint, as one text."""
    return finding.message + (f" (hint: {finding.hint})" if finding.hint else "")


def _result(report: Report, finding: Finding, index: dict[str, int], base: Path, seen: Counter[str]) -> dict[str, Any]:
    path, _ = finding_path(report, finding)
    artifact = _artifact(path, base)
    physical: dict[str, Any] = {"artifactLocation": artifact, "region": {"startLine": finding_line(report, finding)}}
    location: dict[str, Any] = {"physicalLocation": physical}
    if finding.key:
        location["logicalLocations"] = [{"fullyQualifiedName": finding.key, "kind": "member"}]
    identity = "\0".join([finding.rule, artifact["uri"], finding.key or ""])
    digest = hashlib.sha256(identity.encode("utf-8")).hexdigest()[:32]
    seen[digest] += 1  # the same rule, file and key twice (two problems with one key): keep both results
    result: dict[str, Any] = {
        "ruleId": finding.rule,
        "level": LEVELS[finding.severity],
        "message": {"text": finding_text(finding)},
        "locations": [location],
        "partialFingerprints": {FINGERPRINT: f"{digest}:{seen[digest]}"},
        "properties": {"checkpoint": report.source, "verdict": report.verdict.value, "severity": str(finding.severity)},
    }
    if finding.rule in index:
        result["ruleIndex"] = index[finding.rule]
    if finding.ignored is not None:  # still reported: a viewer shows it as suppressed, never as fixed
        result["suppressions"] = [{"kind": "external", "status": "accepted",
                                   "justification": f"rule {finding.rule} ignored by {finding.ignored}"}]
    return result


def _artifact(path: str, base: Path) -> dict[str, Any]:
    shown = display_path(path, base)
    if "://" in shown:
        return {"uri": shown}
    if Path(shown).is_absolute():
        return {"uri": Path(shown).as_uri()}
    return {"uri": quote(shown, safe="/"), "uriBaseId": SRCROOT}
