"""Result types: everything the library returns is one of these frozen dataclasses."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from typing import Any

from .version import __version__

SCHEMA_VERSION = 1  # of the JSON report; bumped only when a key other tools read changes


class Severity(enum.IntEnum):
    INFO = 1
    WARNING = 2
    ERROR = 3

    def __str__(self) -> str:
        return self.name.lower()


class Verdict(str, enum.Enum):
    CONVERTIBLE = "convertible"
    ALREADY_FLEX = "already-flex"
    NO_HEAD = "no-head"
    AMBIGUOUS = "ambiguous"
    NOT_CONVERTIBLE = "not-convertible"


class ExportVerdict(str, enum.Enum):
    """Whether a checkpoint can run without adapters on one target (DESIGN.md, Exports)."""

    EXPORTABLE = "exportable"  # `migrate --to TARGET` writes it
    NATIVE = "native"  # it already loads there as it is
    NOT_EXPORTABLE = "not-exportable"  # every reason is a finding of its own rule
    NOT_APPLICABLE = "not-applicable"


class Kind(str, enum.Enum):
    FULL_MODEL = "full-model"
    ADAPTER = "adapter"
    PEFT_ADAPTER = "peft-adapter"
    UNKNOWN = "unknown"


class Layout(str, enum.Enum):
    """Finer than Kind: which saving code produced the checkpoint."""

    STATIC = "static"  # transformers XFor... class
    FLEX = "flex"  # adapters XAdapterModel
    LEGACY_FLEX = "legacy-flex"  # adapter-transformers XModelWithHeads
    BASE = "base"  # transformers XModel, no head
    CUSTOM = "custom"  # a class nobody knows (auto_map, hand-written config)
    ADAPTERS_ADAPTER = "adapters-adapter"
    PEFT = "peft"
    MLX_LM = "mlx-lm"
    FOREIGN = "foreign"  # a file that shares a name with ours but belongs to another tool


@dataclass(frozen=True)
class Suppression:
    """Why a finding does not count: the project configuration (or command line) that ignores its rule."""

    config: str | None  # the configuration file as shown to the user; None for the command line's --ignore
    key: str  # the key that ignores it: tool.headcheck.ignore, per-path-ignores."models/*", or --ignore

    def __str__(self) -> str:
        return f"{self.config}: {self.key}" if self.config else self.key


@dataclass(frozen=True)
class Finding:
    """One thing the scan found, under a permanent rule code (`headcheck rule CODE` explains it)."""

    rule: str  # permanent code, e.g. HC101
    severity: Severity
    message: str
    file: str | None = None
    hint: str | None = None
    key: str | None = None  # the JSON key or tensor name the finding is about, for locating it in a file
    ignored: Suppression | None = None  # set by the project configuration: reported, but not counted


@dataclass(frozen=True)
class Head:
    """The prediction head the scan classified, and the files and keys that told it."""

    type: str  # adapters head-type vocabulary, or "none" / "unknown"
    architecture: str | None = None
    problem_type: str | None = None
    num_labels: int | None = None
    name: str | None = None
    evidence: tuple[str, ...] = ()
    candidates: tuple[str, ...] = ()  # when ambiguous: the head types that fit


@dataclass(frozen=True)
class Rename:
    """A tensor migrate writes under a new name (the bytes unchanged)."""

    source: str
    target: str
    file: str


@dataclass(frozen=True)
class ConfigChange:
    """A config.json key migrate writes (HC133: a setting written the way transformers 4.57 reads it)."""

    key: str
    old: Any  # None when the key is absent
    new: Any


@dataclass(frozen=True)
class Plan:
    """What migrate will do: the flex class, the head config, and every tensor rename."""

    adapter_model_class: str
    head_name: str
    head_config: dict[str, Any]
    renames: tuple[Rename, ...]
    config_file: str  # config.json for full models, head_config.json for adapter folders
    dropped: tuple[str, ...] = ()  # tensors left out on purpose (tied duplicates), with reason in findings
    config_changes: tuple[ConfigChange, ...] = ()  # config.json keys written for transformers 4.57 (HC133)
    copies: tuple[Rename, ...] = ()  # source tensors also written under another name (HC133), bytes unchanged


EXPORT_TARGETS = ("transformers", "peft")  # the ways out of adapters, in the order reports list them


@dataclass(frozen=True)
class Export:
    """One target's export verdict: the class the export declares, the head and adapter it takes, and the
    findings that refuse it. They stay here, not among the report's findings: a checkpoint that serves well
    inside adapters has nothing wrong with it (--require-export turns a refusal into a finding that counts)."""

    target: str  # one of EXPORT_TARGETS
    verdict: ExportVerdict
    architecture: str | None = None  # the class written (transformers) or the adapter is loaded onto (peft)
    head_name: str | None = None  # the flex head written into the static class
    adapter: str | None = None  # the adapter merged into the base weights (peft: the adapter written)
    findings: tuple[Finding, ...] = ()  # why it is not-exportable, one rule each
    notes: tuple[str, ...] = ()  # what the export assumes (e.g. a full model's only adapter is the trained one)

    @property
    def rules(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(f.rule for f in self.findings))

    def to_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict.value, "architecture": self.architecture, "head": self.head_name,
                "adapter": self.adapter, "rules": list(self.rules),
                "findings": [_finding_dict(f) for f in self.findings], "notes": list(self.notes)}


@dataclass(frozen=True)
class Report:
    """The result of scanning one checkpoint: what it is, its head, the verdict, the findings, migrate's plan when
    there is one, and each export target's verdict. `to_dict()` is the JSON report."""

    source: str
    kind: Kind
    layout: Layout
    model_type: str | None
    head: Head
    verdict: Verdict
    findings: tuple[Finding, ...] = ()
    plan: Plan | None = None
    files: tuple[str, ...] = field(default=())
    exports: tuple[Export, ...] = ()  # one per target judged (the key is new in schema_version 1)

    def export(self, target: str) -> Export | None:
        return next((e for e in self.exports if e.target == target), None)

    def counted(self) -> tuple[Finding, ...]:
        """The findings that count for exit codes and hooks: all but those the configuration ignores."""
        return tuple(f for f in self.findings if f.ignored is None)

    def ignored(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.ignored is not None)

    def worst(self) -> Severity | None:
        """The worst severity among the findings that count (ignored findings never decide an exit code)."""
        return max((f.severity for f in self.counted()), default=None)

    def to_dict(self) -> dict[str, Any]:
        """The JSON report (`--format json`, schema_version 1, headcheck/schemas/report.schema.json)."""
        head = self.head
        plan = None
        if self.plan is not None:
            plan = asdict(self.plan)
            plan["renames"] = [asdict(r) for r in self.plan.renames]
            plan["dropped"] = list(self.plan.dropped)
            plan["config_changes"] = [asdict(c) for c in self.plan.config_changes]
            plan["copies"] = [asdict(c) for c in self.plan.copies]
        return {
            "schema_version": SCHEMA_VERSION,
            "headcheck_version": __version__,
            "source": self.source,
            "kind": self.kind.value,
            "layout": self.layout.value,
            "model_type": self.model_type,
            "head": {
                "type": head.type,
                "architecture": head.architecture,
                "problem_type": head.problem_type,
                "num_labels": head.num_labels,
                "name": head.name,
                "evidence": list(head.evidence),
                "candidates": list(head.candidates),
            },
            "verdict": self.verdict.value,
            "findings": [_finding_dict(f) for f in self.findings],
            "plan": plan,
            "files": list(self.files),
            "exports": {e.target: e.to_dict() for e in self.exports},
        }


def _finding_dict(f: Finding) -> dict[str, Any]:
    out: dict[str, Any] = {"rule": f.rule, "severity": str(f.severity), "message": f.message, "file": f.file,
                           "hint": f.hint, "key": f.key}
    if f.ignored is not None:  # optional keys (schema_version 1 stays): present only on ignored findings
        out["ignored"] = True
        out["ignored_by"] = str(f.ignored)
    return out
