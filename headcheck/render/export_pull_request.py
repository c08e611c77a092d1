"""Description of the pull request `migrate --to transformers --create-pr` opens: which transformers class the
repository becomes, what was merged and left out, what was checked, how to load it without adapters."""

from __future__ import annotations

from .migration import render_comparison
from .pull_request import (files_line, findings_table, found_lines, loading_lines, notes_lines, renamed_lines,
                           repo_argument)

# the Auto class that picks the exported class from its config.json, by the head type its rescan names
AUTO_CLASSES = {
    "classification": "AutoModelForSequenceClassification",
    "multilabel_classification": "AutoModelForSequenceClassification",
    "tagging": "AutoModelForTokenClassification",
    "question_answering": "AutoModelForQuestionAnswering",
    "multiple_choice": "AutoModelForMultipleChoice",
    "masked_lm": "AutoModelForMaskedLM",
    "causal_lm": "AutoModelForCausalLM",
    "seq2seq_lm": "AutoModelForSeq2SeqLM",
    "image_classification": "AutoModelForImageClassification",
}
MERGE_NAMES = {"lora": "LoRA", "ia3": "(IA)^3"}


def render_export_description(hub, changes) -> str:
    report, result, repo = hub.report, hub.result, hub.repo
    export, migration = report.export("transformers"), result.migration
    rescanned = result.rescan.export("transformers")
    lines = found_lines(repo, f"**{report.verdict.value}**, a {report.head.type} head (`{report.head.architecture}`) "
                              "that loads only with `adapters`, which pins transformers 4.57. `exports.transformers` "
                              f"is **{export.verdict.value}** as `{migration.export}`: after this pull request the "
                              "repository loads with transformers alone (4.x or 5.x), without adapters.")
    lines += notes_lines(export)
    lines += findings_table(report)
    lines += ["## What the export did", "", f"- class `{report.head.architecture}` → `{migration.export}`, "
              f"head `{export.head_name}`", *_onto_base(migration), *_merged(migration, export.adapter),
              *_tensors(migration),
              _config_line(migration), files_line(changes)]
    lines += ["", "## What was checked", "",
              "- every written tensor compared byte for byte with the original"
              + (", a computed one (merged) with the bytes computed from its sources"
                 if any(o.computed for o in migration.outputs) else "") + f" ({result.tensors_checked} tensors)",
              f"- the result scanned again: transformers loads it as it is "
              f"({rescanned.verdict.value} `{rescanned.architecture}`)"]
    lines.append(f"- the adapters model and the export loaded and run on the same inputs: "
                 f"{render_comparison(result.comparison)}" if result.comparison is not None else
                 "- outputs not compared in this run (`headcheck migrate ... --to transformers --verify` loads the "
                 "original with adapters and the export with transformers, and compares logits and loss)")
    where = repo_argument(repo)
    auto = AUTO_CLASSES.get(result.rescan.head.type, "AutoModel")  # the written class's own head, rescanned
    lines += loading_lines(["import transformers  # 4.x or 5.x: adapters not needed", "",
                            f"model = transformers.{auto}.from_pretrained({where})",
                            f"# or the class itself: transformers.{migration.export}.from_pretrained({where})"])
    return "\n".join(lines) + "\n"


def _onto_base(migration) -> list[str]:
    if migration.root is None:
        return []
    return ["- an adapter repository becomes a full model: the base model's weights (the `--base` folder) are "
            "written with the adapter merged into them, and the adapter's own files are deleted"]


def _merged(migration, adapter: str | None) -> list[str]:
    computed = [c for o in migration.outputs for c in o.computed]
    merged = [c for c in computed if c.kind in MERGE_NAMES]
    lines = []
    if merged:
        lines.append(f"- adapter `{adapter}` ({MERGE_NAMES[merged[0].kind]}) merged into {len(merged)} base "
                     "weights (float32 arithmetic, stored in the checkpoint's dtype)")
    lines += [f"- `{c.target}` computed: the head's input scale ({c.scaling:.6g}) the AdapterModel applied, folded in"
              for c in computed if c.kind == "scale"]
    return lines


def _tensors(migration) -> list[str]:
    moves = [m for o in migration.outputs for m in o.moves]
    renames = [m for m in moves if m.target != m.source.name]
    lines = [f"- {len(renames)} tensors renamed, {len(moves) - len(renames)} kept under their names"
             + (":" if renames else "")]
    lines += renamed_lines([(m.source.name, m.target) for m in renames])
    lines += [f"- added `{a.target}` {list(a.shape)} as zeros ({a.reason})" for o in migration.outputs for a in o.added]
    merged_away = [name for name, why in migration.dropped if why.startswith("merged into")]
    if merged_away:
        lines.append(f"- {len(merged_away)} adapter tensors merged away (no longer in the checkpoint)")
    lines += [f"- not carried over: `{name}` ({why})" for name, why in migration.dropped
              if not why.startswith("merged into")]
    return lines


def _config_line(migration) -> str:
    config = migration.configs.get("config.json", {})
    line = f"- `config.json`: `architectures` [`{migration.export}`]"
    line += "".join(f", `{key}` set" for key in ("id2label", "problem_type") if key in config)
    removed = ", ".join(f"`{key}`" for key in migration.removed_keys)
    return line + (f"; {removed} removed (only adapters reads them)" if removed else "")
