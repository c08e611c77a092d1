"""Questions about head layouts answered from the rule data: families, class names, static and flex layer maps."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping

from . import ruledata

LM_HEAD_TYPES = frozenset({"masked_lm", "causal_lm", "seq2seq_lm"})
LABELLED_HEAD_TYPES = frozenset({"classification", "multilabel_classification", "tagging", "image_classification"})


def family(model_type: str | None) -> dict[str, Any] | None:
    return ruledata.families()["families"].get(model_type) if model_type else None


def family_of_class_prefix(prefix: str) -> str | None:
    """'Roberta' (from RobertaModelWithHeads / RobertaAdapterModel) -> 'roberta'."""
    for model_type, fam in ruledata.families()["families"].items():
        if fam["adapter_model"].removesuffix("AdapterModel") == prefix:
            return model_type
    return None


def head_type_of_class(class_name: str) -> str | None:
    """Head type a transformers-style class name implies by its suffix, None when it follows no convention."""
    for entry in ruledata.families()["class_suffixes"]:
        if class_name.endswith(entry["suffix"]) and len(class_name) > len(entry["suffix"]):
            return entry["head_type"]
    return None


def static_layout(class_name: str) -> dict[str, Any] | None:
    return ruledata.head_layouts().get(class_name)


def static_classes_for(model_type: str, head_type: str) -> list[str]:
    """Static classes of a family with the given flex head type, e.g. ('bert', 'tagging') -> [BertForTokenClassification]."""
    fam = family(model_type)
    if fam is None:
        return []
    prefix = fam["adapter_model"].removesuffix("AdapterModel")
    return [
        name
        for name, layout in ruledata.head_layouts().items()
        if layout["config"]["head_type"] == head_type and re.fullmatch(rf"{prefix}(For|LMHead|Generation)\w*", name)
    ]


@dataclass(frozen=True)
class StaticLayer:
    index: int  # position in the flex head's nn.Sequential
    module: str  # static module path, e.g. classifier.out_proj


def static_layers(layout: Mapping[str, Any]) -> list[StaticLayer]:
    return [StaticLayer(i, name) for i, name in enumerate(layout["layers"]) if name is not None]


@dataclass(frozen=True)
class FlexModule:
    index: int
    kind: str  # linear | norm
    final: bool


def flex_modules(head_config: Mapping[str, Any]) -> list[FlexModule]:
    """Weight-carrying modules adapters builds for a flex head config (mirrors PredictionHead.build)."""
    layers = int(head_config.get("layers") or 1)
    has_act = bool(head_config.get("activation_function"))
    modules: list[FlexModule] = []
    index = 0
    if head_config.get("head_type") in LM_HEAD_TYPES:
        for _ in range(layers - 1):
            modules.append(FlexModule(index, "linear", False))
            index += 1 + has_act
            if head_config.get("layer_norm"):
                modules.append(FlexModule(index, "norm", False))
                index += 1
        modules.append(FlexModule(index, "linear", True))
        return modules
    for layer in range(layers):
        index += 1  # dropout
        final = layer == layers - 1
        modules.append(FlexModule(index, "linear", final))
        index += 1 + (has_act and not final)
    return modules


def flex_output_size(head_config: Mapping[str, Any]) -> int | None:
    """Rows of the final flex layer the config implies, None for LM heads (vocabulary sized)."""
    head_type = head_config.get("head_type")
    if head_type == "multiple_choice":
        return 1
    if head_type == "question_answering":
        return int(head_config.get("num_labels") or 2)
    if head_type in LM_HEAD_TYPES:
        return None
    num_labels = head_config.get("num_labels")
    return int(num_labels) if num_labels is not None else None
