"""The project configuration on the command line: --ignore, --config, --no-config, and what scan does with it.

Each local target gets the configuration found from its own path upwards (Hub ids: from the current
directory); --config FILE gives one configuration to all, --no-config none. Every configuration is read
and checked before anything is scanned, so a malformed one ends the run with exit code 4 and one line.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

import click

from ..model import EXPORT_TARGETS
from ..errors import ConfigError
from ..exitcodes import ExitCode
from ..read.json_text import dump_json
from .options import fail


def config_options(command):
    """--ignore, --config, --no-config and --require-export, in this order in --help."""
    for option in reversed([
        click.option("--ignore", "ignore", multiple=True, metavar="RULE[,RULE]",
                     help="Ignore these rules (codes or names) on top of the configuration's `ignore`; their findings "
                          "are still reported, marked ignored, but do not count for the exit code. Repeatable."),
        click.option("--config", "config_file", type=click.Path(path_type=Path, dir_okay=False),
                     help="Read the configuration from FILE (a pyproject.toml with [tool.headcheck], or a "
                          ".headcheck.toml-style file) instead of the one found from each checkpoint upwards "
                          "(on disk; in the hooks, in the commit judged)."),
        click.option("--no-config", is_flag=True,
                     help="Use no configuration file (--ignore still applies)."),
        click.option("--require-export", "require_export", multiple=True, type=click.Choice(EXPORT_TARGETS),
                     help="Every checkpoint must be exportable to this target (exports.<target> in the report): a "
                          "not-exportable one gets the error finding HC147. Adds to the configuration's "
                          "require-export."),
    ]):
        command = option(command)
    return command


def config_error(exc: ConfigError):
    """A malformed configuration: one line naming file and key, exit code 4 (usage)."""
    fail(f"config error: {exc}", ExitCode.USAGE)


def check_config_flags(config_file: Path | None, no_config: bool) -> None:
    if config_file is not None and no_config:
        raise click.UsageError("--config and --no-config: choose one")


@dataclass(frozen=True)
class Excluded:
    target: str
    pattern: str
    config: str  # the configuration file, as shown
    key: str  # its exclude key: tool.headcheck.exclude, or exclude in .headcheck.toml

    def line(self) -> str:
        return f"headcheck: {self.target}: not scanned: excluded by {self.config} (exclude {self.pattern!r})"

    def record(self) -> dict:
        """Its JSON (Lines) record, beside the error records of targets that could not be scanned."""
        from ..model import SCHEMA_VERSION

        return {"schema_version": SCHEMA_VERSION, "source": self.target, "excluded": True,
                "excluded_by": f"{self.config}: {self.key}", "pattern": self.pattern, "exit_code": int(ExitCode.OK)}


class TargetPolicies:
    """The policy (configuration + --ignore) of each scan target, all resolved up front."""

    def __init__(self, targets: Iterable[str], config_file: Path | None, no_config: bool, ignores: Iterable[str],
                 fail_on: str | None, require_export: Iterable[str] = ()):
        from ..judge.suppress import policy
        from ..read.project_config import find_config, load_config

        check_config_flags(config_file, no_config)
        self.fail_on = fail_on
        self.policies, self.paths = {}, {}
        fixed = policy(load_config(config_file), ignores, require_export) if config_file is not None else None
        by_folder: dict[Path, object] = {}
        for target in targets:
            local = Path(target)
            # None: a Hub id, a missing path, or one the user may not look up (its scan says so, exit 2)
            path = Path(os.path.abspath(local)) if os.path.exists(local) else None
            self.paths[target] = path
            if fixed is not None or no_config:
                self.policies[target] = fixed or policy(None, ignores, require_export)
                continue
            start = path if path is not None else Path(os.getcwd())
            folder = start if os.path.isdir(start) else start.parent
            if folder not in by_folder:
                by_folder[folder] = policy(find_config(folder), ignores, require_export)
            self.policies[target] = by_folder[folder]

    def excluded(self, target: str) -> Excluded | None:
        config = self.policies[target].config
        found = self.policies[target].excluded_by(self.paths[target])
        return Excluded(target, found, config.file, config.key("exclude")) if found else None

    def threshold(self, target: str):
        return self.policies[target].threshold(self.fail_on)

    def apply(self, outcome):
        """The outcome with its report's findings marked as the target's policy ignores them."""
        if outcome.report is None:
            return outcome
        return replace(outcome, report=self.policies[outcome.target].apply(outcome.report, self.paths[outcome.target]))


def say_excluded(excluded: Excluded, fmt: str) -> None:
    """An excluded target: a line on stderr; machine formats also say it on stdout (never an empty output)."""
    click.echo(excluded.line(), err=True)
    if fmt == "json":
        click.echo(dump_json(excluded.record()))
    elif fmt == "github":
        from ..render.github import command

        click.echo(command("notice", excluded.line().removeprefix("headcheck: "), title="headcheck"))
