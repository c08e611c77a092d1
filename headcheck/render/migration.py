"""Output of `headcheck migrate`: the plan (dry run, --verbose), a summary of what was written and checked,
and the same as JSON for scripts."""

from __future__ import annotations

import json
from typing import Any

from ..model import SCHEMA_VERSION
from ..read.json_text import dump_json

# the keys migrate sets in a config file; the dry-run preview shows these (every other key is kept as it was)
CHANGED_KEYS = ("architectures", "adapters", "prediction_heads", "model_class", "config", "name")
EXPORT_KEYS = ("id2label", "label2id", "problem_type")  # what an export sets besides architectures


def render_migration(report, migration, result, *, verbose: bool = False, written_to: str | None = None) -> str:
    """The plan in full when this is a dry run (result None) or `verbose`, else one line of counts;
    then, for a real run, the verify figures and what was written (`written_to`: how to name the output
    folder, default its path)."""
    target = report.plan.adapter_model_class if report.plan else "already flex: a checked copy, nothing rewritten"
    if migration.target == "peft":
        target = f"a PEFT adapter of {migration.export}"
    elif migration.target == "transformers":
        target = (f"{migration.export} (plain transformers)" if migration.outputs
                  else f"already {migration.export}: a checked copy, nothing rewritten")
    problem = f", {report.head.problem_type}" if report.head.problem_type == "regression" else ""
    head = "no head" if report.head.type == "none" else f"{report.head.type} head{problem}"
    lines = [f"{report.source}: {head} ({report.head.architecture}) -> {target}"]
    if migration.base is not None:
        lines.append(f"  on base model {_base_text(migration.base)}")
    set_keys = tuple(c.key for c in report.plan.config_changes) if report.plan else ()
    set_keys += EXPORT_KEYS if migration.target == "transformers" else ()
    lines += _plan_lines(migration, set_keys) if result is None or verbose else [f"  {_counts(migration)}"]
    if result is None:
        lines.append("dry run: nothing written")
        return "\n".join(lines)
    if result.comparison is not None:
        lines.append(render_comparison(result.comparison))
    if result.replaced_entries:
        lines.append(f"replaced the previous {result.out} ({result.replaced_entries} entries, --force)")
    checked = [f"{result.tensors_checked} tensors"] if migration.outputs else []
    checked += [f"{result.files_checked} copied file{'s' if result.files_checked != 1 else ''}"] if result.files_checked else []
    rescan = result.rescan.verdict.value
    if migration.target != "flex":  # an export is judged by where it runs: transformers (or PEFT), as it is
        export = result.rescan.export(migration.target)
        rescan = f"{migration.target} {export.verdict.value}" + (f" {export.architecture}" if export.architecture else "")
    lines.append(f"wrote {written_to or result.out}: {' and '.join(checked) or 'nothing'} byte-checked against the "
                 f"source, rescan: {rescan}")
    return "\n".join(lines)


def _base_text(base) -> str:
    return f"{base.name} (Hub, commit {base.revision[:12]})" if base.revision else str(base.folder)


def render_comparison(c) -> str:
    line = (f"verify: max |logits diff| {c.max_logits_diff:.3g}, |loss diff| {c.loss_diff:.3g} "
            f"(tolerance {c.tolerance:.2g}); missing keys {len(c.missing_keys)}, unexpected keys {len(c.unexpected_keys)}")
    rewritten = getattr(c, "rewritten", ())
    return line + (f"; the original loaded with {', '.join(rewritten)} as migrate writes them for transformers 4.57"
                   if rewritten else "")


def migration_dict(report, migration, result) -> dict[str, Any]:
    """`migrate --format json`: the result for scripts."""
    comparison = result.comparison if result is not None else None
    return {
        "schema_version": SCHEMA_VERSION,
        "source": report.source,
        "verdict": report.verdict.value,
        "to": migration.target,
        "architecture": migration.export,  # the transformers class an export declares or loads onto (null into flex)
        "out": str(result.out) if result is not None else None,
        "adapter_model_class": report.plan.adapter_model_class if report.plan else None,
        "head_name": report.plan.head_name if report.plan else report.head.name,
        "tensors_checked": result.tensors_checked if result is not None else 0,
        "files_checked": result.files_checked if result is not None else 0,
        "rescan_verdict": result.rescan.verdict.value if result is not None else None,
        # the written checkpoint's export verdict for the target (a flex result: its way to transformers)
        "rescan_export": (result.rescan.export("transformers" if migration.target == "flex" else migration.target)
                          .to_dict() if result is not None and result.rescan.exports else None),
        "renames": [{"file": o.name, "source": m.source.name, "target": m.target}
                    for o in migration.outputs for m in o.moves if m.target != m.source.name],
        "copies": [{"file": o.name, "source": m.source.name, "target": m.target}
                   for o in migration.outputs for m in o.moves if m.copy],
        "config_changes": [{"key": c.key, "old": c.old, "new": c.new}
                           for c in (report.plan.config_changes if report.plan else ())],
        "kept": sum(m.target == m.source.name for o in migration.outputs for m in o.moves),
        "added": [{"file": o.name, "target": a.target, "shape": list(a.shape), "reason": a.reason}
                  for o in migration.outputs for a in o.added],
        "computed": [{"file": o.name, "target": c.target, "shape": list(c.shape), "from": c.summary}
                     for o in migration.outputs for c in o.computed],
        "dropped": [{"tensor": name, "reason": why} for name, why in migration.dropped],
        "configs": sorted(migration.configs),
        # an adapter folder's export: the base model it was built on (a Hub base: its commit, and the folder of
        # links into the HF cache that was read)
        "base": None if migration.base is None else {"name": migration.base.name, "revision": migration.base.revision,
                                                      "folder": str(migration.base.folder)},
        "comparison": None if comparison is None else {  # MigrateResult.comparison, the API's name
            "max_logits_diff": comparison.max_logits_diff, "loss_diff": comparison.loss_diff,
            "tolerance": comparison.tolerance, "missing_keys": list(comparison.missing_keys),
            "unexpected_keys": list(comparison.unexpected_keys), "ok": comparison.ok,
            "rewritten": list(comparison.rewritten)},
    }


def render_migration_json(report, migration, result) -> str:
    return dump_json(migration_dict(report, migration, result), indent=2)


def _counts(migration) -> str:
    if not (migration.outputs or migration.configs):
        return "nothing to rewrite: every file copied as it is"
    moves = [m for o in migration.outputs for m in o.moves]
    renamed = sum(m.target != m.source.name for m in moves)
    added = sum(len(o.added) for o in migration.outputs)
    parts = [f"{renamed} tensors renamed", f"{len(moves) - renamed} kept"]
    parts += [f"{added} added as zeros"] if added else []
    parts += [f"{len(migration.dropped)} dropped"] if migration.dropped else []
    parts += [f"{', '.join(sorted(migration.configs))} rewritten"] if migration.configs else []
    return "; ".join(parts) + " (the whole plan: --dry-run or --verbose)"


def _plan_lines(migration, set_keys: tuple[str, ...] = ()) -> list[str]:
    """SET_KEYS: config keys the plan writes for transformers 4.57 (HC133), shown with the keys migrate sets."""
    lines = []
    for output in migration.outputs:
        lines.append(f"  {output.name}:")
        for move in output.moves:
            if move.copy:
                lines.append(f"    copy   {move.source.name} -> {move.target}")
            elif move.target != move.source.name:
                lines.append(f"    rename {move.source.name} -> {move.target}")
        kept = sum(1 for m in output.moves if m.target == m.source.name)
        if kept:
            lines.append(f"    keep   {kept} tensors under their names")
        for added in output.added:
            lines.append(f"    add    {added.target} {list(added.shape)} zeros ({added.reason})")
        for computed in output.computed:
            lines.append(f"    compute {computed.target} {list(computed.shape)} ({computed.summary})")
    for name, why in migration.dropped:
        lines.append(f"  drop   {name} ({why})")
    for name, content in migration.configs.items():
        # a PEFT export's adapter_config.json is new as a whole; the other configs keep most of their keys
        shown = dict(content) if migration.target == "peft" else {
            k: content[k] for k in (*CHANGED_KEYS, *set_keys) if k in content}
        hidden = len(content) - len(shown)
        lines.append(f"  write  {name}" + (f" (the keys migrate sets; {hidden} other keys kept as they were):"
                                           if hidden else ":"))
        lines.extend("    " + line for line in json.dumps(shown, indent=2).splitlines())
    return lines
