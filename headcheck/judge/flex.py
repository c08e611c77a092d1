"""Judge checkpoints already in the flex layout: does each head config agree with its heads.<name>.<i>.* weights?"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any, Mapping

from . import layouts
from .judgement import finding
from ..model import Finding, Head, Plan
from ..read.tensor_info import TensorInfo

HEAD_KEY = re.compile(r"^heads\.(?P<name>.+)\.(?P<index>\d+)\.(?P<param>[^.]+)$")


def heads_in_weights(tensors: Mapping[str, TensorInfo]) -> dict[str, dict[int, dict[str, TensorInfo]]]:
    """heads.<name>.<index>.<param> tensors grouped by head name and module index."""
    found: dict[str, dict[int, dict[str, TensorInfo]]] = defaultdict(lambda: defaultdict(dict))
    for name, info in tensors.items():
        match = HEAD_KEY.match(name)
        if match:
            found[match["name"]][int(match["index"])][match["param"]] = info
    return found


def head_from_flex_config(name: str, cfg: Mapping[str, Any], architecture: str | None, evidence: list[str],
                          weights: dict[int, dict[str, TensorInfo]] | None) -> Head:
    head_type = cfg.get("head_type") or "unknown"
    modules = layouts.flex_modules(cfg)
    final = weights.get(modules[-1].index, {}).get("weight") if weights else None
    rows = final.shape[0] if final is not None and final.shape else None
    num_labels = cfg.get("num_labels")
    if head_type in layouts.LABELLED_HEAD_TYPES and rows is not None:
        num_labels = rows
    problem_type = "regression" if head_type == "classification" and num_labels == 1 else None
    return Head(head_type, architecture, problem_type, num_labels if head_type not in layouts.LM_HEAD_TYPES else None,
                name, tuple(evidence))


def check_flex_heads(head_configs: Mapping[str, Mapping[str, Any]], tensors: Mapping[str, TensorInfo],
                     config_file: str, weights_file: str | None, config_key: str) -> list[Finding]:
    """HC110 findings for every disagreement between head configs and heads.* weights."""
    findings: list[Finding] = []
    in_weights = heads_in_weights(tensors)
    if not tensors:
        if weights_file is None:  # an unreadable file was reported where it was read
            findings.append(finding("HC115", f"{config_file} declares heads but there is no weight file",
                                    file=config_file, hint="scan the folder that holds the weights"))
        return findings
    for name in sorted(set(in_weights) - set(head_configs)):
        findings.append(finding(
            "HC110", f"weights hold head {name!r} but {config_file} declares no such head",
            file=weights_file, key=f"heads.{name}", hint=f"add {name!r} to {config_key} or drop its weights",
        ))
    for name, cfg in head_configs.items():
        key = f"{config_key}.{name}" if config_key else "config"
        weights = in_weights.get(name)
        if not weights and _lm(cfg) and int(cfg.get("layers") or 1) == 1 and not cfg.get("bias"):
            continue  # a single output layer tied to the input embeddings stores nothing
        if not weights:
            findings.append(finding(
                "HC110", f"head {name!r} is declared in {config_file} but has no heads.{name}.* weights",
                file=config_file, key=key, hint="save the model with its head, or remove the head from the config",
            ))
            continue
        modules = layouts.flex_modules(cfg)
        expected = {m.index for m in modules}
        unexpected = sorted(set(weights) - expected)
        missing = sorted(m.index for m in modules if m.index not in weights and not (m.final and _lm(cfg)))
        if unexpected or missing:
            findings.append(finding(
                "HC110",
                f"head {name!r}: config implies weight layers {sorted(expected)} "
                f"(layers={cfg.get('layers')}) but the weights have {sorted(weights)}",
                file=config_file, key=f"{key}.layers", hint="set layers/activation_function to match the weights",
            ))
            continue
        findings.extend(_check_output_size(name, cfg, weights, modules, config_file, key))
    return findings


def _lm(cfg: Mapping[str, Any]) -> bool:
    return cfg.get("head_type") in layouts.LM_HEAD_TYPES


def _check_output_size(name, cfg, weights, modules, config_file, key) -> list[Finding]:
    final = weights.get(modules[-1].index, {}).get("weight")
    expected_rows = layouts.flex_output_size(cfg)
    if final is None or not final.shape or expected_rows is None:
        return []
    rows = final.shape[0]
    problems = []
    if rows != expected_rows:
        problems.append(f"num_labels {expected_rows} but the output layer has {rows} rows")
    label2id = cfg.get("label2id")
    if isinstance(label2id, dict) and label2id and cfg.get("head_type") in layouts.LABELLED_HEAD_TYPES and len(label2id) != rows:
        problems.append(f"label2id lists {len(label2id)} labels but the output layer has {rows} rows")
    return [
        finding("HC110", f"head {name!r}: {problem}", file=config_file, key=f"{key}.num_labels",
                hint="make num_labels and label2id match the weights")
        for problem in problems
    ]


def class_rename_plan(adapter_model_class: str, name: str, cfg: Mapping[str, Any], config_file: str) -> Plan:
    """Legacy XModelWithHeads checkpoints already use the flex weight names: only the class name changes."""
    return Plan(adapter_model_class, name, dict(cfg), renames=(), config_file=config_file)
