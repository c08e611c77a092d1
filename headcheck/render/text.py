"""Human-readable report; colour only when asked (the CLI asks on a terminal without NO_COLOR)."""

from __future__ import annotations

from collections.abc import Sequence

import click

from ..model import Export, ExportVerdict, Finding, Report, Severity, Verdict

VERDICT_COLORS = {
    Verdict.CONVERTIBLE: "green",
    Verdict.ALREADY_FLEX: "green",
    Verdict.NO_HEAD: "cyan",
    Verdict.AMBIGUOUS: "yellow",
    Verdict.NOT_CONVERTIBLE: "red",
}
SEVERITY_COLORS = {Severity.ERROR: "red", Severity.WARNING: "yellow", Severity.INFO: "blue"}


def _style(text: str, fg: str, color: bool, bold: bool = False) -> str:
    return click.style(text, fg=fg, bold=bold) if color else text


def render_verdict(report: Report, color: bool = False) -> str:
    """The first line of a report: the checkpoint and its verdict (all that `scan --quiet` prints)."""
    return f"{report.source}: {_style(report.verdict.value, VERDICT_COLORS[report.verdict], color, bold=True)}"


def ignored_note(ignored: Sequence[Finding]) -> str:
    """`2 findings ignored (config pyproject.toml: HC103, HC114)`: how many, by what, which rules."""
    origins = list(dict.fromkeys("--ignore" if f.ignored.config is None else f"config {f.ignored.config}"
                                 for f in ignored if f.ignored is not None))
    rules = ", ".join(dict.fromkeys(f.rule for f in ignored))
    return f"{len(ignored)} finding{'' if len(ignored) == 1 else 's'} ignored ({', '.join(origins)}: {rules})"


def render_text(report: Report, color: bool = False) -> str:
    def style(text: str, fg: str, bold: bool = False) -> str:
        return _style(text, fg, color, bold)

    head = report.head
    lines = [render_verdict(report, color)]
    lines.append(f"  kind      {report.kind.value} ({report.layout.value}), model_type {report.model_type or '-'}")
    described = head.type
    if head.problem_type:
        described += f", {head.problem_type}"
    if head.num_labels is not None:
        described += f", {head.num_labels} label{'s' if head.num_labels != 1 else ''}"
    if head.candidates:
        described += f" (fits: {', '.join(head.candidates)})"
    lines.append(f"  head      {described}" + (f"  [{head.architecture}]" if head.architecture else ""))
    for item in head.evidence:
        lines.append(f"            - {item}")
    for f in report.counted():
        where = f" ({f.file})" if f.file else ""
        lines.append(f"  {style(f'{f.rule} {f.severity}', SEVERITY_COLORS[f.severity])}{where}: {f.message}")
        if f.hint:
            lines.append(f"            hint: {f.hint}")
    if ignored := report.ignored():
        lines.append(f"  {ignored_note(ignored)}")
    if report.plan is not None:
        plan = report.plan
        lines.append(f"  plan      {plan.adapter_model_class}, head {plan.head_name!r} "
                     f"({plan.head_config.get('head_type')}), {len(plan.renames)} tensor renames"
                     + (f", {len(plan.config_changes)} config keys written for transformers 4.57"
                        if plan.config_changes else "")
                     + (f", {len(plan.copies)} tensor copies" if plan.copies else ""))
    lines.extend(_export_line(export) for export in report.exports)
    return "\n".join(lines)


def _export_line(export: Export) -> str:
    """`export    transformers: exportable as BertForSequenceClassification (head 'sst')`: one line per target,
    then each reason it is refused. A PEFT export is an adapter loaded onto the class, not the class itself."""
    line = f"  export    {export.target}: {export.verdict.value}"
    peft = export.target == "peft"
    if export.architecture:
        line += (f" {'onto' if peft else 'as'} {export.architecture}" if export.verdict is ExportVerdict.EXPORTABLE
                 else f" ({export.architecture})")
    parts = [f"head {export.head_name!r}"] if export.head_name else []
    parts += [f"adapter {export.adapter!r}" + ("" if peft else " merged")] if export.adapter else []
    line += f" ({', '.join(parts)})" if parts else ""
    reasons = [f"            {f.rule}: {f.message}" for f in export.findings]
    reasons += [f"            - {note}" for note in export.notes]
    return "\n".join([line, *reasons])
