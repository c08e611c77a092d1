"""Thin command line: parse flags, call the library, render, map the outcome to an exit code."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..version import __version__
from ..judge import ruledata
from ..model import EXPORT_TARGETS
from ..errors import ConfigError, InputError, MergeUnavailableError, NothingScannedError, PublishRefusedError
from ..read.base_model import BaseModelNameError, base_location
from ..read.local import names_hub_repo
from ..exitcodes import ExitCode
from ..render import RENDERERS, render
from .configure import TargetPolicies, config_error, config_options, say_excluded
from .hook import hook
from .options import FAIL_ON, HEAD_TYPES, fail, use_color
from .progress import progress_bar


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


@cli.command(short_help="Classify checkpoint heads and judge whether they can become flex heads.")
@click.argument("targets", nargs=-1)
@click.option("--from-file", type=click.File("r", encoding="utf-8"),
              help="Read more targets from this file, one per line ('#' starts a comment; '-' is stdin).")
@click.option("--revision", help="Hub revision (branch, tag or commit) for repo ids; same as org/name@REVISION.")
@click.option("--subfolder", help="The checkpoint's folder inside a Hub repository; same as org/name/SUBFOLDER.")
@click.option("--token", help="Hub token for private or gated repositories (default: $HF_TOKEN).")
@click.option("--jobs", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Targets scanned concurrently (useful for many Hub repositories).")
@click.option("--format", "fmt", type=click.Choice(sorted(RENDERERS)), default="text", show_default=True,
              help="Report format: text, json (JSON Lines for several targets), sarif (SARIF 2.1.0) "
                   "or github (workflow-command annotations).")
@click.option("--fail-on", type=click.Choice(list(FAIL_ON)), default=None,
              help="Lowest severity of a finding (not ignored) that makes the exit code 1 "
                   "[default: the configuration's fail-on, else error].")
@click.option("--head-type", type=click.Choice(HEAD_TYPES),
              help="Decide the head type when the weights fit several (verdict 'ambiguous').")
@click.option("-q", "--quiet", is_flag=True, help="Text format: only the verdict line of each target.")
@click.option("--summary", type=click.Path(path_type=Path, dir_okay=False, writable=True),
              help="Also append a Markdown summary to this file (e.g. \"$GITHUB_STEP_SUMMARY\").")
@config_options
def scan(targets, from_file, revision, subfolder, token, jobs, fmt, fail_on, head_type, quiet, summary,
         ignore, config_file, no_config, require_export) -> None:
    """Classify the head of each TARGET and judge whether it can become an adapters flex head.

    \b
    TARGET is a checkpoint folder, a single config/weights file, or a Hugging Face Hub
    repository id (org/name, org/name/subfolder, either @revision). Hub scans read only the JSON files and
    the weight headers (Range requests), honour HF_TOKEN, HF_ENDPOINT, HF_HUB_CACHE and
    HF_HUB_OFFLINE=1 (answer from the local cache), and are cached for offline use.
    Verdicts: convertible, already-flex, no-head, ambiguous, not-convertible.

    \b
    Configuration: [tool.headcheck] in pyproject.toml, or .headcheck.toml, found from each
    TARGET upwards (Hub ids: from the current directory); keys ignore, fail-on, exclude,
    per-path-ignores. Ignored findings stay in the report, marked ignored, and do not count
    for the exit code; excluded targets are not scanned. A malformed one: exit code 4.
    """
    from ..judge.bulk import scan_many, scan_one

    listed = [line.split("#", 1)[0].strip() for line in from_file] if from_file else []
    all_targets = [*targets, *filter(None, listed)]
    if not all_targets:
        raise click.UsageError("give at least one TARGET (folder, file or org/name) or --from-file")
    options = dict(head_type=head_type, revision=revision, token=token, subfolder=subfolder)
    try:
        configured = TargetPolicies(all_targets, config_file, no_config, ignore, fail_on, require_export)
    except ConfigError as exc:
        config_error(exc)
    excluded = {t: found for t in all_targets if (found := configured.excluded(t))}
    if len(all_targets) == 1 and from_file is None:
        if excluded:
            say_excluded(excluded[all_targets[0]], fmt)
            if fmt == "sarif":  # a valid, empty log rather than no output
                from ..render.sarif import render_sarif

                click.echo(render_sarif([]))
            sys.exit(ExitCode.OK)
        outcome = configured.apply(scan_one(all_targets[0], **options))
        _say_if_head_type_ignored(outcome.report, head_type)
        if outcome.error:
            label = "error" if outcome.exit_code == ExitCode.INPUT_ERROR else "nothing scanned"
            if fmt != "text":  # machine formats say it on stdout too, as they do for several targets
                click.echo(_errors_output(fmt, [outcome]))
            fail(f"{label}: {outcome.error}", outcome.exit_code)
        click.echo(_text_outcome(outcome, quiet) if fmt == "text" else RENDERERS[fmt](outcome.report))
        _append_summary(summary, [outcome.report])
        sys.exit(_exit_code(outcome, configured.threshold(outcome.target)))
    reports, failed, worst, counts = [], [], ExitCode.OK, {}
    for found in excluded.values():
        say_excluded(found, fmt if fmt == "json" else "text")
    to_scan = [t for t in all_targets if t not in excluded]
    with progress_bar(total=len(to_scan), unit="repo", desc="scanning") as advance:
        for outcome in map(configured.apply, scan_many(to_scan, jobs=jobs, **options)):
            advance(1)
            worst = max(worst, _exit_code(outcome, configured.threshold(outcome.target)))
            verdict = outcome.report.verdict.value if outcome.report else "error"
            counts[verdict] = counts.get(verdict, 0) + 1
            if outcome.report:
                reports.append(outcome.report)
            else:
                failed.append(outcome)
            if fmt in ("json", "text"):
                click.echo(_one_line_outcome(outcome) if fmt == "json" else _text_outcome(outcome, quiet))
    if fmt == "sarif":
        from ..render.sarif import render_sarif

        click.echo(render_sarif(reports, errors=[o.error for o in failed]))
    elif fmt == "github":
        click.echo("\n".join(filter(None, [render(fmt, reports), _errors_output(fmt, failed)])))
    _append_summary(summary, reports)
    click.echo(f"headcheck: {len(to_scan)} scanned: "
               + ", ".join(f"{verdict} {n}" for verdict, n in sorted(counts.items()) if verdict != "excluded")
               + (f"; {len(excluded)} excluded by the configuration" if excluded else ""), err=True)
    sys.exit(worst)


def _say_if_head_type_ignored(report, head_type: str | None) -> None:
    if report is not None and head_type and report.head.type != head_type:
        click.echo(f"headcheck: --head-type {head_type} ignored: the checkpoint itself says {report.head.type}",
                   err=True)


def _exit_code(outcome, threshold) -> ExitCode:
    if outcome.error:
        return outcome.exit_code
    worst = outcome.report.worst()
    return ExitCode.FINDINGS if threshold is not None and worst is not None and worst >= threshold else ExitCode.OK


def _one_line_outcome(outcome) -> str:
    """JSON Lines: a report, or for a target that could not be scanned an error record."""
    from ..read.json_text import dump_json
    from ..render.json_report import error_record

    if outcome.report:
        return dump_json(outcome.report.to_dict())
    return dump_json(error_record(outcome.target, outcome.error, outcome.exit_code))


def _errors_output(fmt: str, failed) -> str:
    """Targets that could not be scanned, in a machine format: JSON error records, a SARIF run whose
    execution failed, or error annotations."""
    if fmt == "json":
        return "\n".join(_one_line_outcome(outcome) for outcome in failed)
    if fmt == "sarif":
        from ..render.sarif import render_sarif

        return render_sarif([], errors=[o.error for o in failed])
    from ..render.github import render_github_errors

    return render_github_errors([o.error for o in failed])


def _text_outcome(outcome, quiet: bool = False) -> str:
    from ..render.text import render_verdict

    if outcome.report:
        return (render_verdict if quiet else RENDERERS["text"])(outcome.report, color=use_color(sys.stdout))
    return f"headcheck: error: {outcome.error}"  # the error names the target


def _append_summary(summary: Path | None, reports) -> None:
    if summary is None:
        return
    from ..render.summary import render_summary

    # appended, as GitHub's $GITHUB_STEP_SUMMARY expects; a lone surrogate in a name is written escaped
    with summary.open("a", encoding="utf-8", errors="backslashreplace") as out:
        out.write(render_summary(reports) + "\n")


@cli.command(short_help="Rewrite a convertible checkpoint into the flex-head layout (locally or as a Hub PR).")
@click.argument("source")
@click.option("--out", "out", type=click.Path(path_type=Path),
              help="Folder to write the flex-head checkpoint to; must not exist or be empty unless --force "
                   "(optional with --create-pr and --push-to: then a temporary folder).")
@click.option("--head-name", default=None, help="Name of the flex head (default: 'default'; for adapter folders the adapter's name).")
@click.option("--head-type", type=click.Choice(HEAD_TYPES), help="Decide the head type when scan says 'ambiguous'.")
@click.option("--num-choices", type=click.IntRange(min=2), help="Choices per example for multiple-choice heads (not recorded in checkpoints).")
@click.option("--force", is_flag=True, help="Replace --out even if it is not empty.")
@click.option("--dry-run", is_flag=True, help="Print the plan (renames, dropped and added tensors, new config) and write nothing.")
@click.option("--verify", is_flag=True, help="Before writing --out, load original and result with transformers/adapters "
              "and compare outputs and loss; a difference above tolerance writes nothing (needs the 'verify' extra).")
@click.option("--base", metavar="DIR|ORG/NAME",
              help="Base model of an adapter folder, for --verify and for --to transformers or peft: a local folder "
                   "or a Hub repository (default: adapter_config.json's model_name, a folder if one is there, else "
                   "a Hub id). From the Hub, --to transformers and peft fetch config.json and the weights into the "
                   "HF cache (HF_HUB_OFFLINE=1: from the cache alone).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="json: the result for scripts (output folder, renames, tensors checked, verify figures).")
@click.option("-v", "--verbose", is_flag=True, help="Print the whole plan, not only its counts.")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing on success (errors still go to stderr).")
@click.option("--revision", help="Hub SOURCE: branch, tag or commit (same as org/name@REVISION).")
@click.option("--subfolder", help="Hub SOURCE: the checkpoint's folder in the repository (same as org/name/SUBFOLDER).")
@click.option("--token", help="Hub token (default: $HF_TOKEN); --create-pr and --push-to need write access.")
@click.option("--create-pr", is_flag=True, help="Hub SOURCE: commit the migrated files as a pull request on the "
              "repository, built on the scanned commit (with --dry-run: print the commit and its description).")
@click.option("--push-to", metavar="ORG/NAME", help="Hub SOURCE: create this repository and commit the migrated "
              "checkpoint to it.")
@click.option("--private", is_flag=True, help="With --push-to: create the repository private.")
@click.option("--to", "to", type=click.Choice(["flex", *EXPORT_TARGETS]), default="flex", show_default=True,
              help="flex: into adapters' flex-head layout; transformers: out of adapters, as transformers' own "
                   "class; peft: an adapter folder as a PEFT adapter for its base model (exports.transformers and "
                   "exports.peft in the scan report say whether each can).")
@click.option("--head", "head", metavar="NAME", help="--to transformers: the head to export where the model has several.")
@click.option("--adapter", "adapter", metavar="NAME",
              help="--to transformers: the adapter to merge where the model carries several.")
def migrate(source: str, out: Path | None, head_name, head_type, num_choices, force, dry_run, verify, base, fmt,
            verbose, quiet, revision, subfolder, token, create_pr, push_to, private, to, head, adapter) -> None:
    """Rewrite the checkpoint in SOURCE into the adapters flex-head layout, in --out (with --to transformers:
    out of adapters, as the transformers class that computes the same outputs; with --to peft: an adapter
    folder as a PEFT adapter that computes the same on its base model).

    \b
    SOURCE is a checkpoint folder or a Hub repository (org/name, org/name/subfolder, @revision).
    Checkpoints that `headcheck scan` calls convertible are rewritten; already-flex ones are copied
    as they are and rescanned (a checked copy); anything else is refused with the same findings
    (exit code 1) and nothing is written. The input is never modified; the output appears only once
    complete and checked: every tensor's bytes are compared with the source and the result must
    scan as already-flex. A Hub SOURCE is scanned first (headers only) and downloaded only when it
    can be migrated; --create-pr then opens one pull request with the changed files (at most one per
    scanned commit and target), --push-to creates a new repository. With --to transformers (or peft) a Hub
    SOURCE goes on only when its exports verdict for that target is exportable.
    """
    from ..judge.export import ExportChoiceError
    from ..migration import run as migration
    from ..render.migration import render_comparison, render_migration, render_migration_json

    options = dict(head_name=head_name, head_type=head_type, num_choices=num_choices)
    if to != "flex" and (head_name or head_type or num_choices):
        raise click.UsageError("--head-name, --head-type and --num-choices apply to --to flex")
    if to != "transformers" and (head or adapter):
        raise click.UsageError("--head and --adapter apply to --to transformers")
    options = dict(to=to, head=head, adapter=adapter) if to != "flex" else options
    hub_options = dict(revision=revision, subfolder=subfolder, token=token, create_pr=create_pr, push_to=push_to,
                       private=private)
    local = Path(source)
    hub_source = names_hub_repo(source)
    if not hub_source:
        if any(hub_options.values()):
            raise click.UsageError(f"{source}: --revision, --subfolder, --token, --create-pr, --push-to and "
                                   "--private apply to Hub repositories, not local folders")
        try:
            is_folder = local.is_dir()
        except OSError as exc:  # a folder on the way the user may not enter: unreadable input, not a usage error
            fail(f"error: {source}: cannot be read ({exc.strerror})", ExitCode.INPUT_ERROR)
        if not is_folder:
            raise click.BadParameter(f"{source}: no such folder (a Hub repository is org/name)",
                                     param_hint="'SOURCE'")
    if base is not None:
        try:
            base_location(base)
        except BaseModelNameError as exc:
            raise click.BadParameter(str(exc), param_hint="'--base'") from None
    if create_pr and push_to:
        raise click.UsageError("--create-pr and --push-to: choose one")
    if out is None and not (hub_source and (create_pr or push_to or dry_run)):
        raise click.UsageError("Missing option '--out'.")
    try:
        if hub_source:
            from .publish import migrate_from_hub

            migrate_from_hub(source, out, options=options, force=force, dry_run=dry_run, verify=verify, base=base,
                             fmt=fmt, verbose=verbose, quiet=quiet, **hub_options)
            return
        source = local
        if dry_run:
            report, plan = migration.prepare(source, **options, **({"base": base} if to != "flex" else {}))
            click.echo(render_migration_json(report, plan, None) if fmt == "json" else render_migration(report, plan, None))
            return
        with (bar := progress_bar()) as on_bytes:
            result = migration.migrate(source, out, force=force, verify=verify, base=base, on_bytes=on_bytes,
                                       on_stage=bar.stage,
                                       **options)
    except migration.NotExportableError as exc:
        click.echo(RENDERERS["text"](exc.report, color=use_color(sys.stderr)), err=True)
        fail(f"not exported: exports.{exc.target} is not-exportable; nothing written", ExitCode.FINDINGS)
    except (ExportChoiceError, BaseModelNameError) as exc:
        raise click.UsageError(str(exc)) from None
    except migration.NotConvertibleError as exc:
        click.echo(RENDERERS["text"](exc.report, color=use_color(sys.stderr)), err=True)
        fail(f"not migrated: verdict is {exc.report.verdict.value}; nothing written", ExitCode.FINDINGS)
    except migration.OutputExistsError as exc:
        raise click.UsageError(str(exc)) from None
    except (migration.VerifyUnavailableError, MergeUnavailableError) as exc:  # the environment: no usage text
        fail(f"{exc}", ExitCode.USAGE)
    except migration.VerifyFailedError as exc:
        if exc.comparison is not None:
            click.echo(render_comparison(exc.comparison), err=True)
        fail(f"error: {exc}", ExitCode.FINDINGS if exc.comparison else ExitCode.INPUT_ERROR)
    except (InputError, migration.MigrationError) as exc:
        fail(f"error: {exc}", ExitCode.INPUT_ERROR)
    except NothingScannedError as exc:
        fail(f"nothing scanned: {exc}", ExitCode.NOTHING_SCANNED)
    except PublishRefusedError as exc:
        fail(f"not committed: {exc}", ExitCode.FINDINGS)
    if fmt == "json":
        click.echo(render_migration_json(result.report, result.migration, result))
    elif not quiet:
        click.echo(render_migration(result.report, result.migration, result, verbose=verbose))


@cli.command(short_help="List the rules, or explain one (what it checks, why, example, fix).")
@click.argument("code", required=False)
@click.option("--markdown", is_flag=True, help="Print every rule as Markdown (the source of docs/rules.md).")
def rule(code: str | None, markdown: bool) -> None:
    """Explain rule CODE (e.g. HC101 or custom-head-weights); without CODE, list all rules."""
    import shutil

    from ..render.rules_doc import render_rule, render_rule_list, render_rules_markdown

    if markdown:
        click.echo(render_rules_markdown(), nl=False)
        return
    width = min(100, shutil.get_terminal_size().columns) - 2
    if code is None:
        click.echo(render_rule_list(width))
        return
    found = ruledata.lookup(code)
    if found is None:
        raise click.UsageError(f"unknown rule {code!r}; run `headcheck rule` for the list")
    click.echo(render_rule(found, width, color=use_color(sys.stdout)))


cli.add_command(hook)


def main() -> None:
    # Names from a checkpoint may hold lone surrogates (JSON escapes them, Python keeps them): print them as
    # \u escapes rather than crash (strict locales) or emit bytes that are no UTF-8 (surrogateescape).
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:  # usage errors get the contract's code, not click's 2
        exc.show()
        sys.exit(ExitCode.USAGE)
    except ruledata.RuleDataError as exc:
        fail(f"broken rule data: {exc}", ExitCode.INPUT_ERROR)
