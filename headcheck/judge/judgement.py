"""What a judge returns, and the one way to create a finding (severity always comes from the rule data)."""

from __future__ import annotations

from dataclasses import dataclass

from . import ruledata
from ..model import Finding, Head, Plan, Verdict


def finding(code: str, message: str, *, file: str | None = None, hint: str | None = None, key: str | None = None) -> Finding:
    return Finding(code, ruledata.registry()[code].severity, message, file=file, hint=hint, key=key)


@dataclass(frozen=True)
class Judgement:
    head: Head
    findings: tuple[Finding, ...]
    # What the layout alone implies; blocking findings turn convertible/already-flex into not-convertible.
    verdict: Verdict
    plan: Plan | None = None


def final_verdict(judgement: Judgement, extra: tuple[Finding, ...] = ()) -> Verdict:
    if judgement.verdict in (Verdict.AMBIGUOUS, Verdict.NO_HEAD, Verdict.NOT_CONVERTIBLE):
        return judgement.verdict
    registry = ruledata.registry()
    if any(registry[f.rule].blocks_conversion for f in (*judgement.findings, *extra)):
        return Verdict.NOT_CONVERTIBLE
    return judgement.verdict
