"""Turn an exportable flex checkpoint into a migration out of adapters: every tensor's place in the static class.

The judge (judge/export.py) decided the class and where each head layer goes; this walks the weights: base
tensors keep their names, the head's take the static class's, and what the static class has no place for (other
heads, a pooler it does not build, a pooler replaced by the head's first layer) is left out, each with its reason.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Mapping

from ..judge import layouts, ruledata
from ..judge.engine import scan_facts, with_export
from ..judge.export import TARGET, ExportChoiceError, ExportPlan, judge_transformers_export, refused
from ..judge.judgement import finding
from ..model import ExportVerdict, Finding, Kind, Layout, Report
from ..read.base_model import BaseModel, base_model
from ..read.facts import Facts, build_facts, files_of_role
from ..read.tensor_info import TensorInfo
from .merge import MergedTensor, numpy_installed
from .plan import SAFE_INDEX, AddedTensor, Migration, MigrationError, OutputFile, TensorMove, _output_name
from .tensor_bytes import tensor_chunks

# config.json keys only adapters reads: an export must not carry them (a plain transformers load ignores them,
# but a later adapters load would take the checkpoint for a flex one)
ADAPTERS_KEYS = ("adapters", "prediction_heads", "custom_heads")
# modules adapters adds to a model for its other methods (methods/*.py): their tensors never go into an export
ADAPTER_MODULES = {"adapters", "adapter_fusion_layer", "prefix_tunings", "invertible_adapters", "shared_parameters",
                   "refts", "prompt_tuning", "prefix_tuning"}
# a tensor adapters adds to the base model with zeros where the static class has none: left out while it is zero
ZERO_ONLY = "zero in the flex model (adapters adds it; the static class has none): adds nothing"


class ExportRefusal(Exception):
    """What the header-only judgement cannot see, found when the tensors are planned: the finding that refuses."""

    def __init__(self, reason: Finding):
        super().__init__(reason.message)
        self.finding = reason


def _all_zero(root: Path, info: TensorInfo) -> bool:
    """Every byte zero (+0.0 in every float dtype); a few values per layer, read only for these tensors."""
    return not any(any(chunk) for chunk in tensor_chunks(root, info))


def head_target(rest: str, plan: ExportPlan) -> str:
    """`4.weight` below heads.<name>. -> the static class's name of that parameter."""
    index, _, param = rest.partition(".")
    module = plan.layer_modules.get(int(index)) if index.isdigit() else None
    if module is None:
        raise MigrationError(f"heads.{plan.head_name}.{rest}: no place in {plan.architecture}")
    if int(index) == max(plan.layer_modules) and param == "bias":
        if plan.output_bias_buffer:  # BART adds final_logits_bias to its logits: the flex output bias
            return plan.output_bias_buffer
        if plan.tied_output_bias:  # the name the static class saves its tied output bias under
            return plan.tied_output_bias
    return f"{module}.{param}"


def adapter_part(name: str) -> tuple[str, str, str] | None:
    """`x.query.loras.task.lora_A` -> ("x.query", "task", "lora_A"); None for a tensor of no adapter module.
    Other adapter modules (bottleneck, prefix, fusion, ...) give ("", "", module)."""
    parts = name.split(".")
    for holder in ("loras", "shared_parameters"):  # VeRA's shared A and B: <base>.shared_parameters.<adapter>.lora_A
        if holder in parts:
            at = parts.index(holder)
            return ".".join(parts[:at]), ".".join(parts[at + 1:-1]), parts[-1]
    found = ADAPTER_MODULES.intersection(parts)
    return ("", "", found.pop()) if found else None


def _fate(name: str, plan: ExportPlan, base_prefixes: set[str], others: tuple[str, ...]) -> tuple[str | None, str | None]:
    """(target, None) for a tensor that is written, (None, why) for one left out."""
    if part := adapter_part(name):
        module, adapter, _ = part
        if plan.merge is not None and adapter == plan.merge.adapter:
            return None, ("VeRA's shared matrices, merged into every adapted layer" if ".shared_parameters." in name
                          else f"merged into {module}")
        if adapter in others:
            return None, f"adapter {adapter!r}, not the one merged"
        raise MigrationError(f"{name}: an adapter tensor the export has no merge for")
    head_prefix = f"heads.{plan.head_name}."
    if name.startswith(head_prefix):
        return head_target(name[len(head_prefix):], plan), None
    if name.startswith("heads."):
        return None, "another head: the export holds the chosen one"
    if plan.pooler_dense and name.startswith(plan.pooler_dense + "."):
        if plan.head_writes_pooler:
            return None, "the pooler the flex head never used; the head's first layer takes its place"
        if not plan.keeps_pooler:
            return None, f"the flex model's pooler, unused by its head; {plan.architecture} has none"
        return name, None
    if name.split(".", 1)[0] in base_prefixes or name != _renamed(name, plan):
        return _renamed(name, plan), None
    raise MigrationError(f"{name}: no destination planned for this tensor")  # never a silent drop


def _renamed(name: str, plan: ExportPlan) -> str:
    """A base tensor's name in the static class (T5's transformer.* at the top level), merged or not."""
    for flex_prefix, static_prefix in plan.base_renames.items():
        if name.startswith(flex_prefix):
            return static_prefix + name[len(flex_prefix):]
    return name


def _merged(tensors: Mapping[str, TensorInfo], plan: ExportPlan, model_type: str | None) -> dict[str, MergedTensor]:
    """Base tensor name -> the merged tensor written in its stead."""
    merge = plan.merge
    if merge is None:
        return {}
    layout = ruledata.exports()["lora_layouts"].get(model_type, {"transposed": False, "fused": {}})
    merged = {}
    for name in tensors:
        part = adapter_part(name)
        if not part or part[1] != merge.adapter or part[2] != ("vera_B" if merge.kind == "vera" else "lora_B"):
            continue
        module = part[0]
        if merge.kind == "vera":
            lora_a, lora_b = _vera_shared(tensors, merge.adapter)
            vera_d = tensors.get(f"{module}.loras.{merge.adapter}.vera_D")
            if vera_d is None:
                raise MigrationError(f"{name}: no vera_D beside it")
            vera = (tensors[name], vera_d)
            _vera_fits(module, tensors.get(f"{module}.weight"), lora_a, lora_b, vera, merge.adapter)
        else:
            lora_a = tensors.get(f"{module}.loras.{merge.adapter}.lora_A") if merge.kind == "lora" else None
            lora_b, vera = tensors[name], None
            if merge.kind == "lora" and lora_a is None:
                raise MigrationError(f"{name}: no lora_A beside it")
        blocks = fused_blocks(module, merge.attn_matrices, layout)
        params = ("weight", "bias") if merge.kind == "ia3" else ("weight",)
        for param in params:
            if (base := tensors.get(f"{module}.{param}")) is not None:
                merged[base.name] = MergedTensor(_renamed(base.name, plan), base, merge.kind, merge.scaling, lora_a,
                                                 lora_b, layout["transposed"], blocks, vera)
    return merged


def fused_blocks(module: str, attn_matrices: tuple[str, ...], layout: Mapping[str, Any]) -> tuple[bool, ...]:
    """Per output block of a fused q/k/v layer (GPT-2's c_attn, DeBERTa's in_proj), whether the adapter holds it;
    () for a plain layer."""
    fused = layout["fused"].get(module.rpartition(".")[2])
    return tuple(matrix in attn_matrices for matrix in fused) if fused else ()


def _vera_shared(tensors: Mapping[str, TensorInfo], adapter: str) -> tuple[TensorInfo, TensorInfo]:
    """VeRA's frozen random A and B, drawn once per model when the adapter was added and saved with it (adapters
    registers them under the base model's shared_parameters): read, never drawn again."""
    found = {name.rpartition(".")[2]: info for name, info in tensors.items()
             if name.endswith((f"shared_parameters.{adapter}.lora_A", f"shared_parameters.{adapter}.lora_B"))}
    if set(found) != {"lora_A", "lora_B"}:  # adapters would draw new ones at load time: no trained model to repeat
        raise ExportRefusal(finding("HC145", f"VeRA adapter {adapter!r} without its shared matrices "
                                    f"(shared_parameters.{adapter}.lora_A and lora_B): adapters draws them anew "
                                    "when it loads, so the update the adapter was trained with is not in the files",
                                    hint="keep serving it with adapters; save_pretrained and save_adapter of adapters "
                                         "1.3.0 write them"))
    return found["lora_A"], found["lora_B"]


def _vera_fits(module: str, weight: TensorInfo | None, lora_a: TensorInfo, lora_b: TensorInfo,
               vera: tuple[TensorInfo, TensorInfo], adapter: str) -> None:
    """One pair of shared matrices serves every adapted layer: a layer of another shape (Llama's grouped k/v
    projections) cannot run it in adapters itself, so there are no outputs to reproduce."""
    (rows, rank), (_, cols) = lora_b.shape, lora_a.shape
    if weight is None or tuple(weight.shape) != (rows, cols) or tuple(vera[0].shape) != (rows, rows) \
            or tuple(vera[1].shape) != (rank, rank):
        shape = list(weight.shape) if weight is not None else None
        raise ExportRefusal(finding("HC145", f"VeRA adapter {adapter!r} on {module} (weight {shape}): its shared "
                                    f"matrices (B {list(lora_b.shape)}, A {list(lora_a.shape)}) do not fit, and "
                                    "adapters itself cannot run it there",
                                    hint="keep serving it with adapters, or retrain with LoRA"))


def _scaled_head(tensors: Mapping[str, TensorInfo], plan: ExportPlan) -> dict[str, MergedTensor]:
    """The head's first weight times the input scale the AdapterModel applied before it (plan.input_scale)."""
    if plan.input_scale is None:
        return {}
    rest = f"{min(plan.layer_modules)}.weight"
    name = f"heads.{plan.head_name}.{rest}"
    return {name: MergedTensor(head_target(rest, plan), tensors[name], "scale", plan.input_scale, None, None)}


def plan_transformers_export(facts: Facts, plan: ExportPlan, others: tuple[str, ...] = ()) -> Migration:
    """`others`: the adapters the model carries besides the merged one, whose tensors are left out."""
    replaced = (*facts.weight_files["model"], *files_of_role(facts.files, "model"), facts.doc_file("model"))
    return _export(facts.weights["model"], facts.weight_files["model"], facts.doc("model") or {}, plan, others,
                   replaced, Path(facts.root))


def plan_adapter_export(facts: Facts, base: BaseModel, plan: ExportPlan, source: Path) -> Migration:
    """An adapter folder on its base model: the base's tensors under the flex (= static) names, the adapter's and
    the head's beside them, named relative to the base folder, which the export reads and copies from."""
    root = base.folder
    base_facts = build_facts(root)
    config = base_facts.doc("model") or {}
    fam = layouts.family(config.get("model_type")) or {}
    prefix = fam["static_base_prefixes"][0]
    tensors: dict[str, TensorInfo] = {}
    dropped: list[tuple[str, str]] = []
    for name, info in base_facts.weights.get("model", {}).items():
        first = name.split(".", 1)[0]
        if first in fam["static_base_prefixes"]:
            tensors[name] = info
        elif first in fam.get("base_modules", ()):  # saved from the bare base class: its modules at the top level
            tensors[f"{prefix}.{name}"] = dataclasses.replace(info, name=f"{prefix}.{name}")
        else:
            dropped.append((name, "the base checkpoint's own head; the adapter's head takes its place"))
    relative = os.path.relpath(source, root)
    for role in ("adapter", "head"):
        for name, info in facts.weights.get(role, {}).items():
            tensors[name] = dataclasses.replace(info, file=f"{relative}/{info.file}")
    replaced = (*base_facts.weight_files["model"], *files_of_role(base_facts.files, "model"),
                base_facts.doc_file("model"))
    migration = _export(tensors, base_facts.weight_files["model"], config, plan, (), replaced, root)
    return dataclasses.replace(migration, dropped=(*dropped, *migration.dropped), root=root, base=base)


def _export(tensors: Mapping[str, TensorInfo], weight_files: tuple[str, ...], config: Mapping[str, Any],
            plan: ExportPlan, others: tuple[str, ...], replaced: tuple[str, ...], root: Path) -> Migration:
    """`root`: the folder the tensors' files are relative to (read only for the zero-only tensors' values)."""
    fam = layouts.family(config.get("model_type")) or {}
    base_prefixes = set(fam.get("static_base_prefixes", ()))
    sharded = weight_files[0].endswith(".index.json")
    first_output = _output_name(sorted(t.file for t in tensors.values() if not t.file.startswith(".."))[0], sharded)

    def output_of(info: TensorInfo) -> str:  # an adapter folder's own tensors go into the base's first file
        return first_output if info.file.startswith("..") or "/" in info.file else _output_name(info.file, sharded)

    zero_only = tuple(ruledata.exports()["zero_only"].get(config.get("model_type"), ()))
    # str.endswith(()) is False: families without such tensors read nothing
    nonzero = [name for name, info in sorted(tensors.items()) if name.endswith(zero_only) and not _all_zero(root, info)]
    if nonzero:
        raise ExportRefusal(finding("HC148", f"{nonzero[0]} holds non-zero values"
                                    f"{f' (and {len(nonzero) - 1} more)' if len(nonzero) > 1 else ''}: "
                                    f"{plan.architecture} has no such tensor", file=tensors[nonzero[0]].file,
                                    hint="keep serving it with adapters (a full fine-tune trained the bias)"))
    merged = {name: tensor for name, tensor in _merged(tensors, plan, config.get("model_type")).items()
              if not name.endswith(zero_only)}  # an (IA)^3 scales the bias too: zero stays zero, left out
    merged.update(_scaled_head(tensors, plan))
    if merged:
        numpy_installed()  # a missing extra is told before anything is written
    moves: dict[str, list[TensorMove]] = {}
    computed: dict[str, list[MergedTensor]] = {}
    dropped: list[tuple[str, str]] = []
    for name, info in sorted(tensors.items()):
        if name in merged:
            computed.setdefault(output_of(info), []).append(merged[name])
            continue
        target, why = (None, ZERO_ONLY) if name.endswith(zero_only) else _fate(name, plan, base_prefixes, others)
        if target is None:
            dropped.append((name, why))
            continue
        # final_logits_bias is [1, vocab] where the flex head's bias is [vocab]: the same bytes
        shape = (1, *info.shape) if target == plan.output_bias_buffer else info.shape
        moves.setdefault(output_of(info), []).append(TensorMove(info, target, shape))
    first = sorted(moves)[0]
    added = _zero_output_bias(plan, config, moves)
    outputs = tuple(OutputFile(name, tuple(moves.get(name, ())), added if name == first else (),
                               tuple(computed.get(name, ())))
                    for name in sorted({*moves, *computed}))
    return Migration(Kind.FULL_MODEL, outputs, tuple(dropped), tuple(dict.fromkeys(replaced)),
                     {"config.json": export_config(config, plan)}, SAFE_INDEX if sharded else None,
                     export=plan.architecture, removed_keys=tuple(k for k in ADAPTERS_KEYS if k in config),
                     target=TARGET)


def _zero_output_bias(plan: ExportPlan, config: Mapping[str, Any],
                      moves: Mapping[str, list[TensorMove]]) -> tuple[AddedTensor, ...]:
    """A flex seq2seq head without an output bias adds nothing to the logits: BART's final_logits_bias as zeros."""
    placed = [m for items in moves.values() for m in items]
    if not plan.output_bias_buffer or any(m.target == plan.output_bias_buffer for m in placed):
        return ()
    return (AddedTensor(plan.output_bias_buffer, placed[0].source.dtype, (1, int(config["vocab_size"])),
                        "the flex head has no output bias; the class adds this buffer to its logits"),)


def export_config(config: Mapping[str, Any], plan: ExportPlan) -> dict[str, Any]:
    """config.json for the static class: its name, the head's labels and loss, no adapters keys."""
    new = {k: v for k, v in config.items() if k not in ADAPTERS_KEYS}
    new["architectures"] = [plan.architecture]
    new.update(plan.config)
    return new


def prepare_export(facts: Facts, *, head: str | None = None, adapter: str | None = None,
                   base: Path | str | None = None, report: Report | None = None,
                   token: str | None = None) -> tuple[Report, Migration | None]:
    """The scan (its export judged for the chosen head and adapter) and the export's migration: a checked copy
    for a checkpoint that already is a transformers class, None when it is not exportable. An adapter folder
    needs `base`, its base model: a folder or a Hub repository id (default: adapter_config.json's model_name;
    read.base_model says how it is found and fetched, `token` for a private one).
    `report`: the facts' scan when the caller has it (a Hub scan, which read the base model's config too)."""
    report = scan_facts(facts) if report is None else report
    judged = judge_transformers_export(facts, report, head, adapter)
    report = with_export(report, judged)
    if judged.export.verdict is ExportVerdict.NATIVE:
        return report, Migration(report.kind, (), (), (), {}, None, export=judged.export.architecture, target=TARGET)
    if judged.plan is None:
        return report, None
    if judged.adapter_choices and adapter is None:
        raise ExportChoiceError(f"{len(judged.adapter_choices)} adapters ({', '.join(judged.adapter_choices)}) and "
                                "a saved model does not record which one was active: choose one with --adapter NAME")
    try:
        if report.kind is Kind.ADAPTER:
            found = base_model(base_named(facts, base), token=token)
            return report, plan_adapter_export(facts, found, judged.plan, Path(facts.root))
        merged = judged.plan.merge.adapter if judged.plan.merge else None
        others = tuple(n for n in ((facts.doc("model") or {}).get("adapters") or {}).get("adapters") or {}
                       if n != merged)
        return report, plan_transformers_export(facts, judged.plan, others)
    except ExportRefusal as refusal:
        return with_export(report, refused(refusal.finding)), None


def base_named(facts: Facts, base: Path | str | None) -> Path | str | None:
    """An adapter folder's base model as the user names it: --base, else adapter_config.json's model_name."""
    return base or (facts.doc("adapter") or {}).get("model_name")


def export_rescan_problem(rescan: Report, architecture: str) -> str | None:
    """Why the written export is not what was planned: it must scan as the static class, loadable as it is."""
    export = rescan.export(TARGET)
    if rescan.layout is Layout.STATIC and export is not None and export.verdict is ExportVerdict.NATIVE \
            and export.architecture == architecture:
        return None
    return (f"the exported checkpoint scans as {rescan.layout.value} ({rescan.head.architecture}), not as "
            f"{architecture} loadable by transformers as it is; nothing written")
