"""Builders of the export fixtures (tests/fixtures/exports/make_exports.py): tiny adapters models, seeded and
perturbed so that a dropped or misplaced tensor changes the outputs, and the compact JSON their expected outputs are
written in. Main test environment only (adapters 1.3.0 on transformers 4.57)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Callable

import torch

import adapters
import transformers

sys.path.insert(0, str(Path(__file__).resolve().parent / "fixtures" / "writers"))
from common import perturb  # noqa: E402  (tests/fixtures/writers/common.py)
from zoo import tiny_config  # noqa: E402  (tests/zoo.py: hidden 32, 2 layers, vocab 99)

SEED = 0
# DeBERTa's in_proj.bias, which adapters adds to the bias-free fused projection (rules/exports.json zero_only)
ZERO_ONLY = ".attention.self.in_proj.bias"


def _nonzero_biases(model: torch.nn.Module) -> None:
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("bias"):
                param.normal_(0.0, 0.1)


def _seeded(model: torch.nn.Module, seed: int = SEED) -> torch.nn.Module:
    """Biases drawn (initialisation zeroes them), then every parameter perturbed; adapter weights (LoRA's B starts at
    zero, (IA)³'s vectors at one) get more, so that a merge left out shows far above the tolerance."""
    torch.manual_seed(seed)
    _nonzero_biases(model)
    perturb(model, seed=seed)
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if ".loras." in name:
                param.add_(torch.randn(param.shape, generator=gen) * 0.2)
            elif name.endswith(ZERO_ONLY):  # never trained with the base frozen: zero, as adapters adds it
                param.zero_()
    return model.eval()


def _static(class_name: str, **config) -> torch.nn.Module:
    torch.manual_seed(SEED)
    return getattr(transformers, class_name)(tiny_config(class_name, **config))


def _converted(class_name: str, adapter_class: str, work: Path, **config) -> torch.nn.Module:
    """A static transformers checkpoint loaded into its AdapterModel: adapters converts the head itself (to its
    STATIC_TO_FLEX_HEAD_MAP entry, head name "default")."""
    static = _static(class_name, **config)  # seeded (with the adapters added) by write_case
    static.save_pretrained(work / class_name)
    model = getattr(adapters, adapter_class).from_pretrained(work / class_name)
    model.config.name_or_path = ""  # no temporary path in what is saved
    return model.eval()


def _fresh(adapter_class: str, model_type: str, add_head: Callable[[Any], None], **config) -> torch.nn.Module:
    torch.manual_seed(SEED)
    model = getattr(adapters, adapter_class)(tiny_config(model_type, **config))
    add_head(model)
    return model


def _dumps(record: dict[str, Any]) -> str:
    """Indented JSON with each tensor's data on one line (small files, readable diffs)."""
    rows: list[str] = []

    def compact(value):
        if not isinstance(value, dict):
            return value
        out = {}
        for key, item in value.items():
            if key == "data":
                out[key] = f"@{len(rows)}"
                rows.append(json.dumps(item))
            else:
                out[key] = compact(item)
        return out

    text = json.dumps(compact(record), indent=1)
    for i, row in reversed(list(enumerate(rows))):
        text = text.replace(f'"@{i}"', row)
    return text + "\n"
