"""Static counterparts of the export fixtures, made without headcheck: the harness's own control.

For each case of tests/fixtures/exports this loads the flex checkpoint with adapters (a full model with
from_pretrained, an adapter folder onto its base), merges its adapter with adapters' own `merge_adapter` (and, for
(IA)³'s "scale" composition, scales the bias too, which merge_adapter leaves out), writes the flex head's layers
under the static class's names (adapters' STATIC_TO_FLEX_HEAD_MAP read backwards; BERT's default two-layer
classification and multiple-choice heads with layer 1 as the pooler's dense layer, which the flex model never uses)
and saves the static model with the running transformers' `save_pretrained`. tests/test_export_versions.py loads
these with tests/export_loader.py under transformers 4.57 and 5.24: the venv, the loader and the comparison are
proven before `migrate --to transformers` exists, and whatever that command writes is held to the same figures.

Main test environment only (adapters 1.3.0 on transformers 4.57).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import transformers

import adapters
from adapters.head_utils import STATIC_TO_FLEX_HEAD_MAP

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "exports"
ADAPTERS_CONFIG_KEYS = ("adapters", "prediction_heads", "custom_heads")
POOLER_HEADS = {"BertForSequenceClassification", "BertForMultipleChoice"}


def t5_tied_scale(config) -> float:
    """T5AdapterModel multiplies the decoder output by d_model**-0.5 before every head when the embeddings are tied
    (adapters/models/t5/adapter_model.py); T5ForQuestionAnswering does not, so its head weight carries the factor."""
    return config.d_model ** -0.5 if config.tie_word_embeddings else 1.0


def cases() -> list[str]:
    return sorted(p.name.removesuffix(".export.json") for p in FIXTURES.glob("*.export.json"))


def export_spec(case: str) -> dict:
    return json.loads((FIXTURES / f"{case}.export.json").read_text())


def load_flex(case: str):
    """The case as its users load it with adapters, adapter active, head chosen."""
    spec = export_spec(case)
    if spec["base"]:
        model = adapters.AutoAdapterModel.from_pretrained(FIXTURES / spec["base"])
        model.load_adapter(str(FIXTURES / spec["source"]), set_active=True, use_safetensors=True)
    else:
        model = adapters.AutoAdapterModel.from_pretrained(FIXTURES / spec["source"])
        if spec["adapter"]:
            model.set_active_adapters(spec["adapter"])
    model.active_head = spec["head"]
    return model.eval()


def _merge(model, adapter: str, scale_bias: bool) -> None:
    model.merge_adapter(adapter)
    for module in model.modules():
        loras = getattr(module, "loras", None)
        if loras is None or getattr(module, "merged", None) != adapter:
            continue
        lora = loras[adapter]
        if scale_bias and lora.composition_mode == "scale" and getattr(module, "bias", None) is not None:
            vector = lora.lora_B.view(1, -1)
            if hasattr(module, "pad"):  # a fused q/k/v layer (LoRAMergedLinear): 1 on the blocks the adapter lacks
                vector = module.pad(vector, lora)
            with torch.no_grad():  # the output (weight and bias) is scaled; merge_adapter scaled the weight only
                module.bias.mul_(vector.view(-1) * lora.scaling)


def head_renames(architecture: str, head: str, head_config: dict, base_prefix: str) -> dict[str, str]:
    """flex head module prefix -> static module prefix."""
    entry = STATIC_TO_FLEX_HEAD_MAP[architecture]
    # one layer: no activation between layers, whatever the config names (fresh tagging and QA heads say tanh)
    ignored = {"activation_function"} if head_config.get("layers") == entry["config"].get("layers") == 1 else set()
    if all(head_config.get(key) == value for key, value in entry["config"].items() if key not in ignored):
        return {f"heads.{head}.{i}": name for i, name in enumerate(entry["layers"]) if name is not None}
    if (architecture in POOLER_HEADS and head_config["layers"] == 2 and head_config["activation_function"] == "tanh"
            and not head_config.get("use_pooler")):
        return {f"heads.{head}.1": f"{base_prefix}.pooler.dense", f"heads.{head}.4": "classifier"}
    raise ValueError(f"no static layout for {architecture} with head config {head_config}")


def build_counterpart(case: str, out: Path, *, alter: str | None = None, scale_bias: bool = True) -> Path:
    """Write the static counterpart of `case` to `out`. The controls that must fail the comparison: `alter`, the
    name of one static tensor to add 0.01 to; `scale_bias=False`, (IA)³ merged as adapters' merge_adapter does."""
    spec = export_spec(case)
    model = load_flex(case)
    if spec["adapter"]:
        _merge(model, spec["adapter"], scale_bias)
    architecture = spec["architecture"]
    cls = getattr(transformers, architecture)
    config_dict = {k: v for k, v in model.config.to_dict().items() if k not in ADAPTERS_CONFIG_KEYS}
    config_dict.update(spec["config"], architectures=[architecture])
    if "id2label" in spec["config"]:
        config_dict["label2id"] = {label: int(i) for i, label in spec["config"]["id2label"].items()}
    config = type(model.config).from_dict(config_dict)
    static = cls(config).eval()
    base_prefix = static.base_model_prefix
    renames = head_renames(architecture, spec["head"], model.heads[spec["head"]].config, base_prefix)
    static_keys = set(static.state_dict())
    flex_state = model.state_dict()
    state = {}
    for key, value in flex_state.items():
        if ".loras." in key or ".shared_parameters." in key:  # merged (VeRA's shared A and B with the rest)
            continue
        if ".prompt_tuning.base_model_embeddings." in key:  # adapters' alias of the input (word or patch) embeddings
            assert any(torch.equal(value, v) for k, v in flex_state.items()
                       if k.startswith(f"{base_prefix}.embeddings.") and v.shape == value.shape), key
            continue
        if key.startswith(f"{base_prefix}.pooler.") and key not in static_keys:
            continue  # a pooler the flex head never used, in a class that has none
        if key.endswith(".attention.self.in_proj.bias") and key not in static_keys:
            assert not value.any(), key  # adapters gives DeBERTa's bias-free in_proj a bias; zero adds nothing
            continue
        if key.startswith("heads."):
            prefix = next((p for p in renames if key.startswith(p + ".")), None)
            if prefix is None:  # activations and dropouts have no weights: a weight left over has no place
                raise ValueError(f"{case}: {key} has no place in {architecture}")
            key = renames[prefix] + key[len(prefix):]
            if key.startswith("qa_outputs.weight") and architecture == "T5ForQuestionAnswering":
                value = value * t5_tied_scale(model.config)
        elif key not in static_keys and key.removeprefix(f"{base_prefix}.") in static_keys:
            key = key.removeprefix(f"{base_prefix}.")  # T5's static classes hold shared/encoder/decoder at the top
        state[key] = value
    result = static.load_state_dict(state, strict=False)
    assert not result.unexpected_keys, (case, result.unexpected_keys)
    # what was not loaded by name must be tied to what was (BertForMaskedLM's cls.predictions.bias is the decoder's)
    params = static.state_dict(keep_vars=True)
    loaded = {params[key].data_ptr() for key in state}
    # ... or be BART's final_logits_bias, which a flex seq2seq head without an output bias leaves at its zeros
    untied = [key for key in result.missing_keys if params[key].data_ptr() not in loaded]
    assert all(key == "final_logits_bias" and not params[key].any() for key in untied), (case, untied)
    if alter is not None:
        with torch.no_grad():
            static.state_dict(keep_vars=True)[alter].add_(0.01)
    static.save_pretrained(out)
    return out
