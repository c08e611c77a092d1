"""Commit a Hub migration: as a pull request on the scanned repository (built on the scanned commit), or into a
new repository. One commit, through huggingface_hub's commit API: it lands whole or not at all."""

from __future__ import annotations

from dataclasses import dataclass

from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi, errors

from ..errors import InputError, PublishRefusedError
from ..model import ExportVerdict, Report, Verdict
from ..read import hub_http
from ..read.hub import first_line, status_of
from ..read.names import CONFIG_FILES, WEIGHT_FILES
from ..render.pull_request import render_description, render_title
from .hub_migrate import HubMigration


@dataclass(frozen=True)
class Change:
    action: str  # "add" or "delete"
    path: str  # in the repository
    size: int | None = None  # bytes added


@dataclass(frozen=True)
class Published:
    url: str | None  # the pull request or the new repository; None for a dry run
    changes: tuple[Change, ...]
    title: str
    description: str
    existing: bool = False  # an open headcheck pull request on the same commit was found; nothing committed


def changes_of(hub: HubMigration) -> tuple[Change, ...]:
    """What the migrated layout writes (weights, index, configs) and the files it supersedes; files migrate
    copied unchanged (tokenizer, card, ...) are not part of the commit."""
    migration, out = hub.result.migration, hub.result.out
    written = [*(o.name for o in migration.outputs), *migration.configs, *filter(None, [migration.index_file])]
    superseded = migration.replaced_files
    if migration.root is not None:  # an adapter exported onto its base model: a full model takes its place
        # the base's other files (tokenizer, ...) where the repository has none of its own
        written += [p.relative_to(out).as_posix() for p in sorted(out.rglob("*"))
                    if p.is_file() and p.relative_to(out).as_posix() not in hub.report.files]
        superseded = tuple(name for name in hub.report.files if name in CONFIG_FILES or name in WEIGHT_FILES)
    written = list(dict.fromkeys(written))
    added = [Change("add", hub.repo.path_in_repo(name), (out / name).stat().st_size) for name in written]
    deleted = [Change("delete", hub.repo.path_in_repo(name)) for name in superseded if name not in written]
    return (*added, *deleted)


def refuse_unchanged(label: str, report: Report, to: str) -> None:
    """A pull request that would change nothing is not opened: already flex, or (out of adapters) a checkpoint
    transformers loads as it is (a PEFT adapter, for a PEFT export)."""
    if to == "peft" and report.export("peft").verdict is ExportVerdict.NATIVE:
        raise PublishRefusedError(f"{label}: already a PEFT adapter, nothing to export; no pull request opened")
    if to == "transformers" and (export := report.export(to)).verdict is ExportVerdict.NATIVE:
        raise PublishRefusedError(f"{label}: already loads with transformers as {export.architecture}, "
                                  "nothing to export; no pull request opened")
    if to == "flex" and report.verdict is Verdict.ALREADY_FLEX:
        raise PublishRefusedError(f"{label}: already flex, nothing to fix; no pull request opened")


def open_pull_request(hub: HubMigration, *, dry_run: bool = False) -> Published:
    refuse_unchanged(hub.repo.label, hub.report, hub.to)
    changes = changes_of(hub)
    title, description = render_title(hub), render_description(hub, changes)
    if dry_run:
        return Published(None, changes, title, description)
    api = _api(hub)
    _check_write_access(api, hub.repo.label)
    if existing := _open_pull_request_for(api, hub, title):
        return Published(existing, changes, title, description, existing=True)
    info = _guard(hub, lambda: api.create_commit(
        hub.repo.repo_id, _operations(hub, changes), commit_message=title, commit_description=description,
        revision=hub.repo.revision, create_pr=True, parent_commit=hub.repo.sha))
    return Published(info.pr_url, changes, title, description)


def push_to(hub: HubMigration, new_repo: str, *, private: bool = False, dry_run: bool = False) -> Published:
    """The whole migrated folder as the first commit of a new repository."""
    out = hub.result.out
    changes = tuple(Change("add", p.relative_to(out).as_posix(), p.stat().st_size)
                    for p in sorted(out.rglob("*")) if p.is_file())
    title = render_title(hub, new_repo=True)
    description = render_description(hub, changes)
    if dry_run:
        return Published(None, changes, title, description)
    api = _api(hub)
    _check_write_access(api, new_repo)
    _guard(hub, lambda: api.create_repo(new_repo, private=private, exist_ok=False),
           conflict=f"{new_repo} exists already; --push-to creates a new repository (choose another name, "
                    "or open a pull request on it with --create-pr)")
    operations = [CommitOperationAdd(c.path, out / c.path) for c in changes]
    info = _guard(hub, lambda: api.create_commit(new_repo, operations, commit_message=title,
                                                 commit_description=description))
    return Published(info.commit_url.rsplit("/commit/", 1)[0], changes, title, description)


def _api(hub: HubMigration) -> HfApi:
    return HfApi(endpoint=hub.repo.endpoint, token=hub.repo.token)


def _operations(hub: HubMigration, changes: tuple[Change, ...]) -> list:
    out = hub.result.out
    prefix = f"{hub.repo.subfolder}/" if hub.repo.subfolder else ""
    return [CommitOperationAdd(c.path, out / c.path.removeprefix(prefix)) if c.action == "add"
            else CommitOperationDelete(c.path) for c in changes]


def _check_write_access(api: HfApi, where: str) -> None:
    """Fail before uploading anything when the token cannot write."""
    try:
        role = ((api.whoami().get("auth") or {}).get("accessToken") or {}).get("role")
    except errors.HfHubHTTPError as exc:
        raise InputError(f"{where}: the Hub refused the token ({status_of(exc) or '?'}); set HF_TOKEN or --token to "
                         "a token with write access; nothing committed") from None
    except (OSError, *hub_http.transport_errors()) as exc:  # no token at all, or no connection
        raise InputError(f"{where}: {first_line(exc)}; a commit needs a token with write access "
                         "(HF_TOKEN or --token); nothing committed") from None
    if role == "read":
        raise InputError(f"{where}: the token is read-only; a commit needs one with write access; nothing committed")


def _open_pull_request_for(api: HfApi, hub: HubMigration, title: str) -> str | None:
    """An open pull request headcheck opened for the same commit (its title names that commit)."""
    discussions = _guard(hub, lambda: list(api.get_repo_discussions(
        hub.repo.repo_id, discussion_type="pull_request", discussion_status="open")))
    found = next((d for d in discussions if d.title == title), None)
    return found.url if found is not None else None


def _guard(hub: HubMigration, call, conflict: str | None = None):
    """One line for every failure, and the promise that the commit did not happen."""
    try:
        return call()
    except errors.HfHubHTTPError as exc:
        status = status_of(exc) or "?"
        if status == 409 and conflict:
            raise PublishRefusedError(conflict) from None
        if status == 412:
            raise InputError(f"{hub.repo.label}: {hub.repo.revision} moved since the scan (scanned "
                             f"{hub.repo.sha[:12]}); run headcheck again; nothing committed") from None
        if status in (401, 403):
            raise InputError(f"{hub.repo.label}: the Hub refused the commit ({status}: {first_line(exc)}); the "
                             "token needs write access to the repository; nothing committed") from None
        raise InputError(f"{hub.repo.label}: the Hub answered {status} ({first_line(exc)}); nothing committed") \
            from None
    except (OSError, *hub_http.transport_errors()) as exc:
        raise InputError(f"{hub.repo.label}: cannot reach {hub.repo.endpoint} ({first_line(exc)}); "
                         "nothing committed") from None
