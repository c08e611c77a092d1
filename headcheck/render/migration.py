"""Text for `headcheck migrate`: the plan (dry run) or what was written and checked."""

from __future__ import annotations

import json


def render_migration(report, migration, result) -> str:
    target = report.plan.adapter_model_class if report.plan else "already flex: a checked copy, nothing rewritten"
    lines = [f"{report.source}: {report.head.type} head ({report.head.architecture}) -> {target}"]
    for output in migration.outputs:
        lines.append(f"  {output.name}:")
        for move in output.moves:
            if move.target != move.source.name:
                lines.append(f"    rename {move.source.name} -> {move.target}")
        kept = sum(1 for m in output.moves if m.target == m.source.name)
        if kept:
            lines.append(f"    keep   {kept} tensors under their names")
        for added in output.added:
            lines.append(f"    add    {added.target} {list(added.shape)} zeros ({added.reason})")
    for name, why in migration.dropped:
        lines.append(f"  drop   {name} ({why})")
    for name, content in migration.configs.items():
        lines.append(f"  write  {name}:")
        shown = {k: content[k] for k in ("architectures", "model_class", "prediction_heads", "config", "name") if k in content}
        lines.extend("    " + line for line in json.dumps(shown, indent=2).splitlines())
    if result is None:
        lines.append("dry run: nothing written")
    else:
        if result.replaced_entries:
            lines.append(f"replaced the previous {result.out} ({result.replaced_entries} entries, --force)")
        lines.append(f"wrote {result.out}: {result.tensors_checked} tensors byte-checked against the source, "
                     f"rescan: {result.rescan.verdict.value}")
    return "\n".join(lines)
