"""Turn a convertible report into a complete migration: every source tensor's fate, added tensors, new configs."""

from __future__ import annotations

import json
import re
import dataclasses
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, Mapping

from ..judge import layouts
from ..judge import lora_scaling
from ..judge.legacy_activations import migrated_copy
from ..read.facts import Facts, files_of_role
from ..model import Kind, Report
from ..read.tensor_info import TensorInfo

FLEX_ADAPTERS_BLOCK = {"adapters": {}, "config_map": {}, "fusion_config_map": {}, "fusion_name_map": {}, "fusions": {}}
SAFE_WEIGHTS = "model.safetensors"
SAFE_INDEX = "model.safetensors.index.json"


class MigrationError(Exception):
    """The plan cannot be executed faithfully; nothing is written."""


@dataclass(frozen=True)
class TensorMove:
    source: TensorInfo
    target: str
    shape: tuple[int, ...]  # may differ from the source only by dropped unit dimensions (final_logits_bias)
    copy: bool = False  # a second copy of a source tensor that is also written under its own (renamed) name


@dataclass(frozen=True)
class AddedTensor:
    target: str
    dtype: str
    shape: tuple[int, ...]
    reason: str


@dataclass(frozen=True)
class Duplicate:
    """A source tensor left out because a tensor placed in its stead must hold the same bytes (the static
    class ties them: one parameter saved under two names). migrate's byte check compares the two."""

    source: TensorInfo  # left out
    kept: TensorInfo  # placed, as `target`
    target: str


@dataclass(frozen=True)
class OutputFile:
    name: str
    moves: tuple[TensorMove, ...]
    added: tuple[AddedTensor, ...] = ()
    # bytes computed from source tensors (exports): each has target, dtype, shape and chunks(root) (merge.MergedTensor,
    # peft_tensors.BlockLoraB)
    computed: tuple[Any, ...] = ()

    @property
    def is_pickle(self) -> bool:
        # adapters' load_adapter reads pytorch_model_head.bin unless told use_safetensors=True: keep the format.
        return self.name.endswith(".bin")


@dataclass(frozen=True)
class Migration:
    """The files migrate writes: each output's tensors (moved, added or computed), the configs, and what is left
    out and why."""

    kind: Kind
    outputs: tuple[OutputFile, ...]
    dropped: tuple[tuple[str, str], ...]  # (source tensor, why it is not needed)
    replaced_files: tuple[str, ...]  # source files the outputs stand for (weights, index, configs)
    configs: Mapping[str, dict[str, Any]]  # file name -> new JSON content
    index_file: str | None  # regenerated shard index name, when sharded
    duplicates: tuple[Duplicate, ...] = ()  # dropped tensors that must equal a placed one
    export: str | None = None  # the transformers class an export out of adapters declares, or loads onto (peft)
    # the folder tensors' files are relative to and the other files are copied from, when not the source: an
    # adapter folder's export is its base model's folder (the adapter's own files named relative to it)
    root: Any = None
    base: Any = None  # read.base_model.BaseModel an adapter folder's export is built on (its name, Hub commit)
    removed_keys: tuple[str, ...] = ()  # config.json keys an export leaves out (those only adapters reads)
    target: str = "flex"  # what migrate writes: "flex" (into adapters), or an export target (EXPORT_TARGETS)


def _flex_head_config(report: Report) -> dict[str, Any]:
    config = dict(report.plan.head_config)
    if config.get("label2id") is not None:  # LM heads carry a null label map
        config["label2id"] = dict(config["label2id"])
    return config


def _shape_of(expr: list, config: Mapping[str, Any]) -> tuple[int, ...]:
    dims = []
    for item in expr:
        if isinstance(item, int):
            dims.append(item)
            continue
        factor, _, key = item.rpartition("*")
        dims.append(int(factor or 1) * int(config[key]))
    return tuple(dims)


def _expand(pattern: str, config: Mapping[str, Any]) -> list[str]:
    if "{layer}" not in pattern:
        return [pattern]
    return [pattern.format(layer=i) for i in range(int(config["num_hidden_layers"]))]


def _rename_base(name: str, renames: Mapping[str, str]) -> str:
    first, _, rest = name.partition(".")
    return f"{renames[first]}.{rest}" if first in renames and rest else name


def _output_name(source_file: str, sharded: bool) -> str:
    """pytorch_model.bin -> model.safetensors; pytorch_model-00001-of-00002.bin -> model-00001-of-00002.safetensors."""
    if not sharded:
        return SAFE_WEIGHTS
    stem = PurePosixPath(source_file).name
    stem = re.sub(r"^pytorch_model", "model", stem)
    return re.sub(r"\.(bin|safetensors)$", "", stem) + ".safetensors"


def _language_adapters_block(spec: Mapping[str, Any], config: Mapping[str, Any], languages: list[str]) -> dict:
    """X-MOD's built-in language adapters as adapters bottleneck adapters, one per language, same weights."""
    values = {
        "adapter_reduction_factor": config.get("adapter_reduction_factor", 2),
        "hidden_act": config.get("hidden_act", "gelu"),
        # X-MOD adds the adapter to the layer-normed states, or (ln_before_adapter false) to the pre-norm sum
        "residual_before_ln": False if config.get("ln_before_adapter", True) else "post_add",
    }
    adapter_config = {k: values[v[1:]] if isinstance(v, str) and v.startswith("$") else v
                      for k, v in spec["config"].items()}
    block = json.loads(json.dumps(FLEX_ADAPTERS_BLOCK))
    block["adapters"] = {language: spec["config_name"] for language in languages}
    block["config_map"] = {spec["config_name"]: adapter_config}
    return block


def _head_renames(report: Report, head_name: str) -> dict[str, str]:
    """The plan's tensor renames, with the head called `head_name` (the plan itself says 'default')."""
    prefix = f"heads.{report.plan.head_name}."
    return {r.source: r.target.replace(prefix, f"heads.{head_name}.", 1) for r in report.plan.renames}


@dataclass
class _Placement:
    """Where each source tensor of a full model goes (built by _place)."""

    moves_by_file: dict[str, list[TensorMove]]
    dropped: list[tuple[str, str]]
    languages: set[str]
    bias_from_buffer: bool
    duplicates: list[Duplicate] = dataclasses.field(default_factory=list)


TIED_BIAS_REASON = "duplicate of the decoder bias it is tied to, which is renamed; migrate checks their bytes are equal"


def _tied_duplicate(name: str, tensors: Mapping[str, TensorInfo], layout: Mapping[str, Any],
                    renames: Mapping[str, str]) -> Duplicate | None:
    """The static class's tied output bias (cls.predictions.bias) when its decoder bias is stored and renamed
    too: adapters' conversion renames the decoder bias (its layer's parameter) and ignores the tied name, and so
    does the plan; the two must hold the same bytes, which migrate checks."""
    if name != layout.get("tied_output_bias"):
        return None
    decoder_bias = f"{layouts.static_layers(layout)[-1].module}.bias"
    if decoder_bias not in tensors or decoder_bias not in renames:
        return None
    return Duplicate(tensors[name], tensors[decoder_bias], renames[decoder_bias])


def _place(report: Report, facts: Facts, fam: Mapping[str, Any], layout: Mapping[str, Any], head_name: str,
           sharded: bool) -> _Placement:
    head_moves = _head_renames(report, head_name)
    base_prefixes = set(fam.get("static_base_prefixes", ()))
    lang_spec = fam.get("language_adapters")
    language_pattern = re.compile(lang_spec["pattern"]) if lang_spec else None
    placed = _Placement({}, [], set(), False)
    for name, info in sorted(facts.weights["model"].items()):
        shape = info.shape
        if name in head_moves:
            target = head_moves[name]
        elif name.startswith("heads."):  # legacy flex checkpoints already use the flex names
            target = name
        elif name.split(".", 1)[0] in base_prefixes:
            target = _rename_base(name, fam.get("base_renames", {}))
            if language_pattern and (match := language_pattern.match(target)):
                module = lang_spec["modules"][match["module"]]
                target = lang_spec["target"].format(**{**match.groupdict(), "module": module})
                placed.languages.add(match["language"])
        elif name in fam.get("ignored_buffers", ()) and report.head.type == "seq2seq_lm":
            # BART-style final_logits_bias [1, vocab] is exactly the flex LM head's output bias [vocab].
            final_index = layouts.static_layers(layout)[-1].index
            target, shape = f"heads.{head_name}.{final_index}.bias", tuple(d for d in info.shape if d != 1)
            placed.bias_from_buffer = True
        elif duplicate := _tied_duplicate(name, facts.weights["model"], layout, head_moves):
            placed.dropped.append((name, TIED_BIAS_REASON))
            placed.duplicates.append(duplicate)
            continue
        else:  # scan refuses checkpoints with uncovered head weights; reaching this is a bug, never a silent drop
            raise MigrationError(f"{name}: no destination planned for this tensor")
        placed.moves_by_file.setdefault(_output_name(info.file, sharded), []).append(TensorMove(info, target, shape))
    return placed


def _copy_tensors(report: Report, facts: Facts, head_name: str, sharded: bool, placed: _Placement) -> None:
    """Tensors the plan stores twice (HC133: T5's lm_head as a copy of the shared embeddings), bytes unchanged."""
    prefix = f"heads.{report.plan.head_name}."
    for copy in report.plan.copies:
        info = facts.weights["model"][copy.source]
        target = copy.target.replace(prefix, f"heads.{head_name}.", 1)
        moves = placed.moves_by_file.setdefault(_output_name(info.file, sharded), [])
        moves.append(TensorMove(info, target, info.shape, copy=True))


def _untie_embeddings(layout: Mapping[str, Any], config: dict[str, Any], placed: _Placement) -> dict[str, Any]:
    """Where the AdapterModel treats tied embeddings differently (T5 QA): store the copies, untie in config."""
    untie = layout.get("when_embeddings_tied")
    if not untie or not config.get("tie_word_embeddings", True):
        return config
    by_target = {m.target: (file, m) for file, moves in placed.moves_by_file.items() for m in moves}
    for target, copied in untie["copy_tensors"].items():
        file, move = by_target[copied]
        placed.moves_by_file[file].append(TensorMove(move.source, target, move.shape, copy=True))
    return {**config, **untie["model_config"]}


def _added_tensors(fam: Mapping[str, Any], config: Mapping[str, Any], placed: _Placement, dtype: str):
    present = {m.target for moves in placed.moves_by_file.values() for m in moves}
    return tuple(
        AddedTensor(target, dtype, _shape_of(spec["shape"], config), spec["reason"])
        for spec in fam.get("added_params", ())
        for target in _expand(spec["name"], config)
        if target not in present
    )


def plan_full_model(report: Report, facts: Facts, head_name: str) -> Migration:
    config = lora_scaling.migrated_copy(migrated_copy(facts.doc("model") or {}, "model"))
    config.update({change.key: change.new for change in report.plan.config_changes})  # HC133: as 4.57 reads them
    fam = layouts.family(report.model_type) or {}
    layout = layouts.static_layout(report.head.architecture or "") or {}
    sharded = facts.weight_files["model"][0].endswith(".index.json")
    placed = _place(report, facts, fam, layout, head_name, sharded)
    _copy_tensors(report, facts, head_name, sharded, placed)
    config = _untie_embeddings(layout, config, placed)
    first_file = sorted(placed.moves_by_file)[0]
    added = _added_tensors(fam, config, placed, placed.moves_by_file[first_file][0].source.dtype)
    outputs = tuple(
        OutputFile(name, tuple(moves), added if name == first_file else ())
        for name, moves in sorted(placed.moves_by_file.items())
    )
    head_config = _flex_head_config(report)
    if placed.bias_from_buffer:
        head_config["bias"] = True
    new_config = {k: v for k, v in config.items() if k not in ("architectures", "prediction_heads")}
    new_config["architectures"] = [report.plan.adapter_model_class]
    if "num_labels" in head_config:
        new_config["id2label"] = {str(i): label for label, i in head_config["label2id"].items()}
        new_config["label2id"] = head_config["label2id"]
    new_config["adapters"] = config.get("adapters") or FLEX_ADAPTERS_BLOCK
    if placed.languages:
        new_config["adapters"] = _language_adapters_block(fam["language_adapters"], config, sorted(placed.languages))
    # legacy XModelWithHeads checkpoints keep all their heads; static ones get the planned head
    new_config["prediction_heads"] = config.get("prediction_heads") or {head_name: head_config}
    replaced = (*facts.weight_files["model"], *files_of_role(facts.files, "model"), facts.doc_file("model"))
    return Migration(Kind.FULL_MODEL, outputs, tuple(placed.dropped), tuple(dict.fromkeys(replaced)),
                     {"config.json": new_config}, SAFE_INDEX if sharded else None, tuple(placed.duplicates))


def plan_adapter_folder(report: Report, facts: Facts, head_name: str | None) -> Migration:
    head_doc = dict(facts.doc("head") or {})
    name = head_name or report.plan.head_name
    tensors = facts.weights["head"]
    renames = _head_renames(report, name)
    layout = layouts.static_layout(report.head.architecture or "") or {}
    moves, dropped, duplicates = [], [], []
    for tensor_name in sorted(tensors):
        info = tensors[tensor_name]
        if tensor_name in renames:
            target = renames[tensor_name]
        elif tensor_name.startswith("heads."):  # legacy flex head: already flex names
            target = tensor_name
        elif duplicate := _tied_duplicate(tensor_name, tensors, layout, renames):
            # a static head saved with torch.save keeps its tied output bias under both names
            dropped.append((tensor_name, TIED_BIAS_REASON))
            duplicates.append(duplicate)
            continue
        else:
            raise MigrationError(f"{tensor_name}: no destination planned for this tensor")
        moves.append(TensorMove(info, target, info.shape))
    head_config = _flex_head_config(report)
    new_doc = {k: v for k, v in head_doc.items() if k not in ("label2id", "num_labels")}
    new_doc.update(model_class=report.plan.adapter_model_class, config=head_config, name=name)
    weights_file = facts.weight_files["head"][0]
    replaced = tuple(dict.fromkeys((weights_file, *files_of_role(facts.files, "head"))))
    return Migration(Kind.ADAPTER, (OutputFile(weights_file, tuple(moves)),), tuple(dropped), replaced,
                     {facts.doc_file("head") or "head_config.json": new_doc}, None, tuple(duplicates))


def plan_for(report: Report, facts: Facts, *, head_name: str | None = None, num_choices: int | None = None) -> Migration:
    if report.kind is Kind.ADAPTER:
        migration = plan_adapter_folder(report, facts, head_name)
    else:
        migration = plan_full_model(report, facts, head_name or report.plan.head_name)
    if num_choices is not None:
        for config in _head_configs(migration):
            if config.get("head_type") == "multiple_choice":
                config["num_choices"] = num_choices
    return migration


def _head_configs(migration: Migration):
    for content in migration.configs.values():
        if isinstance(content.get("prediction_heads"), dict):
            yield from content["prediction_heads"].values()
        elif isinstance(content.get("config"), dict):
            yield content["config"]
