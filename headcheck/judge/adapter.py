"""Judge an adapters adapter folder: which heads `load_adapter` converts, which it refuses, and whether they fit."""

from __future__ import annotations

from typing import Any, Mapping

from . import layouts
from ..read.facts import Facts
from .flex import check_flex_heads, class_rename_plan, head_from_flex_config, heads_in_weights
from .static import StaticInput, judge_static
from .judgement import Judgement, finding
from .legacy_activations import migrated_copy
from ..model import Head, Verdict


def judge_adapter(facts: Facts) -> Judgement:
    head_doc: Mapping[str, Any] | None = facts.doc("head")
    adapter_doc = facts.doc("adapter") or {}
    model_type = (head_doc or {}).get("model_type") or adapter_doc.get("model_type")
    head_file = facts.doc_file("head") or "head_config.json"
    tensors = facts.weights.get("head", {})
    weights_file = (facts.weight_files.get("head") or (None,))[0]
    if head_doc is None:
        evidence = ("adapter_config.json without head_config.json",)
        if tensors:
            evidence += ("head weights without head_config.json: adapters loads them blindly by name",)
        return Judgement(Head("none", adapter_doc.get("model_class"), evidence=evidence), (), Verdict.NO_HEAD)

    model_class = str(head_doc.get("model_class") or "")
    # load_adapter activates the head named like the adapter; static heads were saved without a name
    name = head_doc.get("name") or adapter_doc.get("name") or "default"
    head_cfg = head_doc.get("config")
    evidence = [f"{head_file} model_class = {model_class}"]
    # the head's own task, for the heads headcheck cannot judge further
    named_type = (head_cfg or {}).get("head_type") or layouts.head_type_of_class(model_class) or "unknown"
    fam = layouts.family(model_type)
    if fam is None:
        return Judgement(Head(named_type, model_class, name=name, evidence=tuple(evidence)), (finding(
            "HC106", f"adapters has no flex-head model for model_type {model_type!r}; load_adapter cannot place this head",
            file=head_file, key="model_type", hint="use the model with transformers or PEFT",
        ),), Verdict.NOT_CONVERTIBLE)

    target = fam["adapter_model"]
    legacy_family = (
        layouts.family_of_class_prefix(model_class.removesuffix("ModelWithHeads"))
        if model_class.endswith("ModelWithHeads") else None
    )
    if model_class == target or legacy_family == model_type:
        cfg = head_cfg if isinstance(head_cfg, dict) else {}
        findings = check_flex_heads({name: cfg}, tensors, head_file, weights_file, "")
        head = head_from_flex_config(name, cfg, model_class, evidence, heads_in_weights(tensors, [name]).get(name))
        if not legacy_family:
            return Judgement(head, tuple(findings), Verdict.ALREADY_FLEX)
        findings.append(finding("HC114", f"head saved by the legacy class {model_class}", file=head_file,
                                key="model_class", hint="headcheck migrate rewrites it to " + target))
        migrated = migrated_copy(head_doc, "head").get("config") or {}
        return Judgement(head, tuple(findings), Verdict.CONVERTIBLE, class_rename_plan(target, name, migrated, head_file))
    if layouts.static_layout(model_class):
        evidence.append(f"load_adapter converts {model_class} heads into {target}")
        return judge_static(StaticInput(
            model_class, model_type, head_doc, head_file, tensors, weights_file, target, head_name=name,
            evidence=tuple(evidence), base_in_weights=False,
        ))
    return Judgement(Head(named_type, model_class, name=name, evidence=tuple(evidence)), (finding(
        "HC111",
        f"load_adapter into {target} raises: Cannot automatically convert prediction head of model class "
        f"{model_class} to flex head",
        file=head_file, key="model_class", hint=f"re-save the adapter from {target} or with with_head=False",
    ),), Verdict.NOT_CONVERTIBLE)
