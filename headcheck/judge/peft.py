"""Judge a PEFT adapter folder: recognised, its head (if any) named, never converted."""

from __future__ import annotations

import re

from ..read.facts import Facts
from .judgement import Judgement, finding
from ..model import Head, Verdict

TASK_HEAD_TYPES = {
    "SEQ_CLS": "classification",
    "TOKEN_CLS": "tagging",
    "QUESTION_ANS": "question_answering",
}
# Heads PEFT saves next to the LoRA weights: modules_to_save copies, or plain head modules in old releases.
HEAD_MODULE = re.compile(r"(^|\.)(classifier|score|pre_classifier|qa_outputs|classification_head)(\.|$)")


def judge_peft(facts: Facts) -> Judgement:
    config = facts.doc("peft") or {}
    config_file = facts.doc_file("peft")
    task = config.get("task_type")
    tensors = facts.weights.get("peft", {})
    head_tensors = sorted(n for n in tensors if HEAD_MODULE.search(n))
    evidence = [f"{config_file} peft_type = {config.get('peft_type')}, task_type = {task}"]
    modules_to_save = config.get("modules_to_save") or []
    if head_tensors:
        evidence.append(f"head tensors saved with the adapter, e.g. {head_tensors[0]}")
    elif modules_to_save:
        evidence.append(f"modules_to_save = {modules_to_save}")
    has_head = bool(head_tensors) or (task in TASK_HEAD_TYPES and (bool(modules_to_save) or not tensors))
    head_type = TASK_HEAD_TYPES.get(task, "unknown") if has_head else "none"
    note = finding("HC118", "a PEFT adapter: load it with peft, adapters cannot", file=config_file,
                   key="peft_type", hint="nothing to convert")
    head = Head(head_type, config.get("base_model_name_or_path"), evidence=tuple(evidence))
    return Judgement(head, (note,), Verdict.NOT_CONVERTIBLE if has_head else Verdict.NO_HEAD)
