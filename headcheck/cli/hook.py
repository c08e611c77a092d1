"""`headcheck hook ...`: the pre-commit entry (`hook run`), the native pre-push hook and its installer.

Added to the top-level group by cli/main.py.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from ..errors import ConfigError, InputError, NothingScannedError
from ..exitcodes import ExitCode
from ..model import Severity
from ..render import RENDERERS
from .configure import check_config_flags, config_error, config_options
from .options import FAIL_ON, fail, use_color

fail_on_option = click.option("--fail-on", type=click.Choice(list(FAIL_ON)), default=None,
                              help="Lowest severity of a finding (not ignored) that fails the hook "
                                   "[default: the configuration's fail-on, else error].")
repo_option = click.option("--repo", "repo_path", type=click.Path(path_type=Path, file_okay=False), default=".",
                           show_default=True, help="Any path inside the git repository.")



@click.group(short_help="The pre-commit hook and the native git pre-push hook.")
def hook() -> None:
    """Judge what is pushed: the pre-commit hook and the native git pre-push hook.

    \b
    The checkpoint folders are read from the commit being pushed (git objects, and git-LFS objects from
    the local store), not from the working tree. Weights whose LFS object is not here are not checked
    (warning HC125), never reported as fine. So is the configuration ([tool.headcheck] in pyproject.toml,
    or .headcheck.toml, from each folder upwards to the repository root): the pushed commit's own.
    """


@hook.command("run")
@click.argument("files", nargs=-1)
@click.option("--ref", default=None, help="Commit to judge [default: $PRE_COMMIT_TO_REF, else "
              "$PRE_COMMIT_LOCAL_BRANCH, else HEAD].")
@fail_on_option
@config_options
def run(files: tuple[str, ...], ref: str | None, fail_on: str | None, ignore, config_file, no_config,
        require_export) -> None:
    """Judge the checkpoint folders holding FILES (all checkpoint folders when none) at the pushed commit.

    This is the entry of the pre-commit hook (.pre-commit-hooks.yaml): pre-commit passes the changed
    files and, for pushes, the pushed commit in PRE_COMMIT_TO_REF.
    """
    from ..hooks import prepush as githook

    def work():
        repo = githook.Repo(".")
        commit, source = githook.resolve_hook_commit(repo, os.environ, ref)
        paths = githook.repo_relative(repo, files) if files else None
        configs = _commit_configs(repo, config_file, no_config, ignore, require_export)
        click.echo(f"headcheck: judging {commit[:12]} ({source})")
        return githook.Checker(repo, configs=configs, fail_on=fail_on).check_commit(commit, paths, filter_paths=False)

    _finish(_guarded(work), refused="")


@hook.command("pre-push")
@click.argument("remote", required=False)
@click.argument("url", required=False)
@fail_on_option
@config_options
def pre_push(remote: str | None, url: str | None, fail_on: str | None, ignore, config_file, no_config,
             require_export) -> None:
    """Run as git's pre-push hook: reads '<local-ref> <local-sha> <remote-ref> <remote-sha>' lines on stdin."""
    from ..hooks import prepush as githook
    from ..hooks.push import parse_pre_push, push_targets

    if sys.stdin is None or sys.stdin.isatty():
        raise click.UsageError("reads git's pre-push lines on stdin; git runs it (see `headcheck hook install`)")

    def work():
        refs = parse_pre_push(sys.stdin.read())
        repo = githook.Repo(".")
        checker = githook.Checker(repo, configs=_commit_configs(repo, config_file, no_config, ignore, require_export),
                                  fail_on=fail_on)
        results = []
        for target in push_targets(refs, lambda sha: repo.commit(sha) is not None):
            click.echo(f"headcheck: judging {target.commit[:12]} for {target.what}")
            results.extend(checker.check_target(target))
        return results

    _finish(_guarded(work), refused=" push refused;")


@hook.command("install")
@repo_option
@click.option("--force", is_flag=True, help="Replace a pre-push hook not written by headcheck (it is kept and run after headcheck).")
@fail_on_option
def install(repo_path: Path, force: bool, fail_on: str) -> None:
    """Write the git pre-push hook of the repository (honours core.hooksPath)."""
    from ..hooks.install import HookExistsError
    from ..hooks.install import install as do_install

    try:
        done = do_install(_repository(repo_path), force=force, fail_on=fail_on)  # None: the configuration decides
    except HookExistsError as exc:
        raise click.UsageError(str(exc)) from None
    except InputError as exc:
        fail(f"error: {exc}", ExitCode.INPUT_ERROR)
    click.echo(f"headcheck: installed {done.path} (runs {sys.executable} -m headcheck hook pre-push)")
    if done.saved:
        click.echo(f"headcheck: the previous hook is now {done.saved.name} and runs after headcheck")


@hook.command("uninstall")
@repo_option
def uninstall(repo_path: Path) -> None:
    """Remove the pre-push hook written by `headcheck hook install` (and only that one)."""
    from ..hooks.install import HookExistsError
    from ..hooks.install import uninstall as do_uninstall

    try:
        done = do_uninstall(_repository(repo_path))
    except HookExistsError as exc:
        raise click.UsageError(str(exc)) from None
    except InputError as exc:
        fail(f"error: {exc}", ExitCode.INPUT_ERROR)
    if done is None:
        click.echo("headcheck: no pre-push hook installed; nothing to remove")
    else:
        click.echo(f"headcheck: removed {done[0]}" + ("; the previous hook is back in place" if done[1] else ""))


def _repository(path: Path):
    """The git repository at `path`; not being in one is a usage error (exit 4), not unreadable input."""
    from ..hooks.repo import GitError, Repo

    try:
        return Repo(path)
    except GitError as exc:
        raise click.UsageError(f"{exc} (run it inside the repository, or pass --repo)") from None


def _guarded(work):
    try:
        return work()
    except InputError as exc:
        fail(f"error: {exc}", ExitCode.INPUT_ERROR)
    except NothingScannedError as exc:
        fail(f"nothing scanned: {exc}", ExitCode.NOTHING_SCANNED)
    except ConfigError as exc:
        config_error(exc)


def _commit_configs(repo, config_file: Path | None, no_config: bool, ignore, require_export):
    from ..hooks.commit_config import CommitConfigs

    check_config_flags(config_file, no_config)
    return CommitConfigs(repo, config_file=config_file, no_config=no_config, ignores=ignore,
                         require_export=require_export)


def _finish(results, refused: str) -> None:
    from ..hooks.prepush import overall_exit_code

    color = use_color(sys.stdout)
    excluded = [r for r in results if r.excluded is not None]
    results = [r for r in results if r.excluded is None]
    for result in excluded:
        click.echo(f"{result.label}: not judged: excluded by {result.excluded}")
    for result in results:
        if result.report is not None:
            click.echo(RENDERERS["text"](result.report, color=color))
        else:
            kind = "nothing scanned" if result.code == ExitCode.NOTHING_SCANNED else "error"
            click.echo(f"{result.label}: {kind}: {result.message}")
    code = overall_exit_code(results)
    if not results:
        click.echo("headcheck: no checkpoint folders to judge" + (f" ({len(excluded)} excluded)" if excluded else ""))
    elif code != ExitCode.OK:
        failed = sum(r.exit_code() != ExitCode.OK for r in results)
        fail_on = ", ".join(sorted({r.fail_on for r in results}))
        click.echo(f"headcheck:{refused} {failed} of {len(results)} checkpoint folder(s) failed (--fail-on {fail_on})"
                   + ("; `git push --no-verify` skips the check" if refused else ""))
    else:
        warned = any(r.report.worst() is not None and r.report.worst() >= Severity.WARNING for r in results)
        click.echo(f"headcheck: {len(results)} checkpoint folder(s) judged, none failed"
                   + (" (see the warnings above)" if warned else ""))
    sys.exit(code)
