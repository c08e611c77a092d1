"""Judge a full model folder (config.json + weights): static, flex, legacy flex, base, custom or unsupported."""

from __future__ import annotations

from typing import Any, Mapping

from . import layouts
from ..read.facts import Facts
from .flex import check_flex_heads, class_rename_plan, head_from_flex_config, heads_in_weights
from .static import StaticInput, judge_static
from .by_keys import judge_by_keys
from .judgement import Judgement, finding, unsupported_family
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
            return unsupported_family(model_type, arch, layouts.static_layout(arch)["config"]["head_type"], config_file)
        return judge_static(StaticInput(
            arch, model_type, config, config_file, tensors, weights_file, fam["adapter_model"],
            evidence=(f"config.json architectures[0] = {arch}",),
        ))
    implied = layouts.head_type_of_class(arch) if arch and arch not in _custom_classes(config) else None
    if implied == "none" and tensors and fam is not None:  # a base model's name: its weights still decide
        return judge_by_keys(config, config_file, tensors, weights_file, model_type, arch, head_type_override,
                             f"config.json architectures[0] = {arch}, a base model's name")
    if implied is not None:
        evidence = (f"config.json architectures[0] = {arch}",)
        if implied == "none":
            return Judgement(Head("none", arch, evidence=evidence), (), Verdict.NO_HEAD)
        if fam is None:
            return unsupported_family(model_type, arch, implied, config_file)
        head = Head(implied, arch, config.get("problem_type"), evidence=evidence)
        return Judgement(head, (finding(
            "HC107", f"{arch} has no flex-head equivalent; AutoAdapterModel would load it without its head",
            file=config_file, key="architectures", hint="keep the static class",
        ),), Verdict.NOT_CONVERTIBLE)
    return judge_by_keys(config, config_file, tensors, weights_file, model_type, arch, head_type_override)


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
        return unsupported_family(config.get("model_type"), arch, head.type, config_file)
    migrated = migrated_copy(config, "model")["prediction_heads"][name]
    return Judgement(head, tuple(findings), Verdict.CONVERTIBLE,
                     class_rename_plan(fam["adapter_model"], name, migrated, config_file))
