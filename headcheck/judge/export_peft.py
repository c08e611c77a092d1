"""Judge the way out of adapters into PEFT: can this adapter folder be written as a PEFT adapter that computes the same?

PEFT's LoRA adds `lora_alpha / r * B @ A x` to a layer's output, as adapters' LoRA (`composition_mode: add`) adds
`alpha / r * B @ A x`; PEFT's IA3 on a layer outside `feedforward_modules` multiplies the layer's output by `l`, as
adapters' (IA)^3 (`composition_mode: scale`) multiplies it by `alpha * l`. Every other method is refused with a rule
saying why (HC149-HC156). The head goes into the task model's own head module (PEFT's modules_to_save), placed as the
transformers export places it (export.judge_head): PEFT loads the head as a copy of that module's parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from . import layouts, ruledata
from .export import ExportPlan, judge_head
from .export_adapters import attn_matrices, described_architecture, is_vera, unexportable_lora
from .judgement import finding
from ..model import Export, ExportVerdict, Finding, Head, Kind, Layout, Report, Verdict
from ..read.facts import Facts
from ..read.json_text import is_number

TARGET = "peft"
# adapters < 1.1.0 computed LoRA with scaling 1 whatever alpha said; adapters 1.1+ loads such a folder with
# alpha = r (loading.py _fix_backward_compat): so does the export (adapters pull request #770)
FIXED_SCALING = "1.1.0"
ADAPTERS_VERSION_PREFIX = "adapters."
LOAD_NOTE = "load: "  # the exportable verdict's note with the loading line (_loading_code, BASE and DIR unfilled)


@dataclass(frozen=True)
class PeftPlan:
    """What a PEFT export writes: the method's settings in PEFT's terms, and where the head goes."""

    adapter: str
    method: str  # "lora" or "ia3"
    r: int
    lora_alpha: float  # PEFT scales a LoRA by lora_alpha / r: adapters' alpha, or r where adapters computes scaling 1
    ia3_scale: float  # adapters multiplies an (IA)^3 vector by alpha (as computed); PEFT's vector holds the product
    dropout: float
    attn_matrices: tuple[str, ...]  # which blocks of a fused q/k/v layer the adapter holds
    task_type: str | None  # PEFT's task_type; None for a head-less adapter of an encoder (never planned today)
    architecture: str  # the transformers class the base model is loaded as (PeftModel.from_pretrained's model)
    head: ExportPlan | None  # where the head's layers go in that class (None: head-less, the base's own head)


@dataclass(frozen=True)
class PeftJudgement:
    export: Export
    plan: PeftPlan | None = None


def _refused(code: str, message: str, file: str, key: str | None = None, hint: str | None = None) -> PeftJudgement:
    return refused(finding(code, message, file=file, key=key, hint=hint))


def refused(*reasons: Finding) -> PeftJudgement:
    """Not exportable, for these reasons (also those the export's planning finds, which reads the base model)."""
    return PeftJudgement(Export(TARGET, ExportVerdict.NOT_EXPORTABLE, findings=reasons))


def judge_peft_export(facts: Facts, report: Report) -> PeftJudgement:
    """`exports.peft` of a scanned checkpoint."""
    if report.kind is Kind.PEFT_ADAPTER:
        return PeftJudgement(Export(TARGET, ExportVerdict.NATIVE))
    if report.kind is Kind.ADAPTER and facts.doc("adapter") is not None:
        return _adapter_folder(facts, report)
    carried = _adapters_carried(facts.doc("model") or {})
    notes = (f"a full model carrying {', '.join(map(repr, carried))}: PEFT loads an adapter apart from its base; "
             "`migrate --to transformers` merges it into a plain checkpoint instead",) if carried else ()
    return PeftJudgement(Export(TARGET, ExportVerdict.NOT_APPLICABLE, notes=notes))


def _adapters_carried(config: Mapping[str, Any]) -> list[str]:
    block = config.get("adapters") if isinstance(config.get("adapters"), dict) else {}
    names = block.get("adapters")
    return list(names) if isinstance(names, dict) else []


def why_not_peft(settings: Any) -> tuple[str, str] | None:
    """(rule, why) when PEFT computes no method the way adapters computes these settings; None when it does."""
    if not isinstance(settings, dict):
        return "HC149", f"{settings} (a named adapter config without its settings)"
    architecture = settings.get("architecture")
    if architecture == "prefix_tuning":
        return "HC150", "prefix tuning"
    if architecture == "prompt_tuning":
        return "HC151", "prompt tuning"
    if architecture != "lora":
        return "HC149", described_architecture(architecture)
    if settings.get("use_gating"):
        return "HC152", "gated LoRA"
    if settings.get("use_dora"):
        return "HC153", "DoRA"
    if is_vera(settings):
        return "HC149", "VeRA (PEFT draws its shared matrices from its own seed)"
    if why := unexportable_lora(settings):
        return "HC149", why
    return None


def _alpha_as_computed(doc: Mapping[str, Any], settings: Mapping[str, Any]) -> float:
    """The alpha adapters computes the folder with: its own, or r where the folder was written before adapters 1.1.0
    with r != alpha (adapters' loading.py _fix_backward_compat, for LoRA and (IA)^3 alike)."""
    version = str(doc.get("version") or "")
    old = False
    if version.startswith(ADAPTERS_VERSION_PREFIX):
        from packaging.version import InvalidVersion, Version  # on use: most scans compare no version

        try:
            old = Version(version.removeprefix(ADAPTERS_VERSION_PREFIX)) < Version(FIXED_SCALING)
        except InvalidVersion:
            pass
    default = 1 if settings.get("composition_mode") == "scale" else 8  # IA3Config's and LoRAConfig's defaults
    r, alpha = settings.get("r", default), settings.get("alpha", default)
    return float(r if old and r != alpha else alpha)


def _adapter_folder(facts: Facts, report: Report) -> PeftJudgement:
    doc = facts.doc("adapter") or {}
    file = facts.doc_file("adapter") or "adapter_config.json"
    name = str(doc.get("name") or "")
    settings = doc.get("config")
    if why := why_not_peft(settings):
        rule, method = why
        return _refused(rule, f"adapter {name!r} is {method}, which PEFT computes differently or not at all", file,
                        "config", "keep serving it with adapters, or retrain with LoRA or (IA)^3")
    data = ruledata.exports()["peft"]
    model_type = report.model_type
    if model_type not in data["families"]:
        return _refused("HC156", f"adapter {name!r} of model_type {model_type!r}: headcheck has proven PEFT exports of "
                                 f"{', '.join(data['families'])} only", file, "model_type",
                        f"headcheck migrate {report.source} --to transformers --base BASE")
    head_doc = facts.doc("head")
    head_plan, task_type, architecture = None, data["headless"].get(model_type), None
    if head_doc is None:
        if task_type is None:
            return _refused("HC155", f"adapter {name!r} was saved without a head: headcheck has proven head-less PEFT "
                                     f"exports of {', '.join(data['headless'])} only (their base's LM head)", file)
        architecture = layouts.static_classes_for(model_type, "causal_lm")[0]
    else:
        head_file = facts.doc_file("head") or "head_config.json"
        if report.verdict is not Verdict.ALREADY_FLEX:
            return _refused("HC146", f"not exported: the head's scan verdict is {report.verdict.value}; an export "
                                     "reproduces a consistent flex checkpoint", head_file,
                            hint=f"headcheck migrate {report.source} --out FLEX, then export FLEX")
        cfg = head_doc.get("config") if isinstance(head_doc.get("config"), dict) else {}
        head_type = str(cfg.get("head_type") or "unknown")
        task_type = data["task_types"].get(head_type)
        if task_type is None:
            return _refused("HC155", f"head {head_doc.get('name')!r} ({head_type}): headcheck has proven PEFT exports of "
                                     f"{', '.join(data['task_types'])} heads only", head_file, "config.head_type",
                            f"headcheck migrate {report.source} --to transformers --base BASE")
        judged = judge_head(model_type, str(head_doc.get("name") or name), cfg, head_file)
        if judged.plan is None:  # no place in the task model's class: the transformers export's own reason
            return refused(*judged.export.findings)
        head_plan, architecture = judged.plan, judged.plan.architecture
    scale = settings.get("composition_mode") == "scale"
    alpha = _alpha_as_computed(doc, settings)
    dropout = settings.get("dropout")
    plan = PeftPlan(name, "ia3" if scale else "lora", int(settings.get("r", 8)), alpha, alpha if scale else 1.0,
                    float(dropout) if is_number(dropout) else 0.0,  # dropout only acts in training
                    attn_matrices(settings), task_type, architecture, head_plan)
    notes = [LOAD_NOTE + _loading_code(architecture, _load_settings(head_plan))]
    if alpha != float(settings.get("alpha", 1 if scale else 8)):
        notes.append(f"written by {doc.get('version')}, which computed LoRA with scaling 1: alpha = r "
                     "(what adapters 1.1+ does when it loads the folder)")
    return PeftJudgement(Export(TARGET, ExportVerdict.EXPORTABLE, architecture,
                                head_name=head_plan.head_name if head_plan else None, adapter=name,
                                notes=tuple(notes)), plan)


def _loading_code(architecture: str, settings: list[str]) -> str:
    """The line that loads the export with PEFT onto its base model, BASE and DIR standing for them (load_line)."""
    return f"PeftModel.from_pretrained({architecture}.from_pretrained({', '.join(['BASE', *settings])}), DIR)"


def load_line(export: Export, base: str, folder: str) -> str:
    """The exportable verdict's loading line (its LOAD_NOTE note) with `base` and `folder` filled in."""
    note = next(n for n in export.notes if n.startswith(LOAD_NOTE)).removeprefix(LOAD_NOTE)
    return note.replace("(BASE", f"({base}", 1).replace(", DIR)", f", {folder})")


def _load_settings(head: ExportPlan | None) -> list[str]:
    """The from_pretrained arguments that give the task model the head's labels and loss: PEFT keeps no config."""
    if head is None or not head.config.get("id2label"):
        return []
    settings = [f"num_labels={len(head.config['id2label'])}"]
    if head.config.get("problem_type") not in (None, "single_label_classification"):
        settings.append(f"problem_type={head.config['problem_type']!r}")
    return settings


def fusion_refusal(facts: Facts) -> Report:
    """An AdapterFusion folder, which scan does not judge (nothing but fusion layers), asked for a PEFT export: the
    report that refuses it (HC154)."""
    file = facts.doc_file("fusion") or "adapter_fusion_config.json"
    reason = finding("HC154", "an AdapterFusion folder: its fusion layers combine several adapters per input, and PEFT "
                              "loads one adapter at a time", file=file,
                     hint="export each LoRA or (IA)^3 adapter of the fusion on its own: headcheck migrate ADAPTER --to peft")
    return Report(facts.root, Kind.ADAPTER, Layout.ADAPTERS_ADAPTER, None, Head("none"), Verdict.NO_HEAD,
                  files=facts.files, exports=(refused(reason).export,))
