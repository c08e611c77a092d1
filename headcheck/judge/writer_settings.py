"""Settings newer transformers releases write that the transformers adapters runs on (4.57) reads differently.

Loaded as they are, each would compute something else without a warning. Where transformers 4.57 has its own
way to say the same thing, migrate writes that (HC133: config keys, and an output layer stored as a copy of the
embeddings); where it has none, or the checkpoint is not being rewritten, the setting blocks (HC127).

What each RoPE type computes, in transformers 4.57 (`rope_theta` + `rope_scaling`) and 5.24 (`rope_parameters`),
is read from both releases' `modeling_rope_utils.py`: `linear`, `dynamic`, `yarn` and `llama3` read the same
parameters with the same meaning, the 4.57 ones from `rope_scaling`; `longrope` (4.57 takes the factor from a
top-level `original_max_position_embeddings`), `proportional` (5.x only) and anything else are not carried.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

from . import layouts
from ..model import ConfigChange, Finding, Plan, Rename
from ..read.json_text import is_number
from ..read.tensor_info import TensorInfo
from .judgement import finding

# what transformers 4.57 assumes when config.json has no rope_theta (LlamaConfig and most RoPE families)
DEFAULT_ROPE_THETA = 10000.0
T5_FAMILY = {"t5", "mt5", "umt5", "longt5"}
# families whose 4.57 config reads rope_theta / rope_scaling as LlamaConfig does (checked for llama: LlamaConfig
# takes both and LlamaRotaryEmbedding picks ROPE_INIT_FUNCTIONS[rope_scaling.rope_type]); mistral: rope_theta only
ROPE_THETA_FAMILIES = {"llama", "mistral"}
ROPE_SCALING_FAMILIES = {"llama"}
# rope type -> (required, optional) keys of its 4.57 rope_scaling, each meaning what the same key of 5.x's
# rope_parameters means (original_max_position_embeddings is resolved as 5.x resolves it, see _original_max)
ROPE_SCALING_KEYS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "linear": (("factor",), ()),
    "dynamic": (("factor",), ()),
    "yarn": (("factor",), ("attention_factor", "beta_fast", "beta_slow", "mscale", "mscale_all_dim", "truncate")),
    "llama3": (("factor", "low_freq_factor", "high_freq_factor"), ()),
}
ORIGINAL_MAX = "original_max_position_embeddings"
NEEDS_ORIGINAL_MAX = {"yarn", "llama3"}
# T5 classes whose only output layer is lm_head (what v5's scale_decoder_outputs is about)
T5_LM_CLASSES = {"T5ForConditionalGeneration"}


@dataclass(frozen=True)
class SettingsRewrite:
    findings: tuple[Finding, ...]
    plan: Plan | None  # the plan with the rewrite added (the input plan when there is nothing to rewrite)


@dataclass(frozen=True)
class _Carried:
    """One setting as transformers 4.57 reads it: config keys to write and tensors to copy (static names)."""

    what: str
    changes: dict[str, Any]
    copies: tuple[tuple[str, str], ...] = ()  # (source tensor, target tensor in the static class's naming)
    key: str | None = None
    needed: bool = True  # False: 4.57 computes the same without it (its default), migrate writes it all the same


def settings_rewrite(config: Mapping[str, Any], config_file: str, tensors: Mapping[str, TensorInfo],
                     plan: Plan | None) -> SettingsRewrite:
    """Findings for the settings of CONFIG that 4.57 reads differently, and PLAN (the conversion of a full model,
    or None) with the rewrite that carries them added; where nothing is rewritten, each needed one is HC127."""
    findings: list[Finding] = []
    carried: list[_Carried] = []
    for outcome in (_rope(config, config_file), _t5_output_scaling(config, config_file, tensors)):
        if isinstance(outcome, Finding):
            findings.append(outcome)
        elif outcome is not None:
            carried.append(outcome)
    architecture = (config.get("architectures") or [None])[0]
    layout = layouts.static_layout(architecture) if isinstance(architecture, str) else None
    changes, copies = list(plan.config_changes if plan else ()), list(plan.copies if plan else ())
    for c in carried:
        targets = [_flex_name(layout, plan.head_name, target) if plan and layout else None for _, target in c.copies]
        if plan is None or None in targets:
            findings.extend([_unread(c, config_file)] if c.needed else [])
            continue
        changes += [ConfigChange(key, config.get(key), value) for key, value in c.changes.items()]
        copies += [Rename(source, target, tensors[source].file) for (source, _), target in zip(c.copies, targets)]
        findings.append(finding(
            "HC133", f"{c.what}; migrate writes it as transformers 4.57 reads it: "
                     + ", ".join([*(f"{k}: {_show(v)}" for k, v in c.changes.items()),
                                  *(f"{t} = a copy of {s}" for (s, _), t in zip(c.copies, targets))]),
            file=config_file, key=c.key,
            hint="use headcheck migrate; with the files as they are, adapters computes something else"
            if c.needed else "nothing to do: transformers 4.57's default is the same (migrate writes it all the same)"))
    if plan is None or any(f.rule == "HC127" for f in findings):
        return SettingsRewrite(tuple(findings), None)
    if not changes and not copies:
        return SettingsRewrite(tuple(findings), plan)
    return SettingsRewrite(tuple(findings), dataclasses.replace(plan, config_changes=tuple(changes),
                                                                copies=tuple(copies)))


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_show(v)}" for k, v in value.items()) + "}"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _flex_name(layout: Mapping[str, Any], head_name: str, static_name: str) -> str | None:
    module, _, param = static_name.rpartition(".")
    index = {layer.module: layer.index for layer in layouts.static_layers(layout)}.get(module)
    return None if index is None else f"heads.{head_name}.{index}.{param}"


def _unread(c: _Carried, config_file: str) -> Finding:
    return finding("HC127", f"{c.what}; loaded as it is, adapters computes something else, and only the conversion "
                            "of a transformers class rewrites it", file=config_file, key=c.key,
                   hint="convert the checkpoint saved with its transformers class (headcheck migrate), or keep it on "
                        "transformers 5 without adapters")


def _rope(config: Mapping[str, Any], config_file: str) -> Finding | _Carried | None:
    params = config.get("rope_parameters")
    if not isinstance(params, Mapping) or config.get("rope_scaling") is not None:
        return None
    rope_type = params.get("rope_type") or params.get("type") or "default"
    theta = params.get("rope_theta", config.get("rope_theta", DEFAULT_ROPE_THETA))
    read_theta = config.get("rope_theta", DEFAULT_ROPE_THETA)
    shown = "{" + ", ".join(f"{k}: {_show(v)}" for k, v in params.items()) + "}"
    what = f"rope_parameters {shown} (written by transformers 5), where transformers 4.57 reads rope_theta and " \
           "rope_scaling"
    # 4.57's default base: it computes the same (RoPE per layer type in a Llama/Mistral config: unknown, refused)
    nested = any(isinstance(v, Mapping) for v in params.values())
    same = rope_type == "default" and theta == read_theta and not (nested and config.get("model_type") in
                                                                   ROPE_THETA_FAMILIES)
    if same and "rope_theta" in config:  # already written the way 4.57 reads it
        return None
    blocked = _rope_blocked(config, params, rope_type, theta)
    if blocked:
        if same:
            return None
        return finding(
            "HC127", f"rope_parameters sets {blocked}; transformers 4.57 reads only rope_theta and rope_scaling, and "
                     "no rope_scaling it reads computes the same, so adapters would rotate positions differently",
            file=config_file, key="rope_parameters",
            hint="keep the checkpoint on transformers 5 (without adapters)",
        )
    changes: dict[str, Any] = {"rope_theta": theta}
    if rope_type != "default":
        required, optional = ROPE_SCALING_KEYS[rope_type]
        scaling = {"rope_type": rope_type, **{k: params[k] for k in (*required, *optional) if k in params}}
        if rope_type in NEEDS_ORIGINAL_MAX:
            scaling[ORIGINAL_MAX] = _original_max(config, params)
        changes["rope_scaling"] = scaling
    return _Carried(what, changes, key="rope_parameters", needed=not same)


def _rope_blocked(config: Mapping[str, Any], params: Mapping[str, Any], rope_type: str, theta: Any) -> str | None:
    """Why this rope_parameters has no 4.57 equivalent (None when it has one)."""
    model_type = config.get("model_type")
    if not is_number(theta):
        return f"rope_theta {theta!r}"
    if any(isinstance(v, Mapping) for v in params.values()):
        return "RoPE parameters per layer type"
    if model_type not in ROPE_THETA_FAMILIES:
        return f"rope_theta {theta:g} for model_type {model_type!r}" if rope_type == "default" else \
            f"RoPE type {rope_type!r} for model_type {model_type!r}"
    if rope_type != "default" and rope_type not in ROPE_SCALING_KEYS:
        return f"RoPE type {rope_type!r}"
    if rope_type != "default" and model_type not in ROPE_SCALING_FAMILIES:
        return f"RoPE type {rope_type!r} for model_type {model_type!r}"
    if params.get("partial_rotary_factor", 1.0) != 1.0:
        return f"partial_rotary_factor {params['partial_rotary_factor']!r}"
    if rope_type == "default":
        return None
    required, _ = ROPE_SCALING_KEYS[rope_type]
    missing = [k for k in required if not is_number(params.get(k))]
    if missing:
        return f"RoPE type {rope_type!r} without a number for {', '.join(missing)}"
    if rope_type in NEEDS_ORIGINAL_MAX and not is_number(_original_max(config, params)):
        return f"RoPE type {rope_type!r} without {ORIGINAL_MAX}"
    return None


def _original_max(config: Mapping[str, Any], params: Mapping[str, Any]) -> Any:
    """The pre-training length 5.x uses (standardize_rope_params): a top-level original_max_position_embeddings
    first, then rope_parameters', then max_position_embeddings."""
    return config.get(ORIGINAL_MAX, params.get(ORIGINAL_MAX, config.get("max_position_embeddings")))


def _t5_output_scaling(config: Mapping[str, Any], config_file: str,
                       tensors: Mapping[str, TensorInfo]) -> Finding | _Carried | None:
    if config.get("model_type") not in T5_FAMILY or config.get("scale_decoder_outputs") is not False:
        return None
    if config.get("tie_word_embeddings", True) is False:
        return None
    what = ("scale_decoder_outputs: false with tie_word_embeddings: true (written by transformers 5: lm_head "
            "unscaled, and shared with the embeddings unless lm_head.weight is stored); transformers 4.57 does not "
            "read scale_decoder_outputs: with tied embeddings it ties lm_head to them and scales decoder outputs by "
            "d_model**-0.5")
    architecture = (config.get("architectures") or [None])[0]
    if config.get("model_type") == "t5" and architecture in T5_LM_CLASSES and (
            "lm_head.weight" in tensors or "shared.weight" in tensors):
        # untied, 4.57 neither ties nor scales: lm_head is the stored one, or (tied in 5.x) a copy of the embeddings
        copies = () if "lm_head.weight" in tensors else (("shared.weight", "lm_head.weight"),)
        return _Carried(what, {"tie_word_embeddings": False}, copies, key="scale_decoder_outputs")
    return finding(
        "HC127", what, file=config_file, key="scale_decoder_outputs",
        hint="set tie_word_embeddings: false and store lm_head.weight, as transformers 4.57 reads T5 v1.1",
    )
