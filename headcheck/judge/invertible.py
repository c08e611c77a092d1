"""Invertible adapters under a static language-model head (HC131).

A static model made adapter-ready with `adapters.init` applies an invertible adapter after the input embeddings
only. adapters' flex LM heads (`CausalLMHead.forward`, which `BertStyleMaskedLMHead` and `Seq2SeqLMHead` inherit)
also pass the hidden states through its inverse (`rev=True`) before the output layer, whenever the active adapter
has one: no flex head computes what the static head did. Read from configs and tensor names only.
"""

from __future__ import annotations

from typing import Any, Iterator, Mapping

from . import layouts
from .judgement import finding
from ..model import Finding, Head
from ..read.facts import Facts

# adapters' ADAPTER_CONFIG_MAP names whose config sets inv_adapter
INVERTIBLE_CONFIG_NAMES = {"seq_bn_inv", "double_seq_bn_inv", "pfeiffer+inv", "houlsby+inv"}
INVERTIBLE_WEIGHTS = "invertible_adapters."


def _inv_setting(config: Any) -> str | None:
    """The invertible block type a saved adapter config asks for (`nice`, `glow`, or the config's name), if any:
    `inv_adapter`, adapter-transformers 1.x's nested `invertible_adapter`, inside a config union, or a name."""
    if isinstance(config, str):
        name = config.split("[", 1)[0].strip()
        return name if name in INVERTIBLE_CONFIG_NAMES else None
    if not isinstance(config, Mapping):
        return None
    if config.get("inv_adapter"):
        return str(config["inv_adapter"])
    nested = config.get("invertible_adapter")
    if isinstance(nested, Mapping) and nested.get("block_type"):
        return str(nested["block_type"])
    members = config.get("configs")  # a ConfigUnion ("architecture": "union")
    return next(filter(None, map(_inv_setting, members)), None) if isinstance(members, list) else None


def _from_configs(facts: Facts) -> Iterator[tuple[str, str, str, str]]:
    """(adapter name, block type, file, key) for each invertible adapter a config declares."""
    adapter_doc = facts.doc("adapter")
    if adapter_doc is not None:
        if kind := _inv_setting(adapter_doc.get("config")):
            file = facts.doc_file("adapter") or "adapter_config.json"
            yield str(adapter_doc.get("name") or "?"), kind, file, "config"
    block = (facts.doc("model") or {}).get("adapters")
    if not isinstance(block, Mapping) or not isinstance(block.get("adapters"), Mapping):
        return
    config_map = block.get("config_map") if isinstance(block.get("config_map"), Mapping) else {}
    for name, config_name in block["adapters"].items():
        in_map = isinstance(config_name, str) and config_name in config_map
        if kind := _inv_setting(config_map[config_name] if in_map else config_name):
            key = f"adapters.config_map.{config_name}" if in_map else f"adapters.adapters.{name}"
            yield str(name), kind, facts.doc_file("model") or "config.json", key


def _from_weights(facts: Facts) -> Iterator[tuple[str, str, str, str]]:
    for role in ("adapter", "model"):
        for tensor, info in sorted(facts.weights.get(role, {}).items()):
            if INVERTIBLE_WEIGHTS in tensor:
                name = tensor.split(INVERTIBLE_WEIGHTS, 1)[1].split(".", 1)[0]
                yield name, "invertible", info.file, tensor


def invertible_lm_head_findings(facts: Facts, head: Head) -> list[Finding]:
    """HC131 when a static LM head, which would become a flex LM head, sits on an invertible adapter."""
    if not (head.architecture and layouts.static_layout(head.architecture) and layouts.is_lm_head(head.type)):
        return []
    found = {}
    for name, kind, file, key in (*_from_configs(facts), *_from_weights(facts)):
        found.setdefault(name, (kind, file, key))  # a config says more than tensor names
    return [finding(
        "HC131",
        f"invertible adapter {name!r} ({kind}) under the static {head.architecture} head: the static model applies "
        f"it to the input embeddings only, while every adapters flex {head.type} head also applies its inverse "
        f"before the output layer; no flex head gives this model's logits (adapters' own conversion changes them "
        f"without a warning)",
        file=file, key=key,
        hint=f"keep the static class {head.architecture} with adapters.init (it gives these outputs), or train the "
             "adapter under a flex head",
    ) for name, (kind, file, key) in sorted(found.items())]
