"""Turn an exportable flex checkpoint into a migration out of adapters: every tensor's place in the static class.

The judge (judge/export.py) decided the class and where each head layer goes; this walks the weights: base
tensors keep their names, the head's take the static class's, and what the static class has no place for (other
heads, a pooler it does not build, a pooler replaced by the head's first layer) is left out, each with its reason.
"""

from __future__ import annotations

from typing import Any, Mapping

from ..judge import layouts
from ..judge.engine import scan_facts, with_export
from ..judge.export import ExportPlan, judge_transformers_export
from ..model import ExportVerdict, Kind, Layout, Report
from ..read.facts import Facts, files_of_role
from .plan import SAFE_INDEX, Migration, MigrationError, TensorMove, OutputFile, _output_name

# config.json keys only adapters reads: an export must not carry them (a plain transformers load ignores them,
# but a later adapters load would take the checkpoint for a flex one)
ADAPTERS_KEYS = ("adapters", "prediction_heads", "custom_heads")


def _head_target(rest: str, plan: ExportPlan) -> str:
    """`4.weight` below heads.<name>. -> the static class's name of that parameter."""
    index, _, param = rest.partition(".")
    module = plan.layer_modules.get(int(index)) if index.isdigit() else None
    if module is None:
        raise MigrationError(f"heads.{plan.head_name}.{rest}: no place in {plan.architecture}")
    final = max(plan.layer_modules)
    if plan.tied_output_bias and int(index) == final and param == "bias":
        return plan.tied_output_bias  # the name the static class saves its tied output bias under
    return f"{module}.{param}"


def _fate(name: str, plan: ExportPlan, base_prefixes: set[str]) -> tuple[str | None, str | None]:
    """(target, None) for a tensor that is written, (None, why) for one left out."""
    head_prefix = f"heads.{plan.head_name}."
    if name.startswith(head_prefix):
        return _head_target(name[len(head_prefix):], plan), None
    if name.startswith("heads."):
        return None, "another head: the export holds the chosen one"
    if plan.pooler_dense and name.startswith(plan.pooler_dense + "."):
        if plan.head_writes_pooler:
            return None, "the pooler the flex head never used; the head's first layer takes its place"
        if not plan.keeps_pooler:
            return None, f"the flex model's pooler, unused by its head; {plan.architecture} has none"
        return name, None
    if name.split(".", 1)[0] in base_prefixes:
        return name, None
    raise MigrationError(f"{name}: no destination planned for this tensor")  # never a silent drop


def plan_transformers_export(facts: Facts, plan: ExportPlan) -> Migration:
    config = facts.doc("model") or {}
    fam = layouts.family(config.get("model_type")) or {}
    base_prefixes = set(fam.get("static_base_prefixes", ()))
    sharded = facts.weight_files["model"][0].endswith(".index.json")
    moves: dict[str, list[TensorMove]] = {}
    dropped: list[tuple[str, str]] = []
    for name, info in sorted(facts.weights["model"].items()):
        target, why = _fate(name, plan, base_prefixes)
        if target is None:
            dropped.append((name, why))
            continue
        moves.setdefault(_output_name(info.file, sharded), []).append(TensorMove(info, target, info.shape))
    outputs = tuple(OutputFile(name, tuple(items)) for name, items in sorted(moves.items()))
    replaced = (*facts.weight_files["model"], *files_of_role(facts.files, "model"), facts.doc_file("model"))
    return Migration(Kind.FULL_MODEL, outputs, tuple(dropped), tuple(dict.fromkeys(replaced)),
                     {"config.json": export_config(config, plan)}, SAFE_INDEX if sharded else None,
                     export=plan.architecture)


def export_config(config: Mapping[str, Any], plan: ExportPlan) -> dict[str, Any]:
    """config.json for the static class: its name, the head's labels and loss, no adapters keys."""
    new = {k: v for k, v in config.items() if k not in ADAPTERS_KEYS}
    new["architectures"] = [plan.architecture]
    new.update(plan.config)
    return new


def prepare_export(facts: Facts, *, head: str | None = None,
                   adapter: str | None = None) -> tuple[Report, Migration | None]:
    """The scan (its export judged for the chosen head and adapter) and the export's migration: a checked copy
    for a checkpoint that already is a transformers class, None when it is not exportable."""
    report = scan_facts(facts)
    judged = judge_transformers_export(facts, report, head, adapter)
    report = with_export(report, judged)
    if judged.export.verdict is ExportVerdict.NATIVE:
        return report, Migration(report.kind, (), (), (), {}, None, export=judged.export.architecture)
    if judged.plan is None:
        return report, None
    return report, plan_transformers_export(facts, judged.plan)


def export_rescan_problem(rescan: Report, architecture: str) -> str | None:
    """Why the written export is not what was planned: it must scan as the static class, loadable as it is."""
    export = rescan.exports[0] if rescan.exports else None
    if rescan.layout is Layout.STATIC and export is not None and export.verdict is ExportVerdict.NATIVE \
            and export.architecture == architecture:
        return None
    return (f"the exported checkpoint scans as {rescan.layout.value} ({rescan.head.architecture}), not as "
            f"{architecture} loadable by transformers as it is; nothing written")
