"""Judge a full model whose class names no head adapters knows: the head type comes from the tensor names.

Keys outside the base model are a head whatever the class is called; the head types that fit are those a
static layout of the family holds exactly. Nothing outside the base model is no head, unless the keys sit under
the prefix only a head class writes and the family's head is tied to the embeddings (nothing of it is stored).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from . import layouts
from .classify_keys import candidate_head_types
from .judgement import Judgement, finding, unsupported_family
from .static import StaticInput, head_keys, judge_static
from ..model import Head, Verdict
from ..read.tensor_info import TensorInfo

# head types whose layouts differ only by the modules they read: the key patterns cannot tell them apart
CLASSIFIER_TYPES = ("classification", "tagging", "multiple_choice", "image_classification")
UNCOVERED = ("HC101", "HC116")  # a tensor no layer holds, or a layer with no tensor


def judge_by_keys(config, config_file, tensors, weights_file, model_type, arch, head_type_override,
                  unknown: str | None = None) -> Judgement:
    unknown = unknown or (f"architectures[0] = {arch} is not a known class" if arch
                          else "config.json names no architecture")
    if not tensors:
        return Judgement(Head("unknown", arch, evidence=(unknown,)), (finding(
            "HC115", "no weight files and no known architecture: nothing to classify the head from",
            file=config_file, hint="scan the folder that holds the weights",
        ),), Verdict.NOT_CONVERTIBLE)
    keys = head_keys(tensors, model_type)
    candidates, evidence = candidate_head_types({k: tensors[k] for k in keys}, config)
    evidence = [unknown, *evidence]
    fam = layouts.family(model_type)
    if fam is None:  # without a family there is no base prefix to tell head keys apart
        guess = candidates[0] if len(candidates) == 1 else (layouts.head_type_of_class(arch) if arch else None)
        return unsupported_family(model_type, arch or "unknown class", guess or "unknown", config_file)
    static = _StaticTrial(config, config_file, tensors, weights_file, model_type, fam["adapter_model"])
    if head_type_override:
        if candidates and head_type_override not in candidates:
            evidence.append(f"--head-type {head_type_override} does not fit the keys ({', '.join(candidates)})")
        candidates = [head_type_override]
        evidence.append(f"--head-type {head_type_override}")
    elif not keys and (tied := _tied_lm_head(tensors, fam, config)):
        candidates = [tied]
        evidence.append(f"the weights sit under a head class's base prefix and hold nothing else: a {tied} head "
                        f"tied to the embeddings")
    elif set(candidates) & set(CLASSIFIER_TYPES):
        candidates = [t for t in dict.fromkeys((*candidates, *CLASSIFIER_TYPES)) if static.holds(t, evidence)]
    if not candidates and keys:
        return _custom_head(arch, config, tensors, keys, evidence)
    if not candidates:
        return Judgement(Head("none", arch, evidence=(*evidence, "no head keys outside the base model")), (),
                         Verdict.NO_HEAD)
    if len(candidates) > 1:
        return Judgement(Head("unknown", arch, config.get("problem_type"), evidence=tuple(evidence),
                              candidates=tuple(candidates)), (finding(
            "HC112", f"the head keys fit {' and '.join(candidates)} equally",
            file=weights_file, hint=f"pass --head-type {'|'.join(candidates)}",
        ),), Verdict.AMBIGUOUS)
    return static.judged_as(candidates[0], arch, unknown, evidence)


@dataclass(frozen=True)
class _StaticTrial:
    """The checkpoint judged as each static class of its family with a given head type."""

    config: Mapping[str, Any]
    config_file: str
    tensors: Mapping[str, TensorInfo]
    weights_file: str | None
    model_type: str
    adapter_model: str
    # holds() tries a type, then judged_as() judges the one left with the same evidence: computed once
    _tried: dict[tuple[str, tuple[str, ...]], list[tuple[str, Judgement]]] = field(
        default_factory=dict, init=False, repr=False, compare=False)

    def trials(self, head_type: str, evidence) -> list[tuple[str, Judgement]]:
        key = (head_type, tuple(evidence))
        if key not in self._tried:
            self._tried[key] = self._judge_each(*key)
        return self._tried[key]

    def _judge_each(self, head_type: str, evidence: tuple[str, ...]) -> list[tuple[str, Judgement]]:
        config = self.config
        if head_type == "multilabel_classification":  # same layout as classification; the loss is problem_type's
            config = {**config, "problem_type": "multi_label_classification"}
        layout_type = "classification" if head_type == "multilabel_classification" else head_type
        return [(name, judge_static(StaticInput(name, self.model_type, config, self.config_file, self.tensors,
                                                self.weights_file, self.adapter_model, evidence=evidence)))
                for name in layouts.static_classes_for(self.model_type, layout_type)]

    def holds(self, head_type: str, evidence) -> bool:
        """A layout of this type holds every head tensor (a missing pooler is no evidence: tiny and pruned
        checkpoints lack it too)."""
        if head_type == "multiple_choice" and not self._one_score_per_choice():
            return False
        return any(not any(f.rule == "HC101" for f in judged.findings) for _, judged in self.trials(head_type, evidence))

    def _one_score_per_choice(self) -> bool:
        # a multiple-choice head scores each choice with one output row; a recorded problem_type means a classifier
        rows = [info.shape[0] for name, info in self.tensors.items()
                if name.split(".")[-2:] in (["classifier", "weight"], ["score", "weight"]) and info.shape]
        return rows == [1] and not self.config.get("problem_type")

    def judged_as(self, head_type, arch, unknown, evidence) -> Judgement:
        """The first static class of the type whose layout covers the weights; otherwise the first, whose findings
        say what is off."""
        trials = self.trials(head_type, evidence)
        if not trials:
            return Judgement(Head(head_type, arch, evidence=tuple(evidence)), (finding(
                "HC107", f"adapters has no {head_type} head for {self.model_type}",
                file=self.config_file, hint="keep the model's own class",
            ),), Verdict.NOT_CONVERTIBLE)
        class_name, judged = next(((c, j) for c, j in trials if not any(f.rule in UNCOVERED for f in j.findings)),
                                  trials[0])
        inferred_note = finding("HC113", f"{unknown}; the weights were judged as {class_name}", file=self.config_file,
                                key="architectures", hint="headcheck migrate writes the flex layout")
        return Judgement(judged.head, (inferred_note, *judged.findings), judged.verdict, judged.plan)


def _tied_lm_head(tensors, fam, config) -> str | None:
    """The family's LM head type when only a head class could have written these keys and its head stores nothing:
    a prefix the bare base class does not write (GPT-2's `transformer.`, BART's `model.`) and tied embeddings."""
    prefixes = set(fam["static_base_prefixes"]) - set(fam["base_modules"])
    wrapped = any(name.split(".", 1)[0] in prefixes for name in tensors)
    return fam.get("tied_lm_head_type") if wrapped and config.get("tie_word_embeddings", True) else None


def _custom_head(arch, config, tensors, keys, evidence) -> Judgement:
    """Weights outside the base model that no head layout of the family holds: a hand-made head. AutoAdapterModel
    would load the checkpoint without it (its tensors reported as unexpected), so it is never "no head"."""
    head = Head("unknown", arch, config.get("problem_type"),
                evidence=(*evidence, f"{len(keys)} tensor(s) outside the base model: {', '.join(keys[:3])}"))
    return Judgement(head, (finding(
        "HC101", f"{len(keys)} head tensor(s) that no head layout of the family covers, e.g. {', '.join(keys[:3])}",
        file=tensors[keys[0]].file, key=keys[0],
        hint="keep the model's own class, or port the head to an adapters custom head",
    ),), Verdict.NOT_CONVERTIBLE)
