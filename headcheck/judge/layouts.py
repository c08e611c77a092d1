"""Questions about head layouts answered from the rule data: families, class names, static and flex layer maps."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping

from . import ruledata

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
        if layout["config"]["head_type"] == head_type and re.fullmatch(rf"{prefix}(For|LMHead|Generation|Decoder)\w*", name)
    ]


@dataclass(frozen=True)
class StaticLayer:
    index: int  # position in the flex head's nn.Sequential
    module: str  # static module path, e.g. classifier.out_proj


def static_layers(layout: Mapping[str, Any]) -> list[StaticLayer]:
    return [StaticLayer(i, name) for i, name in enumerate(layout["layers"]) if name is not None]


@dataclass(frozen=True)
class FlexParam:
    path: str  # below heads.<name>., e.g. "4.weight" or "biaffine_rels.weight"
    output: bool  # its first dimension counts the head's outputs
    optional: bool = False  # an LM output weight tied to the input embeddings is not stored


def flex_head_spec(head_type: str | None) -> dict[str, Any] | None:
    return ruledata.flex_heads().get(head_type) if head_type else None


def is_lm_head(head_type: str | None) -> bool:
    return (flex_head_spec(head_type) or {}).get("layout") == "lm"


def is_labelled_head(head_type: str | None) -> bool:
    return bool((flex_head_spec(head_type) or {}).get("labelled"))


def flex_params(head_config: Mapping[str, Any]) -> list[FlexParam] | None:
    """The parameters adapters builds for a flex head config (rules/flex_heads.json names how), None for a
    head type adapters does not know."""
    spec = flex_head_spec(head_config.get("head_type"))
    if spec is None:
        return None
    if spec["layout"] == "named":
        return [FlexParam(p["path"], p["output"]) for p in spec["params"]]
    layers = int(head_config.get("layers") or 1)
    has_act = bool(head_config.get("activation_function"))
    bias = head_config.get("bias", True) is not False
    params: list[FlexParam] = []
    index = 0
    if spec["layout"] == "lm":  # mirrors CausalLMHead.build
        for _ in range(layers - 1):
            params += [FlexParam(f"{index}.weight", False), FlexParam(f"{index}.bias", False)]
            index += 1 + has_act
            if head_config.get("layer_norm"):
                params += [FlexParam(f"{index}.weight", False), FlexParam(f"{index}.bias", False)]
                index += 1
        params.append(FlexParam(f"{index}.weight", True, optional=True))
        if head_config.get("bias"):  # an LM head's output bias is off unless asked for
            params.append(FlexParam(f"{index}.bias", False))
        return params
    for layer in range(layers):  # mirrors PredictionHead.build: dropout, linear[, activation]
        index += 1
        final = layer == layers - 1
        params.append(FlexParam(f"{index}.weight", final))
        if bias or not final:
            params.append(FlexParam(f"{index}.bias", False))
        index += 1 + (has_act and not final)
    return params


def flex_output_size(head_config: Mapping[str, Any]) -> int | None:
    """Outputs of a flex head config (rows of its output parameter), None when the config does not say
    (LM heads: the vocabulary size comes from the model)."""
    spec = flex_head_spec(head_config.get("head_type"))
    if spec is None or spec["layout"] == "lm":
        return None
    outputs = spec["outputs"]
    if isinstance(outputs, int):
        return outputs
    value = head_config.get(outputs, spec.get("default_outputs"))
    return int(value) if value is not None else None
