"""Apply the project configuration to reports: ignored findings are marked, never dropped.

A finding whose rule is ignored (the configuration's `ignore`, a matching `per-path-ignores` entry, or
`--ignore`) stays in the report with `ignored` saying which file and key ignore it; it no longer counts for
the exit code or a hook's decision (Report.worst). The verdict is not touched: it is a fact about the
checkpoint (a not-convertible checkpoint stays not-convertible, and migrate still refuses it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import PurePath

from . import ruledata
from ..errors import ConfigError
from .judgement import finding
from ..model import ExportVerdict, Report, Severity, Suppression
from ..read.project_config import ProjectConfig

FAIL_ON: dict[str, Severity | None] = {"error": Severity.ERROR, "warning": Severity.WARNING, "never": None}
DEFAULT_FAIL_ON = "error"
CLI_IGNORE = "--ignore"


@dataclass(frozen=True)
class Policy:
    """What one configuration (or none) and the command line decide for the targets it applies to."""

    config: ProjectConfig | None = None
    cli_ignores: tuple[str, ...] = ()  # rule codes given with --ignore
    codes: Mapping[str, str] = field(default_factory=dict)  # rule code or name as the configuration writes it -> code
    cli_require_export: tuple[str, ...] = ()  # export targets given with --require-export

    def require_export(self) -> tuple[str, ...]:
        """The configuration's `require-export` and --require-export, each target once."""
        return tuple(dict.fromkeys((*(self.config.require_export if self.config else ()), *self.cli_require_export)))

    def settings(self) -> tuple:
        """What decides the outcome, without where the configuration was read (equal for the same file content)."""
        c = self.config
        return self.cli_ignores, self.cli_require_export, c and (str(c.root), c.prefix, c.ignore, c.fail_on, c.exclude,
                                                                  c.per_path_ignores, c.require_export)

    def fail_on(self, cli_fail_on: str | None = None) -> str:
        """--fail-on when given, else the configuration's `fail-on`, else error."""
        return cli_fail_on or (self.config.fail_on if self.config else None) or DEFAULT_FAIL_ON

    def threshold(self, cli_fail_on: str | None = None) -> Severity | None:
        return FAIL_ON[self.fail_on(cli_fail_on)]

    def excluded_by(self, path: PurePath | None) -> str | None:
        """The `exclude` pattern that excludes PATH (absolute on disk, repository-relative in a commit), if any."""
        if self.config is None or path is None:
            return None
        parts = self.config.parts_of(path)
        return None if parts is None else self.config.excluded_by(parts)

    def apply(self, report: Report, path: PurePath | None) -> Report:
        """REPORT with the findings this policy ignores at PATH marked (a new frozen Report; None: a Hub target),
        and an HC147 error for each required export the checkpoint cannot reach."""
        report = self._require_exports(report)
        reasons: dict[str, Suppression] = {}
        if self.config is not None:
            parts = None if path is None else self.config.parts_of(path)
            for rule, key in self.config.ignores_at(parts):
                reasons.setdefault(self.codes[rule], Suppression(self.config.file, key))
        for code in self.cli_ignores:
            reasons.setdefault(code, Suppression(None, CLI_IGNORE))
        if not any(f.rule in reasons for f in report.findings):
            return report
        findings = tuple(replace(f, ignored=reasons[f.rule]) if f.rule in reasons and f.ignored is None else f
                         for f in report.findings)
        return replace(report, findings=findings)


    def _require_exports(self, report: Report) -> Report:
        required = self.require_export()
        refused = [e for e in report.exports if e.target in required and e.verdict is ExportVerdict.NOT_EXPORTABLE]
        if not refused:
            return report
        source = self.config.file if self.config and set(self.config.require_export) & {e.target for e in refused} \
            else "--require-export"
        added = tuple(finding(
            "HC147", f"{source} requires an export to {e.target}, and this checkpoint is not exportable: "
                     + "; ".join(f"{f.rule} {f.message}" for f in e.findings),
            file=e.findings[0].file if e.findings else None,
            hint=f"headcheck rule {e.rules[0]} says what to do instead" if e.rules else None) for e in refused)
        findings = tuple(sorted((*report.findings, *added), key=lambda f: (-f.severity, f.rule)))
        return replace(report, findings=findings)


def policy(config: ProjectConfig | None, cli_ignores: Iterable[str] = (),
           cli_require_export: Iterable[str] = ()) -> Policy:
    """Resolve every rule CONFIG and --ignore name; an unknown one is a ConfigError naming the file and key."""
    codes: dict[str, str] = {}
    for rule, key in config.all_rules() if config else ():
        codes[rule] = _code(rule, config.file, key)
    return Policy(config, parse_cli_ignores(cli_ignores), codes, tuple(dict.fromkeys(cli_require_export)))


def parse_cli_ignores(values: Iterable[str]) -> tuple[str, ...]:
    """`--ignore HC103,multilabel-head --ignore HC114` -> the codes, in order, each once."""
    codes: list[str] = []
    for value in values:
        for item in filter(None, (part.strip() for part in value.split(","))):
            code = _code(item, None, CLI_IGNORE)
            if code not in codes:
                codes.append(code)
    return tuple(codes)


def _code(rule: str, file: str | None, key: str) -> str:
    found = ruledata.lookup(rule)
    if found is None:
        raise ConfigError(file, key, f"unknown rule {rule!r}; `headcheck rule` lists the codes and names")
    return found.code
