"""Which adapter of a full model an export merges into the base weights, and which adapters refuse an export.

headcheck merges what is exactly a change of the base weights: LoRA (`composition_mode: add`: W + alpha/r * B @ A),
VeRA (W + alpha/r * b @ B @ d @ A: the frozen random A and B are saved once per model under shared_parameters, so
nothing is drawn again) and (IA)^3 (`composition_mode: scale`: the layer's output, bias included, times alpha * l),
on plain linear layers of the families a test proves (rules/exports.json lora_families). Everything else changes
the computation in a way no transformers class repeats (HC145).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from . import ruledata
from .judgement import finding
from ..model import Finding
from ..read.json_text import is_number


@dataclass(frozen=True)
class Merge:
    """One adapter merged into the base weights."""

    adapter: str
    kind: str  # "lora" (W + scaling * B @ A), "ia3" (W and bias times scaling * l, row by row) or "vera"
    # (W + scaling * b @ B @ d @ A: B and A the model's shared frozen matrices, saved with it; b and d trained)
    scaling: float
    attn_matrices: tuple[str, ...] = ("q", "v")  # which blocks of a fused q/k/v layer the adapter holds


@dataclass(frozen=True)
class MergeJudgement:
    findings: tuple[Finding, ...] = ()
    merge: Merge | None = None
    notes: tuple[str, ...] = ()
    choices: tuple[str, ...] = ()  # several adapters: the names migrate needs one of (--adapter)


def _settings(block: Mapping[str, Any], value: Any) -> Any:
    """An adapter's settings: inline, or by its key in config_map."""
    config_map = block.get("config_map") if isinstance(block.get("config_map"), dict) else {}
    return value if isinstance(value, dict) else config_map.get(value, value) if isinstance(value, str) else value


def positive_number(value: Any) -> bool:
    return is_number(value) and value > 0


def why_not_merged(settings: Any, model_type: str | None) -> str | None:
    """Why headcheck does not merge this adapter, or None when it does."""
    if not isinstance(settings, dict):
        return f"{settings} (a named adapter config without its settings)"
    architecture = settings.get("architecture")
    if architecture != "lora":
        return described_architecture(architecture)
    if settings.get("use_gating"):
        return "gated LoRA: a learned gate scales the update per input"
    if settings.get("use_dora"):
        return "DoRA: its magnitude vector renormalises the merged weight"
    if is_vera(settings) and model_type in ruledata.exports()["lora_layouts"]:
        # adapters' fused q/k/v layer (LoRAMergedLinear) reads lora_A, which its Vera module lacks: such a model
        # fails in adapters itself, so there are no outputs an export could reproduce
        return (f"VeRA in model_type {model_type!r}: adapters' fused q/k/v layer cannot run it ('Vera' object has "
                "no attribute 'lora_A')")
    if why := unexportable_lora(settings):
        return why
    if model_type not in ruledata.exports()["lora_families"]:
        return f"LoRA in model_type {model_type!r}, whose fused or transposed projections headcheck does not merge"
    return None


def judge_merge(config: Mapping[str, Any], config_file: str, adapter: str | None,
                model_type: str | None) -> MergeJudgement:
    """The adapters block of config.json: the adapter to merge (the only one, or `adapter`), or why not."""
    block = config.get("adapters") if isinstance(config.get("adapters"), dict) else {}
    if not isinstance(block.get("adapters") or {}, dict):  # adapters itself cannot load such a block
        return MergeJudgement((finding("HC146", "the adapters block of config.json names its adapters in a "
                                                f"{type(block['adapters']).__name__}, not an object",
                                       file=config_file, key="adapters.adapters"),))
    names = dict(block.get("adapters") or {})
    if block.get("fusions") or block.get("fusion_config_map"):
        return MergeJudgement((finding("HC145", "AdapterFusion layers combine adapters per input; not merged",
                                       file=config_file, key="adapters.fusions"),))
    if adapter is not None and adapter not in names:
        from .export import ExportChoiceError  # one error type for every choice the user makes

        raise ExportChoiceError(f"--adapter {adapter}: the checkpoint's adapters are {', '.join(names) or 'none'}")
    if not names:
        return MergeJudgement()
    chosen = [adapter] if adapter is not None else list(names)
    found = []
    for name in chosen:
        settings = _settings(block, names[name])
        if why := why_not_merged(settings, model_type):
            found.append(finding("HC145", f"adapter {name!r} is {why}; headcheck does not merge it",
                                 file=config_file, key=f"adapters.adapters.{name}",
                                 hint="keep serving it with adapters, or retrain with LoRA or (IA)^3"))
    if found:
        return MergeJudgement(tuple(found))
    if len(chosen) > 1:
        return MergeJudgement(notes=(f"{len(chosen)} adapters ({', '.join(chosen)}); a saved model does not record "
                                     "which one was active: migrate needs --adapter NAME",), choices=tuple(chosen))
    name = chosen[0]
    notes = () if adapter is not None else (
        f"the only adapter, {name!r}, is taken as the trained one (a saved model does not record which was active)",)
    return MergeJudgement(merge=merge_of(name, _settings(block, names[name])), notes=notes)


def merge_of(name: str, settings: Mapping[str, Any]) -> Merge:
    """The merge of a LoRA, VeRA or (IA)^3 adapter's settings (why_not_merged said it merges)."""
    scale = settings.get("composition_mode") == "scale"
    # adapters multiplies a LoRA's (and VeRA's) update by alpha / r, an (IA)^3 vector by alpha (methods/lora.py)
    scaling = float(settings.get("alpha", 1)) if scale else float(settings.get("alpha", 8)) / float(settings.get("r", 8))
    return Merge(name, "ia3" if scale else "vera" if is_vera(settings) else "lora", scaling, attn_matrices(settings))


def is_vera(settings: Mapping[str, Any]) -> bool:
    """A LoRA config of adapters' VeRA (its trained vectors b and d beside frozen shared matrices)."""
    return settings.get("vera_d") is not None or settings.get("vera_b") is not None


def unexportable_lora(settings: Mapping[str, Any]) -> str | None:
    """Why a LoRA config computes what no export target repeats (whatever the target), or None: MTL-LoRA, r or alpha
    not positive numbers, a composition_mode other than add and scale."""
    if "n_up_projection" in settings or "task_names" in settings:
        return "MTL-LoRA: its update depends on the task id"
    if not all(positive_number(settings.get(key, 1)) for key in ("r", "alpha")):
        return f"LoRA with r {settings.get('r')!r} and alpha {settings.get('alpha')!r}, not positive numbers"
    if settings.get("composition_mode") not in ("add", "scale"):
        return f"LoRA with composition_mode {settings.get('composition_mode')!r}"
    return None


def described_architecture(architecture: Any) -> str:
    """What an adapter config's `architecture` other than lora names, for a refusal (any JSON value)."""
    if architecture is None:
        return "a bottleneck adapter"
    # never empty: the caller's refusal is this text (an empty name would read as no refusal)
    return "a config union" if architecture == "union" else str(architecture) or repr(architecture)


def attn_matrices(settings: Mapping[str, Any]) -> tuple[str, ...]:
    """Which of a fused q/k/v layer's matrices a LoRA adapts (adapters' default: q and v)."""
    matrices = settings.get("attn_matrices", ["q", "v"])
    return tuple(map(str, matrices)) if isinstance(matrices, list) else ("q", "v")
