"""The file names a checkpoint folder is read by: the standard names of transformers, adapters and PEFT."""

from __future__ import annotations

import re

# Weight files by standard name -> weight role. safetensors first: transformers prefers it when both exist.
WEIGHT_FILES = {
    "model.safetensors": "model",
    "pytorch_model.bin": "model",
    "adapter.safetensors": "adapter",
    "pytorch_adapter.bin": "adapter",
    "model_head.safetensors": "head",
    "pytorch_model_head.bin": "head",
    "adapter_model.safetensors": "peft",
    "adapter_model.bin": "peft",
}
SHARD_INDEXES = {"model.safetensors.index.json": "model", "pytorch_model.bin.index.json": "model"}
SHARD = re.compile(r"(?P<stem>model|pytorch_model)-\d{5}-of-\d{5}\.(safetensors|bin)")
CONFIG_FILES = ("config.json", "adapter_config.json", "head_config.json", "adapter_fusion_config.json")
CARD_FILE = "README.md"
# Configs of the tokenizer and processors: read only for the code they may load (auto_map), never judged
SIDE_CONFIGS = ("tokenizer_config.json", "processor_config.json", "preprocessor_config.json",
                "video_preprocessor_config.json")


def read_by_name(name: str) -> bool:
    """Whether a loader reads a file of this name from a checkpoint folder (the card is context only)."""
    return name in WEIGHT_FILES or name in SHARD_INDEXES or name in CONFIG_FILES or SHARD.fullmatch(name) is not None
