"""Settings newer transformers releases write that the transformers adapters runs on (4.57) does not read.

Each would load without a warning and compute something else, so each is a blocking finding (HC127).
"""

from __future__ import annotations

from typing import Any, Mapping

from ..model import Finding
from .judgement import finding

# what transformers 4.57 assumes when config.json has no rope_theta (LlamaConfig and most RoPE families)
DEFAULT_ROPE_THETA = 10000.0
T5_FAMILY = {"t5", "mt5", "umt5", "longt5"}


def unread_settings(config: Mapping[str, Any], config_file: str) -> list[Finding]:
    return [*_rope(config, config_file), *_t5_output_scaling(config, config_file)]


def _rope(config: Mapping[str, Any], config_file: str) -> list[Finding]:
    params = config.get("rope_parameters")
    if not isinstance(params, Mapping) or config.get("rope_scaling") is not None:
        return []
    rope_type = params.get("rope_type") or params.get("type") or "default"
    theta = params.get("rope_theta", DEFAULT_ROPE_THETA)
    read_theta = config.get("rope_theta", DEFAULT_ROPE_THETA)
    problems = []
    if rope_type != "default":
        problems.append(f"RoPE type {rope_type!r}")
    if isinstance(theta, (int, float)) and theta != read_theta:
        problems.append(f"rope_theta {theta:g} (4.57 uses {read_theta:g})")
    if not problems:
        return []
    return [finding(
        "HC127", f"rope_parameters sets {' and '.join(problems)}; transformers 4.57 reads only rope_theta and "
                 "rope_scaling, so adapters would rotate positions differently",
        file=config_file, key="rope_parameters",
        hint="also write rope_scaling (and rope_theta) as transformers 4.57 expects them",
    )]


def _t5_output_scaling(config: Mapping[str, Any], config_file: str) -> list[Finding]:
    if config.get("model_type") not in T5_FAMILY or config.get("scale_decoder_outputs") is not False:
        return []
    if config.get("tie_word_embeddings", True) is False:
        return []
    return [finding(
        "HC127", "scale_decoder_outputs: false with tie_word_embeddings: true (written by transformers 5); "
                 "transformers 4.57 does not read scale_decoder_outputs: it ties lm_head to the embeddings and "
                 "scales decoder outputs by d_model**-0.5",
        file=config_file, key="scale_decoder_outputs",
        hint="set tie_word_embeddings: false and store lm_head.weight, as transformers 4.57 reads T5 v1.1",
    )]
