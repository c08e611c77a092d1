"""Judge the way out of adapters: can this checkpoint be written as one of transformers' own classes?

The inverse of the static -> flex judgement (static.py): a flex head whose config equals a static class's entry in
adapters' head map takes that class's module names back; everything else is refused with a rule saying why.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping

from . import layouts, ruledata
from .export_adapters import Merge, judge_merge, merge_of, why_not_merged
from .judgement import finding
from ..model import Export, ExportVerdict, Finding, Kind, Layout, Report, Verdict
from ..read.facts import Facts

TARGET = "transformers"
# the keys that decide what a flex head computes at inference (dropout only matters in training)
SHAPE_KEYS = ("layers", "activation_function", "use_pooler", "bias", "layer_norm")


class ExportChoiceError(ValueError):
    """--head / --adapter name nothing the checkpoint holds, or several adapters and none chosen."""


@dataclass(frozen=True)
class ExportPlan:
    """What an export writes: the static class, and where each flex head layer's parameters go."""

    architecture: str
    head_name: str
    head_type: str  # the flex head type
    layer_modules: Mapping[int, str]  # flex head layer index -> static module path
    tied_output_bias: str | None  # the static class's name of an LM output bias it ties to the decoder's
    pooler_dense: str | None  # the base model's pooler dense layer (None: the family has no pooler)
    keeps_pooler: bool  # the static class's base model has a pooler
    head_writes_pooler: bool  # head layer 1 is written as the pooler's dense layer
    base_renames: Mapping[str, str] = field(default_factory=dict)  # flex name prefix -> the static class's
    output_bias_buffer: str | None = None  # BART's final_logits_bias: the LM head's output bias, or zeros
    config: Mapping[str, Any] = field(default_factory=dict)  # config.json keys the class reads for this head
    merge: Merge | None = None  # the adapter merged into the base weights
    input_scale: float | None = None  # folded into the head's first weight (T5's d_model**-0.5, tied embeddings)


@dataclass(frozen=True)
class ExportJudgement:
    export: Export
    plan: ExportPlan | None = None
    adapter_choices: tuple[str, ...] = ()  # several adapters: migrate needs --adapter, one of these


def _shape(cfg: Mapping[str, Any], head_type: str) -> dict[str, Any]:
    """A flex head config's SHAPE_KEYS, with adapters' defaults for the keys it leaves out."""
    lm = layouts.is_lm_head(head_type)
    layers = int(cfg.get("layers") or 1)
    # adapters builds the activation (and an LM head's layer norm) between layers only: a one-layer head has
    # neither, whatever its config names
    return {"layers": layers, "activation_function": (cfg.get("activation_function") or None) if layers > 1 else None,
            "use_pooler": bool(cfg.get("use_pooler", False)), "bias": bool(cfg.get("bias", not lm)),
            "layer_norm": bool(cfg.get("layer_norm", False)) and layers > 1}


def _refused(code: str, message: str, config_file: str, key: str | None = None,
             hint: str | None = None) -> ExportJudgement:
    return _refusals([finding(code, message, file=config_file, key=key, hint=hint)])


def _refusals(findings: list[Finding]) -> ExportJudgement:
    return ExportJudgement(Export(TARGET, ExportVerdict.NOT_EXPORTABLE, findings=tuple(findings)))


def refused(reason: Finding) -> ExportJudgement:
    """A refusal found by the export's planning, which reads what the header-only judgement cannot (HC148)."""
    return _refusals([reason])


def judge_transformers_export(facts: Facts, report: Report, head: str | None = None,
                              adapter: str | None = None) -> ExportJudgement:
    """`exports.transformers` of a scanned checkpoint; `head` / `adapter` choose where it carries several."""
    config_file = facts.doc_file("model") or "config.json"
    config = facts.doc("model") or {}
    if report.kind is Kind.ADAPTER:
        return _adapter_folder(facts, report, head, adapter)
    if report.kind is not Kind.FULL_MODEL or report.layout in (Layout.CUSTOM, Layout.FOREIGN):
        return ExportJudgement(Export(TARGET, ExportVerdict.NOT_APPLICABLE))
    merging = judge_merge(config, config_file, adapter, report.model_type)
    if report.layout in (Layout.STATIC, Layout.BASE):
        if not (merging.findings or merging.merge or merging.choices):
            return ExportJudgement(Export(TARGET, ExportVerdict.NATIVE, report.head.architecture))
        return _refused("HC145", "a static model with adapters saved whole (adapters.init): headcheck merges "
                                 "adapters of flex models only", config_file, "adapters")
    if report.layout is Layout.LEGACY_FLEX or report.verdict not in (Verdict.ALREADY_FLEX, Verdict.NO_HEAD):
        why = ("saved by a legacy class" if report.layout is Layout.LEGACY_FLEX
               else f"its scan verdict is {report.verdict.value}")
        rewritable = report.layout is Layout.LEGACY_FLEX or report.verdict is Verdict.CONVERTIBLE
        return _refused("HC146", f"not exported: {why}; an export reproduces a consistent flex checkpoint",
                        config_file, hint=f"headcheck migrate {report.source} --out FLEX, then export FLEX"
                        if rewritable else "fix the findings the scan reports, then export")
    heads = dict(config.get("prediction_heads") or {})
    if head is not None:
        if head not in heads:
            raise ExportChoiceError(f"--head {head}: the checkpoint's heads are {', '.join(heads) or 'none'}")
        heads = {head: heads[head]}
    if len(heads) > 1:
        return _refused("HC144", f"{len(heads)} heads ({', '.join(heads)}); a transformers class holds one",
                        config_file, "prediction_heads", f"choose one: --head {next(iter(heads))}")
    if merging.findings:
        return _refusals(list(merging.findings))
    if not heads:
        return _refused("HC142", "a flex model without a prediction head: headcheck has no proven export of "
                                 "the bare base model", config_file, "prediction_heads")
    name, cfg = next(iter(heads.items()))
    judged = judge_head(report.model_type, name, cfg, config_file)
    if judged.plan is None:
        return judged
    merge = merging.merge
    export = dataclasses.replace(judged.export, adapter=merge.adapter if merge else None, notes=merging.notes)
    plan = dataclasses.replace(judged.plan, merge=merge, input_scale=_input_scale(report.model_type, config,
                                                                                 judged.plan.head_type))
    return ExportJudgement(export, plan, merging.choices)


def _input_scale(model_type: str | None, config: Mapping[str, Any], head_type: str) -> float | None:
    """T5AdapterModel multiplies the decoder output by d_model**-0.5 before every head when the embeddings are
    tied (its adapter_model.py); T5ForQuestionAnswering does not: the factor goes into the head's weight."""
    if head_type not in ruledata.exports()["tied_input_scale"].get(model_type, ()):
        return None
    if not config.get("tie_word_embeddings", True):
        return None
    return float(config["d_model"]) ** -0.5


def _adapter_folder(facts: Facts, report: Report, head: str | None, adapter: str | None) -> ExportJudgement:
    """An adapter folder exports with its base model (migrate's --base): the adapter merged, the head placed.
    `head` / `adapter` may only name the folder's own."""
    doc = facts.doc("adapter") or {}
    file = facts.doc_file("adapter") or "adapter_config.json"
    name = str(doc.get("name") or "")
    if adapter is not None and adapter != name:
        raise ExportChoiceError(f"--adapter {adapter}: the checkpoint's adapters are {name or 'none'}")
    head_doc = facts.doc("head")
    if head is not None and (head_doc is None or head != str(head_doc.get("name") or name)):
        shown = str(head_doc.get("name") or name) if head_doc is not None else "none"
        raise ExportChoiceError(f"--head {head}: the checkpoint's heads are {shown}")
    if why := why_not_merged(doc.get("config"), report.model_type):
        return _refused("HC145", f"adapter {name!r} is {why}; headcheck does not merge it", file, "config",
                        "keep serving it with adapters, or retrain with LoRA or (IA)^3")
    head_file = facts.doc_file("head") or "head_config.json"
    if head_doc is None:
        return _refused("HC142", f"adapter {name!r} was saved without a head: headcheck has no proven export of the "
                                 "bare base model", file)
    if report.verdict is not Verdict.ALREADY_FLEX:  # a static or legacy head, or one that disagrees with its weights
        return _refused("HC146", f"not exported: the head's scan verdict is {report.verdict.value}; an export "
                                 "reproduces a consistent flex checkpoint", head_file,
                        hint=f"headcheck migrate {report.source} --out FLEX, then export FLEX")
    head_name = str(head_doc.get("name") or name)
    cfg = head_doc.get("config") if isinstance(head_doc.get("config"), dict) else {}
    judged = judge_head(report.model_type, head_name, cfg, head_file)
    if judged.plan is None:
        return judged
    merge = merge_of(name, doc["config"])
    export = dataclasses.replace(judged.export, adapter=name, notes=(
        "an adapter folder: migrate --to transformers needs its base model (--base DIR|org/name; default "
        "adapter_config.json's model_name)",))
    return ExportJudgement(export, dataclasses.replace(judged.plan, merge=merge))


def judge_head(model_type: str | None, name: str, cfg: Mapping[str, Any], config_file: str) -> ExportJudgement:
    data = ruledata.exports()
    head_type = str(cfg.get("head_type") or "unknown")
    key = f"prediction_heads.{name}"
    static_type = "classification" if head_type == "multilabel_classification" else head_type
    if model_type in data["last_token_pooling"] and static_type == "classification":
        return _refused("HC143", f"head {name!r}: {model_type} classification pools the last token, which adapters "
                                 "and transformers pick differently under left padding", config_file, key)
    candidates = layouts.static_classes_for(model_type, static_type) if model_type else []
    proven = data["head_types"].get(model_type)
    if (head_type in data["no_static_class"] or model_type not in data["families"] or not candidates
            or (proven is not None and head_type not in proven)):
        return _refused("HC142", f"head {name!r} ({head_type}) of model_type {model_type!r}: no transformers class "
                                 "computes it, or headcheck has proven none", config_file, key)
    shape = _shape(cfg, head_type)
    pooler = data["pooler"].get(model_type)
    variant = data["pooler_variant"]
    for class_name in candidates:
        layout = layouts.static_layout(class_name)
        wanted = _class_shape(model_type, layout, static_type, shape)
        via_pooler = (pooler is not None and shape == _shape(variant["config"], static_type)
                      and class_name in pooler["kept_by"]
                      and all(wanted[k] == v for k, v in variant["replaces"].items()))
        if shape == wanted or via_pooler:
            return ExportJudgement(Export(TARGET, ExportVerdict.EXPORTABLE, class_name, head_name=name),
                                   plan=_plan(model_type, class_name, layout, name, head_type, cfg, pooler, via_pooler))
    wanted = _class_shape(model_type, layouts.static_layout(candidates[0]), static_type, shape)
    differs = [k for k in SHAPE_KEYS if shape[k] != wanted[k]]
    described = ", ".join(f"{k} {shape[k]!r} (the class: {wanted[k]!r})" for k in differs)
    if differs == ["activation_function"]:
        return _refused("HC140", f"head {name!r}: {candidates[0]} hard-codes another activation: {described}",
                        config_file, f"{key}.activation_function")
    return _refused("HC141", f"head {name!r} has no place in {candidates[0]}: {described}", config_file, key)


def _class_shape(model_type: str, layout: Mapping[str, Any], static_type: str,
                 shape: Mapping[str, Any]) -> dict[str, Any]:
    """The shape a static class computes; an LM output bias fits a class that adds a bias buffer (BART's
    final_logits_bias holds it, or zeros for a head without one)."""
    wanted = _shape(layout["config"], static_type)
    if static_type == "seq2seq_lm" and model_type in ruledata.exports()["output_bias_buffer"]:
        wanted["bias"] = shape["bias"]
    return wanted


def _plan(model_type: str, class_name: str, layout: Mapping[str, Any], name: str, head_type: str,
          cfg: Mapping[str, Any], pooler: Mapping[str, Any] | None, via_pooler: bool) -> ExportPlan:
    modules = {layer.index: layer.module for layer in layouts.static_layers(layout)}
    if via_pooler:  # adapters' layer 1 (dense, then tanh) is the pooler; its output layer the class's classifier
        modules = {1: pooler["dense"], 4: modules[1]}
    data = ruledata.exports()
    buffer = data["output_bias_buffer"].get(model_type) if head_type == "seq2seq_lm" else None
    return ExportPlan(class_name, name, head_type, modules, layout.get("tied_output_bias"),
                      pooler["dense"] if pooler else None, bool(pooler and class_name in pooler["kept_by"]),
                      via_pooler, base_renames=data["base_renames"].get(class_name, {}), output_bias_buffer=buffer,
                      config=_head_settings(head_type, cfg))


def _head_settings(head_type: str, cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The config.json keys the static class reads for the head: labels and the loss (problem_type)."""
    if layouts.is_lm_head(head_type) or head_type in ("multiple_choice", "question_answering"):
        return {}
    label2id = cfg.get("label2id") if isinstance(cfg.get("label2id"), dict) else None
    num_labels = int(cfg.get("num_labels") or len(label2id or {}) or 2)
    if not label2id or len(label2id) != num_labels:
        label2id = {f"LABEL_{i}": i for i in range(num_labels)}
    settings: dict[str, Any] = {"id2label": {str(i): label for label, i in label2id.items()}, "label2id": label2id}
    if head_type == "multilabel_classification":
        settings["problem_type"] = "multi_label_classification"
    elif head_type == "classification":
        settings["problem_type"] = "regression" if num_labels == 1 else "single_label_classification"
    return settings
