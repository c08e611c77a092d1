"""Title and Markdown description of the pull request `migrate --create-pr` opens: what was found, what the
migration did, what was checked, how to load the result."""

from __future__ import annotations

import json

from ..version import __version__
from .migration import migration_dict, render_comparison

TITLE_PREFIX = "headcheck:"  # every pull request headcheck opens starts with it
LISTED = 12  # renames and zero-filled tensors listed one by one; the rest are counted
TRY_IT = "Before merging, pass `revision=\"refs/pr/N\"` (N: this pull request's number) to try it."
FOOTER = ("", "---", f"Opened by headcheck {__version__}; the checks above ran before anything was committed.")


def render_title(hub, *, new_repo: bool = False) -> str:
    """The commit's title; a pull request's names the scanned commit and the target, which is how a second run
    finds it (the flex and the transformers pull requests of one commit are two)."""
    migration = hub.result.migration
    export = migration.export
    if new_repo:
        return f"{TITLE_PREFIX} {hub.repo.label} " + {
            "transformers": f"exported to transformers as {export}",
            "peft": f"exported as a PEFT adapter of {export}",
            "flex": "migrated to the adapters flex-head layout"}[migration.target]
    what = {"transformers": f"export to transformers as {export}, loadable without adapters",
            "peft": f"export as a PEFT adapter of {export}, loadable without adapters",
            "flex": f"convert the {hub.report.head.type} head to the adapters flex-head layout"}[migration.target]
    return f"{TITLE_PREFIX} {what} ({hub.repo.revision}@{hub.repo.sha[:12]})"


def render_description(hub, changes) -> str:
    if hub.result.migration.target == "transformers":
        from .export_pull_request import render_export_description

        return render_export_description(hub, changes)
    if hub.result.migration.target == "peft":
        from .peft_pull_request import render_peft_description

        return render_peft_description(hub, changes)
    report, result, repo = hub.report, hub.result, hub.repo
    plan = migration_dict(report, result.migration, result)
    head = report.head
    labels = f", {head.num_labels} label{'s' if head.num_labels != 1 else ''}" if head.num_labels else ""
    lines = found_lines(repo, f"**{report.verdict.value}**, a {head.type} head (`{head.architecture}`{labels}) that "
                              "the adapters flex-head loaders (`AutoAdapterModel`, `load_adapter`, hosted inference) "
                              "cannot use as it is saved.")
    lines += findings_table(report)
    lines += ["## What the migration did", "",
              f"- class `{head.architecture}` → `{plan['adapter_model_class']}`, head `{plan['head_name']}`"]
    renames = plan["renames"]
    lines.append(f"- {len(renames)} tensors renamed, {plan['kept']} kept under their names"
                 + (":" if renames else ""))
    lines += renamed_lines([(r["source"], r["target"]) for r in renames])
    for added in plan["added"][:LISTED]:
        lines.append(f"- added `{added['target']}` {added['shape']} as zeros ({added['reason']})")
    for dropped in plan["dropped"]:
        lines.append(f"- not carried over: `{dropped['tensor']}` ({dropped['reason']})")
    lines.append(files_line(changes))
    head_configs = [c.get("config") or (c.get("prediction_heads") or {}).get(plan["head_name"])
                    for c in result.migration.configs.values()]
    if head_config := next(filter(None, head_configs), None):
        lines += ["- the head config adapters reads:", "", "```json", json.dumps(head_config, indent=2), "```"]
    lines += ["", "## What was checked", "",
              f"- every written tensor compared byte for byte with the original ({result.tensors_checked} tensors)",
              f"- the result scanned again: {result.rescan.verdict.value}"]
    if result.comparison is not None:
        lines.append(f"- original and result loaded and run on the same inputs: {render_comparison(result.comparison)}")
    else:
        lines.append("- outputs not compared in this run (`headcheck migrate ... --verify` loads both and compares "
                     "logits and loss)")
    where = repo_argument(repo)
    load = (f"model = AutoAdapterModel.from_pretrained({where})" if report.kind.value == "full-model" else
            f"model = AutoAdapterModel.from_pretrained(BASE_MODEL)\nmodel.load_adapter({where}, set_active=True)")
    lines += loading_lines(["from adapters import AutoAdapterModel", "", load])
    return "\n".join(lines) + "\n"


def found_lines(repo, what: str) -> list[str]:
    """The description's opening: the scanned repository and commit, then what headcheck found there."""
    return ["## What headcheck found", "", f"`{repo.label}` at commit `{repo.sha[:12]}`: {what}", ""]


def renamed_lines(renames: list[tuple[str, str]]) -> list[str]:
    """Sub-items `source` → `target` for the first LISTED renames, and how many more there are."""
    return ([f"  - `{source}` → `{target}`" for source, target in renames[:LISTED]]
            + ([f"  - and {len(renames) - LISTED} more"] if len(renames) > LISTED else []))


def loading_lines(code: list[str]) -> list[str]:
    """The closing section: how to load the result (Python), how to try it before merging, who opened it."""
    return ["", "## Loading the result", "", "```python", *code, "```", "", TRY_IT, *FOOTER]


def findings_table(report) -> list[str]:
    if not report.findings:
        return []
    return ["| rule | severity | message |", "|---|---|---|",
            *(f"| {f.rule} | {f.severity} | {_cell(f.message)} |" for f in report.findings), ""]


def repo_argument(repo) -> str:
    """The repository as from_pretrained's arguments: its id, and its subfolder where the checkpoint is in one."""
    return f'"{repo.repo_id}"' + (f', subfolder="{repo.subfolder}"' if repo.subfolder else "")


def notes_lines(export) -> list[str]:
    """An export verdict's notes (what it assumes, how to load it), as a list with a blank line after."""
    return [*(f"- {note}" for note in export.notes), ""] if export.notes else []


def files_line(changes) -> str:
    return "- files: " + ", ".join(f"{c.action} `{c.path}`" + (f" ({_size(c.size)})" if c.size else "")
                                   for c in changes)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _size(size: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")
