"""Judge a full model folder (config.json + weights): static, flex, legacy flex, base, custom or unsupported."""

from __future__ import annotations

from typing import Any, Mapping

from . import layouts
from .classify_keys import candidate_head_types
from ..read.facts import Facts
from .flex import check_flex_heads, class_rename_plan, head_from_flex_config, heads_in_weights
from .static import StaticInput, head_keys, judge_static
from .judgement import Judgement, finding
from .legacy_activations import migrated_copy
from .lora_scaling import lora_scaling_findings
from ..model import Head, Verdict
from ..read.sniff import legacy_model_type


def model_type_of(config: Mapping[str, Any]) -> str | None:
    return config.get("model_type") or legacy_model_type(dict(config))


def _custom_classes(config: Mapping[str, Any]) -> set[str]:
    auto_map = config.get("auto_map") or {}
    values = auto_map.values() if isinstance(auto_map, dict) else []
    return {str(v).rsplit(".", 1)[-1] for v in values if isinstance(v, str)}


def judge_model(facts: Facts, head_type_override: str | None) -> Judgement:
    config = facts.doc("model") or {}
    config_file = facts.doc_file("model") or "config.json"
    tensors = facts.weights.get("model", {})
    weights_file = (facts.weight_files.get("model") or (None,))[0]
    model_type = model_type_of(config)
    architectures = config.get("architectures") or []
    arch = architectures[0] if architectures and isinstance(architectures[0], str) else None
    fam = layouts.family(model_type)

    if "prediction_heads" in config or (arch and arch.endswith(("AdapterModel", "ModelWithHeads"))):
        return _judge_flex_model(config, config_file, tensors, weights_file, arch, fam)
    if arch and layouts.static_layout(arch):
        if fam is None:
            return _unsupported(model_type, arch, layouts.static_layout(arch)["config"]["head_type"], config_file)
        return judge_static(StaticInput(
            arch, model_type, config, config_file, tensors, weights_file, fam["adapter_model"],
            evidence=(f"config.json architectures[0] = {arch}",),
        ))
    implied = layouts.head_type_of_class(arch) if arch and arch not in _custom_classes(config) else None
    if implied is not None:
        evidence = (f"config.json architectures[0] = {arch}",)
        if implied == "none":
            return Judgement(Head("none", arch, evidence=evidence), (), Verdict.NO_HEAD)
        if fam is None:
            return _unsupported(model_type, arch, implied, config_file)
        head = Head(implied, arch, config.get("problem_type"), evidence=evidence)
        return Judgement(head, (finding(
            "HC107", f"{arch} has no flex-head equivalent; AutoAdapterModel would load it without its head",
            file=config_file, key="architectures", hint="keep the static class",
        ),), Verdict.NOT_CONVERTIBLE)
    return _judge_by_keys(config, config_file, tensors, weights_file, model_type, arch, head_type_override)


def _unsupported(model_type: str | None, arch: str, head_type: str, config_file: str) -> Judgement:
    head = Head(head_type, arch, evidence=(f"architectures[0] = {arch}",))
    family_text = f"model_type {model_type!r}" if model_type else "a checkpoint whose config names no model_type"
    return Judgement(head, (finding(
        "HC106", f"adapters has no flex-head model for {family_text} ({arch})",
        file=config_file, key="model_type", hint="use transformers or PEFT for this family",
    ),), Verdict.NOT_CONVERTIBLE)


def _judge_flex_model(config, config_file, tensors, weights_file, arch, fam) -> Judgement:
    head_configs = config.get("prediction_heads") or {}
    findings = []
    if arch and arch.endswith("ModelWithHeads"):
        findings.append(finding("HC114", f"saved by the legacy class {arch}", file=config_file, key="architectures",
                                hint="headcheck migrate rewrites it to the XAdapterModel class"))
    findings.extend(check_flex_heads(head_configs, tensors, config_file, weights_file, "prediction_heads"))
    # a LoRA of adapters < 1.1.0 (HC132): loaded as it is, it computes another scaling; migrate rewrites alpha
    lora_scaling = lora_scaling_findings(config, config_file, convertible=bool(head_configs and fam))
    findings.extend(lora_scaling)
    if not head_configs:
        return Judgement(Head("none", arch, evidence=("no prediction_heads in config.json",)), tuple(findings),
                         Verdict.NO_HEAD)
    name, cfg = next(iter(head_configs.items()))
    head = head_from_flex_config(name, cfg, arch, [f"prediction_heads.{name}.head_type = {cfg.get('head_type')}"],
                                 heads_in_weights(tensors, [name]).get(name))
    if not (arch and arch.endswith("ModelWithHeads")):
        if lora_scaling and fam:  # the flex layout stays; only the adapters config changes
            return Judgement(head, tuple(findings), Verdict.CONVERTIBLE,
                             class_rename_plan(fam["adapter_model"], name, cfg, config_file))
        return Judgement(head, tuple(findings), Verdict.ALREADY_FLEX)
    if fam is None:
        return _unsupported(config.get("model_type"), arch, head.type, config_file)
    migrated = migrated_copy(config, "model")["prediction_heads"][name]
    return Judgement(head, tuple(findings), Verdict.CONVERTIBLE,
                     class_rename_plan(fam["adapter_model"], name, migrated, config_file))


def _judge_by_keys(config, config_file, tensors, weights_file, model_type, arch, head_type_override) -> Judgement:
    unknown = f"architectures[0] = {arch} is not a known class" if arch else "config.json names no architecture"
    if not tensors:
        return Judgement(Head("unknown", arch, evidence=(unknown,)), (finding(
            "HC115", "no weight files and no known architecture: nothing to classify the head from",
            file=config_file, hint="scan the folder that holds the weights",
        ),), Verdict.NOT_CONVERTIBLE)
    candidates, evidence = candidate_head_types({k: tensors[k] for k in head_keys(tensors, model_type)}, config)
    evidence = [unknown, *evidence]
    fam = layouts.family(model_type)
    if fam is None:  # without a family there is no base prefix to tell head keys apart
        guess = candidates[0] if len(candidates) == 1 else (layouts.head_type_of_class(arch) if arch else None)
        return _unsupported(model_type, arch or "unknown class", guess or "unknown", config_file)
    if head_type_override:
        if candidates and head_type_override not in candidates:
            evidence.append(f"--head-type {head_type_override} does not fit the keys ({', '.join(candidates)})")
        candidates = [head_type_override]
        evidence.append(f"--head-type {head_type_override}")
    if not candidates:
        return Judgement(Head("none", arch, evidence=(*evidence, "no head keys outside the base model")), (),
                         Verdict.NO_HEAD)
    if len(candidates) > 1:
        return Judgement(Head("unknown", arch, config.get("problem_type"), evidence=tuple(evidence),
                              candidates=tuple(candidates)), (finding(
            "HC112", f"the head keys fit {' and '.join(candidates)} equally",
            file=weights_file, hint=f"pass --head-type {'|'.join(candidates)}",
        ),), Verdict.AMBIGUOUS)
    return _as_static_class(candidates[0], config, config_file, tensors, weights_file, model_type, arch, fam,
                            unknown, evidence)


def _as_static_class(head_type, config, config_file, tensors, weights_file, model_type, arch, fam, unknown,
                     evidence) -> Judgement:
    """Judge key-classified weights as the family's static class of that head type whose layout fits them."""
    if head_type == "multilabel_classification":  # same layout as classification, the loss comes from problem_type
        config = {**config, "problem_type": "multi_label_classification"}
    layout_type = "classification" if head_type == "multilabel_classification" else head_type
    trials = [
        (class_name, judge_static(StaticInput(class_name, model_type, config, config_file, tensors, weights_file,
                                              fam["adapter_model"], evidence=tuple(evidence))))
        for class_name in layouts.static_classes_for(model_type, layout_type)
    ]
    if not trials:
        return Judgement(Head(head_type, arch, evidence=tuple(evidence)), (finding(
            "HC107", f"adapters has no {head_type} head for {model_type}",
            file=config_file, hint="keep the model's own class",
        ),), Verdict.NOT_CONVERTIBLE)
    # The first layout that covers the weights; otherwise the first trial, whose findings say what is off.
    class_name, judged = next(((c, j) for c, j in trials if not any(f.rule in ("HC101", "HC116") for f in j.findings)),
                              trials[0])
    inferred_note = finding("HC113", f"{unknown}; the weights were judged as {class_name}", file=config_file,
                            key="architectures", hint="headcheck migrate writes the flex layout")
    return Judgement(judged.head, (inferred_note, *judged.findings), judged.verdict, judged.plan)
