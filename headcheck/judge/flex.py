"""Judge checkpoints already in the flex layout: does each head config agree with its heads.<name>.* weights?"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Iterable, Mapping

from . import layouts
from .judgement import finding
from ..model import Finding, Head, Plan
from ..read.tensor_info import TensorInfo


def heads_in_weights(tensors: Mapping[str, TensorInfo], names: Iterable[str] = ()) -> dict[str, dict[str, TensorInfo]]:
    """heads.<name>.<path> tensors grouped by head name, then by the path below it. `names` are the declared
    heads (a name may hold dots); other heads are named by the component after `heads.`."""
    declared = sorted(names, key=len, reverse=True)
    found: dict[str, dict[str, TensorInfo]] = defaultdict(dict)
    for key, info in tensors.items():
        if not key.startswith("heads."):
            continue
        rest = key[len("heads."):]
        name = next((n for n in declared if rest.startswith(n + ".")), rest.partition(".")[0])
        found[name][rest[len(name) + 1:]] = info
    return found


def _output_param(params: list[layouts.FlexParam] | None,
                  weights: Mapping[str, TensorInfo] | None) -> TensorInfo | None:
    output = next((p.path for p in params or () if p.output), None)
    return weights.get(output) if weights and output else None


def head_from_flex_config(name: str, cfg: Mapping[str, Any], architecture: str | None, evidence: list[str],
                          weights: dict[str, TensorInfo] | None) -> Head:
    head_type = cfg.get("head_type") or "unknown"
    final = _output_param(layouts.flex_params(cfg), weights)
    rows = final.shape[0] if final is not None and final.shape else None
    num_labels = cfg.get("num_labels")
    if layouts.is_labelled_head(head_type) and rows is not None:
        num_labels = rows
    problem_type = "regression" if head_type == "classification" and num_labels == 1 else None
    return Head(head_type, architecture, problem_type, None if layouts.is_lm_head(head_type) else num_labels,
                name, tuple(evidence))


def check_flex_heads(head_configs: Mapping[str, Mapping[str, Any]], tensors: Mapping[str, TensorInfo],
                     config_file: str, weights_file: str | None, config_key: str) -> list[Finding]:
    """HC110 findings for every disagreement between head configs and heads.* weights."""
    findings: list[Finding] = []
    in_weights = heads_in_weights(tensors, head_configs)
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
        weights = in_weights.get(name, {})
        params = layouts.flex_params(cfg)
        if params is None:  # a head type adapters does not know: its weights cannot be checked
            continue
        required = {p.path for p in params if not p.optional}
        if not weights and required:
            findings.append(finding(
                "HC110", f"head {name!r} is declared in {config_file} but has no heads.{name}.* weights",
                file=config_file, key=key, hint="save the model with its head, or remove the head from the config",
            ))
            continue
        unexpected = sorted(set(weights) - {p.path for p in params})
        missing = sorted(required - set(weights))
        if unexpected or missing:
            details = "; ".join(filter(None, [unexpected and f"unexpected {', '.join(unexpected)}",
                                              missing and f"missing {', '.join(missing)}"]))
            findings.append(finding(
                "HC110",
                f"head {name!r}: its config ({cfg.get('head_type')}, layers={cfg.get('layers')}, "
                f"activation_function={cfg.get('activation_function')!r}) does not match the weights: {details}",
                file=config_file, key=f"{key}.layers", hint="set layers/activation_function/bias to match the weights",
            ))
            continue
        findings.extend(_check_output_size(name, cfg, _output_param(params, weights), config_file, key))
    return findings


def _check_output_size(name, cfg, final: TensorInfo | None, config_file, key) -> list[Finding]:
    expected_rows = layouts.flex_output_size(cfg)
    if final is None or not final.shape or expected_rows is None:
        return []
    rows = final.shape[0]
    problems = []
    if rows != expected_rows:
        problems.append(f"num_labels {expected_rows} but the output layer has {rows} rows")
    label2id = cfg.get("label2id")
    if isinstance(label2id, dict) and label2id and layouts.is_labelled_head(cfg.get("head_type")) and len(label2id) != rows:
        problems.append(f"label2id lists {len(label2id)} labels but the output layer has {rows} rows")
    return [
        finding("HC110", f"head {name!r}: {problem}", file=config_file, key=f"{key}.num_labels",
                hint="make num_labels and label2id match the weights")
        for problem in problems
    ]


def class_rename_plan(adapter_model_class: str, name: str, cfg: Mapping[str, Any], config_file: str) -> Plan:
    """Legacy XModelWithHeads checkpoints already use the flex weight names: only the class name changes."""
    return Plan(adapter_model_class, name, dict(cfg), renames=(), config_file=config_file)
