"""The library entry point: read facts, pick the judge for the checkpoint's layout, assemble the report."""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

from . import layouts
from ..errors import InputError, NothingScannedError
from ..read.facts import Facts, build_facts, build_facts_from
from .adapter import judge_adapter
from .export import judge_transformers_export
from .export_peft import judge_peft_export
from .full_model import judge_model, model_type_of
from .peft import judge_peft
from .invertible import invertible_lm_head_findings
from .judgement import Judgement, final_verdict, finding
from ..model import EXPORT_TARGETS, Head, Kind, Layout, Report, Severity
from ..read.local import names_hub_repo
from .legacy_activations import legacy_activation_findings
from .remote_code import remote_code_findings, side_config_findings
from .writer_settings import settings_rewrite

ROLE_DESCRIPTIONS = {
    "mlx": "an MLX-LM LoRA adapter config (not adapters, not PEFT)",
    "fusion": "an adapters AdapterFusion config (fusion layers only, no head to judge)",
    "foreign": "a JSON file of another tool (no adapters, PEFT or transformers format)",
}
FOREIGN_ROLES = {"mlx", "foreign"}
CARD_LIBRARIES = {"adapter-transformers", "adapters"}


def scan_path(path: Path, head_type: str | None = None) -> Report:
    """Scan a local checkpoint folder or file. Raises InputError / NothingScannedError for unreadable input."""
    return scan_facts(build_facts(path), head_type)


def scan_target(target: str, head_type: str | None = None, revision: str | None = None,
                token: str | None = None, subfolder: str | None = None) -> Report:
    """Scan a local path, or a Hub repository `org/name[/subfolder][@revision]` (headers only, through the HF
    cache)."""
    path = Path(target)
    if not os.path.lexists(path) and (near := _close_local_names(path)):  # a typo of a local folder first
        hub = " (a Hub repository id is org/name)" if _canonical_name(target) else ""
        raise InputError(f"{target}: no such file or directory; did you mean {' or '.join(near)}?{hub}")
    if _canonical_name(target) and not os.path.lexists(path):
        raise InputError(f"{target}: no such file or directory; a Hub repository id needs its organisation, "
                         f"org/name (e.g. google-bert/{target} or FacebookAI/{target})")
    if not names_hub_repo(target):
        if revision or subfolder:
            raise InputError(f"{target}: --revision and --subfolder apply to Hub repositories, not local paths")
        return scan_path(path, head_type)
    from ..read.hub import HubRepo  # huggingface_hub's network stack is only needed for Hub scans

    return scan_hub_repo(HubRepo(target, revision=revision, token=token, subfolder=subfolder), head_type)


def scan_hub_repo(repo, head_type: str | None = None) -> Report:
    """The report of one HubRepo; a level without a checkpoint names the subfolders that hold one."""
    try:
        facts = build_facts_from(repo)
    except NothingScannedError as exc:
        if not (inner := repo.checkpoint_subfolders()):
            raise
        shown = ", ".join(inner[:10]) + (f" and {len(inner) - 10} more" if len(inner) > 10 else "")
        raise NothingScannedError(f"{repo.label}: no checkpoint at this level; subfolders that hold one: {shown} "
                                  f"(scan {repo.label.partition('@')[0]}/{inner[0]}, or pass --subfolder)") from exc
    adapter_doc = facts.doc("adapter") or {}
    base = adapter_doc.get("model_name")
    base_config = repo.base_model_config(base) if isinstance(base, str) else None
    return scan_facts(facts, head_type, base_config=base_config, base_name=base)


def _close_local_names(path: Path) -> list[str]:
    """Entries beside a missing path whose names are close to it: a typo of a local folder comes first."""
    try:
        siblings = [entry.name for entry in (path.parent if str(path.parent) else Path(".")).iterdir()]
    except OSError:
        return []
    import difflib  # only a scan of a missing path compares names

    return [str(path.parent / name) for name in difflib.get_close_matches(path.name, siblings, n=2, cutoff=0.8)]


def _canonical_name(target: str) -> bool:
    """`bert-base-uncased`: an un-namespaced Hub id (the Hub redirects them; headcheck needs org/name)."""
    return re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", target) is not None and not target.endswith(
        (".json", ".safetensors", ".bin", ".md"))


def scan_facts(facts: Facts, head_type: str | None = None, base_config: dict | None = None,
               base_name: str | None = None) -> Report:
    kind, layout, judgement = _judge(facts, head_type)
    extra = list(facts.read_findings)
    extra.extend(_base_model_findings(facts, base_config, base_name))
    for role, doc in facts.docs.items():
        if role in FOREIGN_ROLES:
            extra.append(finding("HC119", f"{doc.file} is {ROLE_DESCRIPTIONS[role]}; ignored", file=doc.file))
    extra.extend(_card_findings(facts))
    extra.extend(invertible_lm_head_findings(facts, judgement.head))
    plan = judgement.plan
    if facts.doc("model") is not None:
        # settings transformers 4.57 reads differently: written its way in a full model's conversion, else HC127
        full = kind is Kind.FULL_MODEL
        rewrite = settings_rewrite(facts.doc("model"), facts.doc_file("model") or "config.json",
                                   facts.weights.get("model", {}), plan if full else None)
        extra.extend(rewrite.findings)
        plan = rewrite.plan if full else plan
        extra.extend(remote_code_findings(facts.doc("model"), facts.doc_file("model") or "config.json"))
    extra.extend(side_config_findings(facts.side_configs))
    for role in ("model", "head"):
        if facts.doc(role) is not None:
            extra.extend(legacy_activation_findings(facts.doc(role), role, facts.doc_file(role) or role))
    if not facts.weights and facts.docs and Path(facts.root).is_file():  # incomplete input is never clean
        extra.append(finding("HC128", f"{Path(facts.root).name} was scanned alone: its weights were not read",
                             file=Path(facts.root).name, hint=f"scan the folder: headcheck scan {Path(facts.root).parent}"))
    judged = judgement.findings
    if any(f.rule == "HC125" for f in facts.read_findings):  # weights pushed but not fetched: HC125 decides
        judged = tuple(dataclasses.replace(f, severity=Severity.WARNING) if f.rule == "HC115" else f for f in judged)
    findings = (*judged, *extra)
    verdict = final_verdict(judgement, tuple(extra))
    model_doc = facts.doc("model") or facts.doc("head") or facts.doc("adapter") or {}
    report = Report(
        source=facts.root,
        kind=kind,
        layout=layout,
        model_type=model_type_of(model_doc) if model_doc else None,
        head=_with_base_evidence(judgement.head, base_name, base_config),
        verdict=verdict,
        findings=tuple(sorted(findings, key=lambda f: (-f.severity, f.rule))),
        plan=plan if verdict.value == "convertible" else None,
        files=facts.files,
    )
    report = with_export(report, judge_transformers_export(facts, report))
    return with_export(report, judge_peft_export(facts, report))


def with_export(report: Report, judged) -> Report:
    """The report with `judged`'s entry in `exports`, replacing its target's (targets in EXPORT_TARGETS order)."""
    exports = {e.target: e for e in report.exports} | {judged.export.target: judged.export}
    return dataclasses.replace(report, exports=tuple(exports[t] for t in EXPORT_TARGETS if t in exports))


def _judge(facts: Facts, head_type: str | None) -> tuple[Kind, Layout, Judgement]:
    if facts.doc("peft") is not None:
        return Kind.PEFT_ADAPTER, Layout.PEFT, judge_peft(facts)
    if facts.doc("head") is not None or facts.doc("adapter") is not None or (
        "head" in facts.weights and "model" not in facts.weights
    ):
        return Kind.ADAPTER, Layout.ADAPTERS_ADAPTER, judge_adapter(facts)
    if facts.doc("model") is not None or "model" in facts.weights:
        judgement = judge_model(facts, head_type)
        return Kind.FULL_MODEL, _model_layout(facts, judgement), judgement
    if facts.read_findings:  # e.g. only an unsafe pickle: report it rather than "nothing scanned"
        return Kind.UNKNOWN, Layout.FOREIGN, judge_model(facts, head_type)
    described = "; ".join(f"{doc.file} is {ROLE_DESCRIPTIONS.get(role, role)}" for role, doc in facts.docs.items())
    raise NothingScannedError(f"{facts.root}: nothing headcheck can judge: {described}")


def _model_layout(facts: Facts, judgement: Judgement) -> Layout:
    config = facts.doc("model") or {}
    arch = judgement.head.architecture or ""
    if "prediction_heads" in config or arch.endswith("AdapterModel"):
        return Layout.FLEX
    if arch.endswith("ModelWithHeads"):
        return Layout.LEGACY_FLEX
    if arch and layouts.head_type_of_class(arch) == "none":
        return Layout.BASE
    if arch and (layouts.static_layout(arch) or layouts.head_type_of_class(arch)) and arch in (config.get("architectures") or []):
        return Layout.STATIC
    return Layout.CUSTOM


def _with_base_evidence(head: Head, base_name: str | None, base_config: dict | None) -> Head:
    """Hub adapter repositories: say what AutoAdapterModel.from_pretrained(base) would build, or that it is unknown."""
    if not base_name:
        return head
    if base_config is None:
        line = f"base model {base_name}: config not reachable; its family is taken from adapter_config.json"
    else:
        fam = layouts.family(base_config.get("model_type"))
        builds = fam["adapter_model"] if fam else "nothing (adapters does not support this family)"
        line = f"base model {base_name}: model_type {base_config.get('model_type')!r}, from_pretrained builds {builds}"
    return dataclasses.replace(head, evidence=(*head.evidence, line))


def _base_model_findings(facts: Facts, base_config: dict | None, base_name: str | None):
    """Adapter repositories load onto AutoAdapterModel.from_pretrained(base): the families must agree."""
    adapter_type = (facts.doc("adapter") or {}).get("model_type")
    base_type = (base_config or {}).get("model_type")
    if base_type and adapter_type and base_type != adapter_type:
        yield finding("HC126", f"the adapter is for model_type {adapter_type!r} but its base {base_name} is "
                               f"{base_type!r}", file=facts.doc_file("adapter"), key="model_name",
                      hint="set model_name to the model the adapter was trained on")


def _card_findings(facts: Facts):
    card = facts.card or {}
    library = card.get("library_name")
    tags = card.get("tags") if isinstance(card.get("tags"), list) else []
    # front matter is the author's YAML: only strings count (a list or an alias-expanded tree is no name)
    if (isinstance(library, str) and library in CARD_LIBRARIES) or CARD_LIBRARIES & {t for t in tags if isinstance(t, str)}:
        yield finding("HC121", f"README.md declares the adapters library (library_name: {library})", file="README.md",
                      key="library_name")
