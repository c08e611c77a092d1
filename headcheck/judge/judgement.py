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


def unsupported_family(model_type: str | None, arch: str, head_type: str, config_file: str) -> Judgement:
    head = Head(head_type, arch, evidence=(f"architectures[0] = {arch}",))
    family_text = f"model_type {model_type!r}" if model_type else "a checkpoint whose config names no model_type"
    return Judgement(head, (finding(
        "HC106", f"adapters has no flex-head model for {family_text} ({arch})",
        file=config_file, key="model_type", hint="use transformers or PEFT for this family",
    ),), Verdict.NOT_CONVERTIBLE)
