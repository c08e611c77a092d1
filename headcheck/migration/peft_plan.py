"""Turn an exportable adapter folder into a PEFT adapter folder: PEFT's tensor names and its adapter_config.json.

A LoRA's matrices keep their bytes under PEFT's names (`<module>.lora_A.weight`: both libraries store A as [r, in]
and B as [out, r]); a fused q/k/v layer's B is recomposed block by block (peft_tensors.BlockLoraB). An (IA)^3 vector
becomes `<module>.ia3_l`, times adapters' alpha where that is not 1 (a computed tensor). The head's layers take the
task model's own names, which PEFT loads as a copy of that head module (modules_to_save). The base model is read for
its tensor headers only: every adapted layer must exist there with the shape the adapter was trained on, and its
module names decide how narrowly `target_modules` must name the adapted layers.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any, Iterable, Mapping

from ..judge import layouts, ruledata
from ..judge.engine import scan_facts, with_export
from ..judge.export_peft import TARGET, PeftPlan, fusion_refusal, judge_peft_export, refused
from ..judge.judgement import finding
from ..model import ExportVerdict, Kind, Layout, Report
from ..read.base_model import base_model
from ..read.facts import Facts, build_facts, files_of_role
from ..read.tensor_info import TensorInfo
from .export_plan import ExportRefusal, adapter_part, base_named, fused_blocks, head_target
from .merge import MergedTensor, numpy_installed
from .peft_tensors import BlockLoraB
from .plan import Migration, MigrationError, OutputFile, TensorMove

ADAPTER_FILE = "adapter_model.safetensors"
PREFIX = "base_model.model."  # PeftModel -> LoraModel -> the task model: the prefix of every saved name
PEFT_TYPES = {"lora": "LORA", "ia3": "IA3"}
LAYER_INDEX = re.compile(r"\.(\d+)\.")


def _static_name(name: str, fam: Mapping[str, Any]) -> str:
    """A base-model tensor's name in the task model's class: a bare base model's modules get the class's prefix."""
    first = name.split(".", 1)[0]
    if first not in fam["static_base_prefixes"] and first in fam.get("base_modules", ()):
        return f"{fam['static_base_prefixes'][0]}.{name}"
    return name


def _check_fit(module: str, weight: TensorInfo | None, a: TensorInfo | None, b: TensorInfo, method: str,
               transposed: bool, blocks: tuple[bool, ...], base: str) -> None:
    """The adapter was trained on a layer of this shape: a base of another size would load in PEFT with errors or
    not at all."""
    if weight is None or weight.shape is None or len(weight.shape) != 2:
        raise MigrationError(f"the base model {base} has no layer {module} (or no 2-D weight there), which the "
                             f"adapter adapts; is it the adapter's base model? (--base)")
    out, inp = weight.shape[::-1] if transposed else weight.shape
    held = sum(blocks) if blocks else 1
    rows = out // len(blocks) * held if blocks else out
    want_b = (rows, 1) if method == "ia3" else (rows, b.shape[1] if b.shape else None)
    fits = tuple(b.shape or ()) == want_b and (a is None or tuple(a.shape or ()) == (b.shape[1] * held, inp))
    if not fits:
        shapes = f"B {list(b.shape or ())}" + (f", A {list(a.shape or ())}" if a is not None else "")
        raise MigrationError(f"the base model {base} does not fit the adapter: {module}.weight is "
                             f"{list(weight.shape)}, the adapter's {shapes}; is it the adapter's base model? (--base)")


def _target_modules(adapted: set[str], module_names: Iterable[str]) -> tuple[list[str], list[int] | None]:
    """(target_modules, layers_to_transform): the adapted layers by their names after the layer index, limited to the
    adapted layer indices, when PEFT's suffix matching then finds exactly the adapted layers among the model's
    modules; else every adapted layer by its full name (BERT's `output.dense` is also the end of
    `attention.output.dense`)."""
    suffixes, layers = set(), set()
    for module in adapted:
        match = LAYER_INDEX.search(module)
        if match is None:
            return sorted(adapted), None
        suffixes.add(module[match.end():])
        layers.add(int(match.group(1)))

    def found(name: str) -> bool:  # PEFT's check_target_module_exists for a list of names with layers_to_transform
        match = LAYER_INDEX.search(name)
        return any(name.endswith(f".{s}") for s in suffixes) and match is not None and int(match.group(1)) in layers

    if {name for name in module_names if found(name)} != adapted:
        return sorted(adapted), None
    every = {int(m.group(1)) for name in module_names if (m := LAYER_INDEX.search(name))}
    return sorted(suffixes), sorted(layers) if layers != every else None


def _modules_to_save(head_modules: Iterable[str], prefixes: Iterable[str]) -> list[str]:
    """The task model's head modules PEFT copies whole: a head module outside the base model by its top name (e.g.
    RoBERTa's `classifier`, holding dense and out_proj), the pooler's dense layer by its full name."""
    prefixes = tuple(f"{p}." for p in prefixes)
    return sorted({m if m.startswith(prefixes) else m.split(".", 1)[0] for m in head_modules})


def plan_peft_export(facts: Facts, base_facts: Facts, plan: PeftPlan, base_name: str) -> Migration:
    """The adapter folder's tensors under PEFT's names in one adapter_model.safetensors; `base_facts`: the base model
    (headers only), `base_name`: how adapter_config.json names it (base_model_name_or_path)."""
    model_type = (facts.doc("adapter") or {}).get("model_type")
    fam = layouts.family(model_type) or {}
    layout = ruledata.exports()["lora_layouts"].get(model_type, {"transposed": False, "fused": {}})
    base_weights = {_static_name(name, fam): info for name, info in base_facts.weights.get("model", {}).items()}
    tensors = {name: info for role in ("adapter", "head") for name, info in facts.weights.get(role, {}).items()}
    moves: list[TensorMove] = []
    computed: list[Any] = []
    adapted: dict[str, tuple[bool, ...]] = {}  # adapted module -> which blocks of a fused layer it holds
    scaled = plan.method == "ia3" and plan.ia3_scale != 1.0
    for name, info in sorted(tensors.items()):
        if plan.head is not None and name.startswith(f"heads.{plan.head.head_name}."):
            target = PREFIX + head_target(name[len(f"heads.{plan.head.head_name}."):], plan.head)
            moves.append(TensorMove(info, target, info.shape))
            continue
        part = adapter_part(name)
        if part is None or part[1] != plan.adapter or part[2] not in ("lora_A", "lora_B"):
            raise MigrationError(f"{name}: a tensor the PEFT export has no place for")
        module = _static_name(part[0], fam)
        blocks = fused_blocks(module, plan.attn_matrices, layout)
        if part[2] == "lora_A":
            moves.append(TensorMove(info, f"{PREFIX}{module}.lora_A.weight", info.shape))
            continue
        adapted[module] = blocks
        lora_a = tensors.get(f"{part[0]}.loras.{plan.adapter}.lora_A")
        if plan.method == "lora" and lora_a is None:
            raise MigrationError(f"{name}: no lora_A beside it")
        _check_fit(module, base_weights.get(f"{module}.weight"), lora_a, info, plan.method, layout["transposed"],
                   blocks, base_name)
        if plan.method == "ia3":
            if blocks:  # PEFT's vector would need ones for the blocks adapters leaves alone: not proven
                raise ExportRefusal(finding("HC156", f"(IA)^3 on the fused layer {module}: headcheck has proven no "
                                            "PEFT export of it", file=info.file))
            target = f"{PREFIX}{module}.ia3_l"
            if scaled:
                computed.append(MergedTensor(target, info, "scale", plan.ia3_scale, None, None))
            else:
                moves.append(TensorMove(info, target, info.shape))
        elif blocks:
            computed.append(BlockLoraB(f"{PREFIX}{module}.lora_B.weight", info, blocks))
        else:
            moves.append(TensorMove(info, f"{PREFIX}{module}.lora_B.weight", info.shape))
    if scaled:
        numpy_installed()  # a missing extra is told before anything is written
    module_names = {name.rpartition(".")[0] for name in base_weights}
    config = _adapter_config(plan, adapted, module_names, layout, fam, base_name)
    replaced = (*facts.weight_files.get("adapter", ()), *facts.weight_files.get("head", ()),
                *files_of_role(facts.files, "adapter"), *files_of_role(facts.files, "head"),
                *filter(None, (facts.doc_file("adapter"), facts.doc_file("head"))))
    output = OutputFile(ADAPTER_FILE, tuple(moves), (), tuple(computed))
    return Migration(Kind.PEFT_ADAPTER, (output,), (), tuple(dict.fromkeys(replaced)),
                     {"adapter_config.json": config}, None, export=plan.architecture, target=TARGET)


def _adapter_config(plan: PeftPlan, adapted: Mapping[str, tuple[bool, ...]], module_names: set[str],
                    layout: Mapping[str, Any], fam: Mapping[str, Any], base_name: str) -> dict[str, Any]:
    """adapter_config.json in PEFT's schema, with only keys PEFT has read since its early releases (a key an older
    PEFT does not know makes its config class refuse the file)."""
    target_modules, layers = _target_modules(set(adapted), module_names)
    head_modules = plan.head.layer_modules.values() if plan.head is not None else ()
    config: dict[str, Any] = {
        "peft_type": PEFT_TYPES[plan.method], "task_type": plan.task_type, "base_model_name_or_path": base_name,
        "target_modules": target_modules, "layers_to_transform": layers,
        "modules_to_save": _modules_to_save(head_modules, fam.get("static_base_prefixes", ())) or None,
        "fan_in_fan_out": bool(layout["transposed"]), "inference_mode": True,
    }
    if plan.method == "ia3":  # scaling every adapted layer's output, as adapters' (IA)^3 does
        return {**config, "feedforward_modules": [], "init_ia3_weights": True}
    fused = sorted({m.rpartition(".")[2] for m, blocks in adapted.items() if blocks})
    held = next((sum(blocks) for blocks in adapted.values() if blocks), 1)  # every fused layer holds the same
    plain = not all(adapted.values())
    # a fused layer's LoRA is n LoRAs of rank r side by side: rank n*r, and lora_alpha n*alpha keeps alpha / r
    r, alpha = (plan.r, plan.lora_alpha) if plain else (plan.r * held, plan.lora_alpha * held)
    patterns = {name: plan.r * held for name in fused} if plain else {}
    alphas = {name: plan.lora_alpha * held for name in fused} if plain else {}
    return {**config, "r": r, "lora_alpha": _number(alpha), "lora_dropout": plan.dropout, "bias": "none",
            "use_rslora": False, "use_dora": False, "init_lora_weights": True, "rank_pattern": patterns,
            "alpha_pattern": {k: _number(v) for k, v in alphas.items()}}


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def prepare_peft_export(facts: Facts, *, base: Path | str | None = None, report: Report | None = None,
                        token: str | None = None) -> tuple[Report, Migration | None]:
    """The scan (with its exports.peft) and the PEFT export's migration: a checked copy of a PEFT adapter, None when
    not exportable. `base`: the base model, a folder or a Hub repository id (default: adapter_config.json's
    model_name; read.base_model says how it is found and fetched, `token` for a private one)."""
    if report is None and facts.doc("fusion") is not None and facts.doc("adapter") is None:
        return fusion_refusal(facts), None
    report = scan_facts(facts) if report is None else report
    judged = judge_peft_export(facts, report)
    report = with_export(report, judged)
    if judged.export.verdict is ExportVerdict.NATIVE:
        return report, Migration(report.kind, (), (), (), {}, None, target=TARGET)
    if judged.plan is None:
        return report, None
    named = base_named(facts, base)
    found = base_model(named, token=token)  # the weights' headers: the adapter must fit the base's layers
    try:
        migration = plan_peft_export(facts, build_facts(found.folder), judged.plan, str(named))
        return report, dataclasses.replace(migration, base=found)
    except ExportRefusal as refusal:
        return with_export(report, refused(refusal.finding)), None


def peft_rescan_problem(rescan: Report) -> str | None:
    """Why the written folder is not what was planned: it must scan as a PEFT adapter."""
    export = rescan.export(TARGET)
    if rescan.layout is Layout.PEFT and export is not None and export.verdict is ExportVerdict.NATIVE:
        return None
    return f"the exported folder scans as {rescan.layout.value}, not as a PEFT adapter; nothing written"
