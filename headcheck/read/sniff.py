"""Tell file roles apart by content: adapter_config.json alone may be adapters, PEFT, MLX-LM or something else."""

from __future__ import annotations

from typing import Any

from .tensor_info import TensorInfo

ROLES = ("model", "adapter", "head", "fusion", "peft", "mlx", "foreign")
# Keys every transformers config of the last years carries at least one of; FARM or llama2.c configs carry none.
TRANSFORMERS_CONFIG_KEYS = {
    "architectures", "transformers_version", "vocab_size", "hidden_size", "d_model", "n_embd", "_name_or_path",
    "id2label", "num_hidden_layers", "torchscript",
}
# transformers 2.x wrote configs without model_type; these keys single out the families seen in the wild.
LEGACY_FAMILY_KEYS = {
    "distilbert": {"seq_classif_dropout", "qa_dropout", "sinusoidal_pos_embds"},
    "gpt2": {"n_embd", "n_layer", "summary_type"},
}
# llama2.c parameter files share `dim`/`n_layers`/`vocab_size` with old DistilBERT configs.
LLAMA2C_KEYS = {"multiple_of", "norm_eps"}
FUSION_KEYS = {"key", "query", "value", "temperature"}


def _is_adapters_artefact(data: dict[str, Any]) -> bool:
    return "model_class" in data or ("config" in data and "model_type" in data and "hidden_size" in data)


def json_role(data: Any, expected_name: str | None) -> str:
    """The role of a parsed JSON file; `expected_name` is its standard file name when it has one."""
    if not isinstance(data, dict):
        return "foreign"
    if "peft_type" in data:
        return "peft"
    if "fine_tune_type" in data or "lora_parameters" in data:
        return "mlx"
    if _is_adapters_artefact(data):
        inner = data.get("config")
        if expected_name == "adapter_fusion_config.json" or (isinstance(inner, dict) and FUSION_KEYS <= inner.keys()):
            return "fusion"
        if isinstance(inner, dict) and "head_type" in inner:
            return "head"
        if expected_name == "head_config.json" or inner is None:
            return "head"
        # under its own name a config that is no object is the adapter's error (config_fields names it)
        return "adapter" if isinstance(inner, dict) or expected_name == "adapter_config.json" else "foreign"
    if expected_name in (None, "config.json") and looks_like_model_config(data):
        return "model"
    return "foreign"


def looks_like_model_config(data: dict[str, Any]) -> bool:
    if ("model_type" in data or "architectures" in data) and TRANSFORMERS_CONFIG_KEYS & data.keys():
        return True
    return legacy_model_type(data) is not None


def legacy_model_type(data: dict[str, Any]) -> str | None:
    if "model_type" in data or LLAMA2C_KEYS & data.keys():
        return None
    return next((family for family, keys in LEGACY_FAMILY_KEYS.items() if len(keys & data.keys()) >= 2), None)


def weight_role(file_name: str) -> str:
    if "adapter_model" in file_name:
        return "peft"
    if "head" in file_name:
        return "head"
    if "adapter" in file_name:
        return "adapter"
    return "model"


def is_shard_index(data: Any) -> bool:
    return isinstance(data, dict) and isinstance(data.get("weight_map"), dict)


def names_only_index(data: dict[str, Any], rel_name: str) -> dict[str, TensorInfo]:
    """Tensor names from a shard index scanned on its own: no dtypes or shapes are known."""
    return {name: TensorInfo(name, "", None, shard) for name, shard in data["weight_map"].items()}
