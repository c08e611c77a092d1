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
def scan(target: Path, fmt: str, fail_on: str, head_type: str | None) -> None:
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
    threshold = FAIL_ON[fail_on]
    worst = report.worst()
    failed = threshold is not None and worst is not None and worst >= threshold
    sys.exit(ExitCode.FINDINGS if failed else ExitCode.OK)


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
