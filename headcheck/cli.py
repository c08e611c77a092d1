"""Thin command line: parse flags, call the library, render, map the outcome to an exit code."""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import click

from . import __version__, ruledata
from .errors import InputError, NothingScannedError
from .exitcodes import ExitCode
from .model import Severity
from .render import RENDERERS

HEAD_TYPES = ["classification", "multilabel_classification", "tagging", "question_answering", "multiple_choice",
              "masked_lm", "causal_lm", "seq2seq_lm", "image_classification"]
FAIL_ON = {"error": Severity.ERROR, "warning": Severity.WARNING, "never": None}


def _use_color(stream) -> bool:
    return stream.isatty() and "NO_COLOR" not in os.environ


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="headcheck")
def cli() -> None:
    """Check adapter/transformers checkpoints before you push them.

    headcheck reads config files and weight headers (never the weights), classifies the prediction
    head, and says whether it can become an adapters flex head.

    \b
    Exit codes: 0 nothing wrong, 1 findings at or above --fail-on,
    2 input unreadable, 3 nothing recognisable scanned, 4 usage error.
    """


@cli.command()
@click.argument("target", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(sorted(RENDERERS)), default="text", show_default=True,
              help="Report format.")
@click.option("--fail-on", type=click.Choice(list(FAIL_ON)), default="error", show_default=True,
              help="Lowest finding severity that makes the exit code 1.")
@click.option("--head-type", type=click.Choice(HEAD_TYPES),
              help="Decide the head type when the weights fit several (verdict 'ambiguous').")
@click.option("--summary", type=click.Path(path_type=Path, dir_okay=False, writable=True),
              help="Also append a Markdown summary to this file (e.g. \"$GITHUB_STEP_SUMMARY\").")
def scan(target: Path, fmt: str, fail_on: str, head_type: str | None, summary: Path | None) -> None:
    """Classify the head of TARGET (a checkpoint folder or a single config/weights file) and judge it.

    \b
    Verdicts: convertible, already-flex, no-head, ambiguous, not-convertible.
    """
    from .engine import scan_path

    try:
        report = scan_path(target, head_type=head_type)
    except InputError as exc:
        click.echo(f"headcheck: error: {exc}", err=True)
        sys.exit(ExitCode.INPUT_ERROR)
    except NothingScannedError as exc:
        click.echo(f"headcheck: nothing scanned: {exc}", err=True)
        sys.exit(ExitCode.NOTHING_SCANNED)
    click.echo(RENDERERS[fmt](report, color=fmt == "text" and _use_color(sys.stdout)))
    if summary is not None:  # appended, as GitHub's $GITHUB_STEP_SUMMARY expects
        from .render.summary import render_summary

        with summary.open("a", encoding="utf-8") as out:
            out.write(render_summary([report]) + "\n")
    threshold = FAIL_ON[fail_on]
    worst = report.worst()
    failed = threshold is not None and worst is not None and worst >= threshold
    sys.exit(ExitCode.FINDINGS if failed else ExitCode.OK)


@cli.command()
@click.argument("source", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--out", "out", type=click.Path(path_type=Path), required=True,
              help="Folder to write the flex-head checkpoint to; must not exist or be empty unless --force.")
@click.option("--head-name", default=None, help="Name of the flex head (default: 'default'; for adapter folders the adapter's name).")
@click.option("--head-type", type=click.Choice(HEAD_TYPES), help="Decide the head type when scan says 'ambiguous'.")
@click.option("--num-choices", type=click.IntRange(min=2), help="Choices per example for multiple-choice heads (not recorded in checkpoints).")
@click.option("--force", is_flag=True, help="Replace --out even if it is not empty.")
@click.option("--dry-run", is_flag=True, help="Print the plan (renames, dropped and added tensors, new config) and write nothing.")
@click.option("--verify", is_flag=True, help="Also load original and result with transformers/adapters and compare outputs and loss (needs the 'verify' extra).")
def migrate(source: Path, out: Path, head_name, head_type, num_choices, force, dry_run, verify) -> None:
    """Rewrite the checkpoint in SOURCE into the adapters flex-head layout, in --out.

    Only checkpoints that `headcheck scan` calls convertible are migrated; anything else is refused
    with the same findings (exit code 1) and nothing is written. The input is never modified; the
    output appears only once complete and checked: every tensor's bytes are compared with the
    source and the result must scan as already-flex.
    """
    from . import migrate as migration
    from .render.migration import render_migration

    options = dict(head_name=head_name, head_type=head_type, num_choices=num_choices)
    try:
        if dry_run:
            report, plan = migration.prepare(source, **options)
            click.echo(render_migration(report, plan, None))
            return
        with _progress_bar() as on_bytes:
            result = migration.migrate(source, out, force=force, on_bytes=on_bytes, **options)
    except migration.NotConvertibleError as exc:
        click.echo(RENDERERS["text"](exc.report, color=_use_color(sys.stderr)), err=True)
        click.echo(f"headcheck: not migrated: verdict is {exc.report.verdict.value}; nothing written", err=True)
        sys.exit(ExitCode.FINDINGS)
    except migration.OutputExistsError as exc:
        raise click.UsageError(str(exc)) from None
    except (InputError, migration.MigrationError) as exc:
        click.echo(f"headcheck: error: {exc}", err=True)
        sys.exit(ExitCode.INPUT_ERROR)
    except NothingScannedError as exc:
        click.echo(f"headcheck: nothing scanned: {exc}", err=True)
        sys.exit(ExitCode.NOTHING_SCANNED)
    click.echo(render_migration(result.report, result.migration, result))
    if verify:
        _verify(source, result.out)


def _verify(source: Path, out: Path) -> None:
    try:
        from .verify import compare
    except ImportError as exc:
        raise click.UsageError(f"--verify needs the heavy extra: pip install 'headcheck[verify]' ({exc})") from None
    comparison = compare(source, out)
    click.echo(f"verify: max |logits diff| {comparison.max_logits_diff:.3g}, |loss diff| {comparison.loss_diff:.3g} "
               f"(tolerance {comparison.tolerance:g})")
    if not comparison.ok:
        click.echo("headcheck: error: outputs differ beyond tolerance", err=True)
        sys.exit(ExitCode.FINDINGS)


class _progress_bar:
    """A byte-count bar on stderr, only on a terminal (tqdm comes with huggingface_hub)."""

    def __enter__(self):
        if not sys.stderr.isatty():
            self.bar = None
            return None
        from tqdm import tqdm

        self.bar = tqdm(unit="B", unit_scale=True, desc="writing", file=sys.stderr, leave=False)
        return self.bar.update

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.close()


@cli.command()
@click.argument("code", required=False)
def rule(code: str | None) -> None:
    """Explain rule CODE (e.g. HC101 or custom-head-weights); without CODE, list all rules."""
    if code is None:
        for r in ruledata.registry().values():
            click.echo(f"{r.code}  {r.name:<30} {str(r.severity):<8} {r.summary}")
        return
    found = ruledata.lookup(code)
    if found is None:
        raise click.UsageError(f"unknown rule {code!r}; run `headcheck rule` for the list")
    click.echo(f"{found.code} {found.name} ({found.severity})\n\n{found.summary}")
    for key, title in ruledata.EXPLANATION_SECTIONS.items():
        click.echo(f"\n## {title}\n" + textwrap.fill(found.explanation[key], width=100))


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:  # usage errors get the contract's code, not click's 2
        exc.show()
        sys.exit(ExitCode.USAGE)
    except ruledata.RuleDataError as exc:
        click.echo(f"headcheck: broken rule data: {exc}", err=True)
        sys.exit(ExitCode.INPUT_ERROR)
