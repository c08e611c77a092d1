"""Description of the pull request `migrate --to peft --create-pr` opens: the adapter repository becomes a PEFT
adapter of its base model; what was written and checked, and how to load it without adapters."""

from __future__ import annotations

from ..judge.export_peft import load_line
from .pull_request import (LISTED, files_line, findings_table, found_lines, loading_lines, notes_lines,
                           renamed_lines, repo_argument)


def render_peft_description(hub, changes) -> str:
    report, result, repo = hub.report, hub.result, hub.repo
    export, migration = report.export("peft"), result.migration
    config = migration.configs["adapter_config.json"]
    base = config["base_model_name_or_path"]
    lines = found_lines(repo, f"an adapters adapter `{export.adapter}` for `{base}` that loads only with `adapters`, "
                              f"which pins transformers 4.57. `exports.peft` is **{export.verdict.value}** onto "
                              f"`{migration.export}`: after this pull request the repository is a PEFT adapter, which "
                              "PEFT loads onto the plain base model (transformers 4.x or 5.x), without adapters.")
    lines += notes_lines(export)
    lines += findings_table(report)
    moves = [m for o in migration.outputs for m in o.moves]
    computed = [c for o in migration.outputs for c in o.computed]
    lines += ["## What the export did", "",
              f"- `{config['peft_type']}` adapter, task type `{config['task_type']}`, `r` {config.get('r', '-')}, "
              f"`lora_alpha` {config.get('lora_alpha', '-')}, target modules {_names(config['target_modules'])}"
              + (f", layers {config['layers_to_transform']}" if config.get("layers_to_transform") else ""),
              f"- {len(moves)} tensors renamed to PEFT's names" + (":" if moves else ""),
              *renamed_lines([(m.source.name, m.target) for m in moves]),
              *(f"- `{c.target}` computed: {c.summary}" for c in computed),
              *([f"- the head saved as the task model's own modules: {_names(config['modules_to_save'])}"]
                if config.get("modules_to_save") else []),
              files_line(changes)]
    lines += ["", "## What was checked", "",
              "- every written tensor compared byte for byte with the original"
              + (", a computed one with the bytes computed from its source" if computed else "")
              + f" ({result.tensors_checked} tensors)",
              f"- the result scanned again: a PEFT adapter ({result.rescan.export('peft').verdict.value})",
              "- headcheck's tests load exports of each supported shape with `PeftModel.from_pretrained` under "
              "transformers 4.57 and 5.24 and compare logits and loss with the adapters model"]
    where = repo_argument(repo)
    lines += loading_lines(["# transformers 4.x or 5.x: adapters not needed",
                            f"from transformers import {migration.export}", "from peft import PeftModel", "",
                            "model = " + load_line(export, f'"{base}"', where)])
    return "\n".join(lines) + "\n"


def _names(names) -> str:
    shown = ", ".join(f"`{n}`" for n in list(names)[:LISTED])
    return shown + (f" and {len(names) - LISTED} more" if len(names) > LISTED else "")

