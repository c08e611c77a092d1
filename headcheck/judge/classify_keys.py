"""Classify a head from tensor names and shapes when the config names no known class."""

from __future__ import annotations

import re
from typing import Any, Mapping

from . import ruledata
from ..read.tensor_info import TensorInfo


def candidate_head_types(tensors: Mapping[str, TensorInfo], config: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """Head types the keys fit (first matching pattern wins), and the evidence for them."""
    names = list(tensors)
    for pattern in ruledata.families()["key_patterns"]:
        all_of = pattern.get("all", [])
        any_of = pattern.get("any", [])
        matched_all = [next((n for n in names if re.search(p, n)), None) for p in all_of]
        matched_any = [n for p in any_of for n in names if re.search(p, n)]
        if any(m is None for m in matched_all) or (any_of and not matched_any):
            continue
        head_type = pattern["head_type"]
        if config.get("is_encoder_decoder") and "encoder_decoder_head_type" in pattern:
            head_type = pattern["encoder_decoder_head_type"]
        elif config.get("is_decoder") and "decoder_head_type" in pattern:
            head_type = pattern["decoder_head_type"]
        keys = [m for m in matched_all if m] + matched_any[:1]
        return head_type.split("|"), [f"head keys {', '.join(keys)} fit {head_type.replace('|', ' or ')}"]
    return [], []
