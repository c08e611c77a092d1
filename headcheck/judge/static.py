"""Judge a head saved by a static transformers class (XFor...): coverage, labels, loss, tied biases, plan."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping

from . import layouts
from .judgement import Judgement, finding
from ..model import Finding, Head, Plan, Rename, Verdict
from ..read.tensor_info import TensorInfo

DEFAULT_HEAD_NAME = "default"
ADAPTERS_DEFAULT_LABELS = 2  # what adapters' conversion assumes when a config has no label2id


@dataclass(frozen=True)
class StaticInput:
    class_name: str
    model_type: str | None
    label_config: Mapping[str, Any]  # config.json, or head_config.json for adapter folders
    label_file: str
    tensors: Mapping[str, TensorInfo]
    weights_file: str | None
    adapter_model_class: str
    head_name: str = DEFAULT_HEAD_NAME
    evidence: tuple[str, ...] = ()
    extra_findings: tuple[Finding, ...] = ()
    base_in_weights: bool = True  # False for adapter folders: their base model comes from elsewhere


def head_keys(tensors: Mapping[str, TensorInfo], model_type: str | None) -> list[str]:
    """Tensors outside the base model: the head, plus anything custom."""
    fam = layouts.family(model_type) or {}
    prefixes = set(fam.get("static_base_prefixes", ()))
    base = prefixes | set(fam.get("ignored_buffers", ()))
    firsts = {name.split(".", 1)[0] for name in tensors}
    if not firsts & prefixes:  # saved from the bare base class (XModel): its modules sit at the top level
        base |= set(fam.get("base_modules", ()))
    return sorted(name for name in tensors if name.split(".", 1)[0] not in base)


def config_label_count(config: Mapping[str, Any]) -> tuple[int | None, str | None]:
    """Label count the config declares, and where it says so; conflicting declarations give the first."""
    for key in ("id2label", "label2id"):
        if isinstance(config.get(key), dict) and config[key]:
            return len(config[key]), key
    if isinstance(config.get("num_labels"), int):
        return config["num_labels"], "num_labels"
    return None, None


def _label_maps(config: Mapping[str, Any], num_labels: int) -> dict[str, int]:
    label2id = config.get("label2id")
    if isinstance(label2id, dict) and len(label2id) == num_labels:
        return {str(k): int(v) for k, v in label2id.items()}
    id2label = config.get("id2label")
    if isinstance(id2label, dict) and len(id2label) == num_labels:
        return {str(v): int(k) for k, v in id2label.items()}
    return {f"LABEL_{i}": i for i in range(num_labels)}


def judge_static(inp: StaticInput) -> Judgement:
    layout = layouts.static_layout(inp.class_name)
    assert layout is not None, inp.class_name
    cfg = inp.label_config
    flex_type = layout["config"]["head_type"]
    layers = layouts.static_layers(layout)
    final = layers[-1]
    findings: list[Finding] = list(inp.extra_findings)
    wf = inp.weights_file
    evidence = [*inp.evidence, f"{inp.class_name} is in the static-to-flex head map ({flex_type})"]

    expected = {f"{layer.module}.{param}": layer for layer in layers for param in ("weight", "bias")}
    tied_bias = layout.get("tied_output_bias")
    present_head = head_keys(inp.tensors, inp.model_type) if inp.tensors else []
    custom = [k for k in present_head if k not in expected and k != tied_bias]
    if custom:
        findings.append(finding(
            "HC101",
            f"{len(custom)} head tensor(s) not covered by the {inp.class_name} layout, e.g. {', '.join(custom[:3])}",
            file=inp.tensors[custom[0]].file, key=custom[0],
            hint="keep the static class or port the head to an adapters custom head",
        ))

    final_weight = inp.tensors.get(f"{final.module}.weight")
    if inp.tensors and final_weight is None and not layouts.is_lm_head(flex_type):
        findings.append(finding(
            "HC116", f"{inp.class_name} expects {final.module}.weight but the weights hold no such tensor",
            file=wf, key=f"{final.module}.weight",
            hint="save the model that carries the trained head",
        ))

    if inp.tensors and inp.base_in_weights and layout["config"].get("use_pooler"):
        fam = layouts.family(inp.model_type) or {}
        pooler = [p["name"] for p in fam.get("added_params", ()) if ".pooler." in p["name"]]
        if pooler and not any(name in inp.tensors for name in pooler):
            findings.append(finding(
                "HC116", f"the {flex_type} head reads the pooler, but the weights hold no {pooler[0]}",
                file=wf, key=pooler[0], hint="pick the head type the checkpoint was trained with (--head-type)",
            ))

    rows = final_weight.shape[0] if final_weight is not None and final_weight.shape else None
    num_labels, problem_type = None, cfg.get("problem_type")
    if layouts.is_labelled_head(flex_type) or flex_type == "question_answering":
        declared, declared_in = config_label_count(cfg)
        if rows is not None:
            evidence.append(f"{final.module}.weight has {rows} output row{'s' if rows != 1 else ''}")
        num_labels = rows if rows is not None else declared
        has_label2id = isinstance(cfg.get("label2id"), dict) and bool(cfg.get("label2id"))
        if flex_type != "question_answering" and not has_label2id and rows == ADAPTERS_DEFAULT_LABELS:
            # transformers writes no label map for its default labels: adapters' fallback is then right
            evidence.append(f"no label map; {rows} labels, as adapters assumes without one")
        elif flex_type != "question_answering" and not has_label2id:
            findings.append(finding(
                "HC109",
                f"{inp.label_file} has no label2id; adapters would assume 2 labels"
                + (f", the weights have {rows}" if rows is not None else ""),
                file=inp.label_file, key="label2id",
                hint="add id2label/label2id; headcheck migrate writes them from the weight shape",
            ))
        elif flex_type != "question_answering" and rows is not None and declared is not None and declared != rows:
            findings.append(finding(
                "HC102",
                f"{inp.label_file} declares {declared} labels ({declared_in}) but {final.module}.weight has {rows} rows",
                file=inp.label_file, key=declared_in,
                hint=f"make id2label/label2id list exactly {rows} labels",
            ))

    head_type = flex_type
    if flex_type == "classification":
        head_type, problem_type = _judge_loss(inp, num_labels, problem_type, findings)
    if flex_type == "multiple_choice":
        findings.append(finding(
            "HC120", "multiple-choice checkpoints do not record the number of choices",
            file=inp.label_file, hint="pass --num-choices N to headcheck migrate",
        ))
    if tied_bias and tied_bias in inp.tensors and f"{final.module}.bias" not in inp.tensors:
        findings.append(finding(
            "HC108",
            f"output bias stored as {tied_bias}; adapters 1.3.0 drops it, headcheck's plan renames it",
            file=inp.tensors[tied_bias].file, key=tied_bias, hint="use headcheck migrate rather than AutoAdapterModel.from_pretrained",
        ))

    findings.extend(_adapters_divergences(inp, layout, present_head))

    head = Head(
        type=head_type, architecture=inp.class_name, problem_type=problem_type,
        num_labels=num_labels, name=inp.head_name, evidence=tuple(evidence),
    )
    plan = _plan(inp, layout, head, layers, tied_bias) if inp.tensors else None
    if inp.weights_file is None:
        findings.append(finding(
            "HC115", "no weight files: judged from the config alone", file=inp.label_file,
            hint="scan the folder that holds the weights",
        ))
    return Judgement(head, tuple(findings), Verdict.CONVERTIBLE, plan)


def _judge_loss(inp: StaticInput, num_labels: int | None, problem_type: str | None, findings: list[Finding]):
    """Which flex head keeps the training loss: single-label CE, multi-label BCE, or MSE regression."""
    if problem_type == "multi_label_classification":
        findings.append(finding(
            "HC103",
            "multi-label classifier: adapters' own conversion makes it single-label (cross-entropy); "
            "headcheck converts it to multilabel_classification (BCE)",
            file=inp.label_file, key="problem_type", hint="migrate with headcheck, not AutoAdapterModel",
        ))
        return "multilabel_classification", problem_type
    if problem_type == "regression" or (problem_type is None and num_labels == 1):
        if num_labels is not None and num_labels > 1:
            findings.append(finding(
                "HC105",
                f"regression with {num_labels} outputs: the flex classification head would train with cross-entropy",
                file=inp.label_file, key="problem_type", hint="keep the static class",
            ))
        else:
            findings.append(finding(
                "HC104", "single-output regression: the flex classification head uses MSE for one label",
                file=inp.label_file,
            ))
        return "classification", "regression"
    if problem_type is None and num_labels is not None and num_labels > 1:
        findings.append(finding(
            # transformers records problem_type at the first forward with labels: its absence says the loss was
            # computed outside the model (as multi-label training loops do) or the model was never trained
            "HC117", "problem_type unset: no forward pass with labels set it; single-label assumed",
            file=inp.label_file, key="problem_type",
        ))
        return "classification", "single_label_classification"
    return "classification", problem_type


def _plan(inp: StaticInput, layout, head: Head, layers, tied_bias: str | None) -> Plan:
    by_module = {layer.module: layer.index for layer in layers}
    renames = []
    for name in sorted(inp.tensors):
        module, _, param = name.rpartition(".")
        if module in by_module:
            target = f"heads.{inp.head_name}.{by_module[module]}.{param}"
        elif name == tied_bias and f"{layers[-1].module}.bias" not in inp.tensors:
            target = f"heads.{inp.head_name}.{layers[-1].index}.bias"
        else:
            continue
        renames.append(Rename(name, target, inp.tensors[name].file))
    config = dict(layout["config"])
    config["head_type"] = head.type
    if head.type == "multiple_choice":
        config["num_choices"] = 2
    elif head.num_labels is not None and not layouts.is_lm_head(head.type):
        config["num_labels"] = head.num_labels
        config["label2id"] = _label_maps(inp.label_config, head.num_labels)
    return Plan(
        adapter_model_class=inp.adapter_model_class,
        head_name=inp.head_name,
        head_config=config,
        renames=tuple(renames),
        config_file=inp.label_file,
    )


def _adapters_divergences(inp: StaticInput, layout, present_head: list[str]) -> list[Finding]:
    """Where adapters' own conversion of this checkpoint fails or changes outputs (migrate corrects each)."""
    if not inp.base_in_weights or not inp.tensors:
        return []
    fam = layouts.family(inp.model_type) or {}
    found = []
    foreign_prefixes = sorted({n.split(".", 1)[0] for n in inp.tensors} & set(fam.get("base_renames", {})))
    # transformers loads a bare base checkpoint into the AdapterModel; only head keys next to it break the load
    if foreign_prefixes and present_head:
        found.append(finding(
            "HC123", f"base weights under {', '.join(foreign_prefixes)}.* where {fam['adapter_model']} expects "
                     f"{fam['base_renames'][foreign_prefixes[0]].split('.')[0]}.*: AutoAdapterModel.from_pretrained "
                     "fails ('state dictionary ... corrupted')",
            file=inp.weights_file, key=foreign_prefixes[0], hint="headcheck migrate renames the prefix"))
    if layout.get("when_embeddings_tied") and inp.label_config.get("tie_word_embeddings", True):
        found.append(finding(
            "HC123", f"{fam['adapter_model']} scales the decoder output by d_model**-0.5 with tied embeddings, "
                     f"{inp.class_name} does not: adapters' own conversion changes the logits",
            file=inp.label_file, key="tie_word_embeddings", hint="headcheck migrate unties the embeddings"))
    spec = fam.get("language_adapters")
    if spec:
        pattern = re.compile(spec["pattern"])
        languages = sorted({m["language"] for n in inp.tensors if (m := pattern.match(n))})
        if languages:
            cfg = inp.label_config
            if cfg.get("adapter_layer_norm") or not cfg.get("adapter_reuse_layer_norm", True):
                found.append(finding("HC124", "X-MOD adapters with their own layer norm cannot become bottleneck adapters",
                                     file=inp.label_file, key="adapter_layer_norm", hint="keep the XmodFor... class"))
            else:
                default = cfg.get("default_language") or languages[0]
                found.append(finding(
                    "HC122", f"{len(languages)} X-MOD language adapters ({', '.join(languages)}) become adapters "
                             f"adapters; activate one after loading", file=inp.weights_file,
                    hint=f"model.set_active_adapters({default!r})"))
    return found
