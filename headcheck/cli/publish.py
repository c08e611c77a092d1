"""`headcheck migrate org/name ...`: scan on the Hub, download, migrate, and with --create-pr / --push-to commit."""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

import click

from ..read.json_text import dump_json
from .progress import progress_bar


def migrate_from_hub(source: str, out: Path | None, *, options: dict, force: bool, dry_run: bool, verify: bool,
                     base, fmt: str, verbose: bool, quiet: bool, revision, subfolder, token, create_pr: bool,
                     push_to: str | None, private: bool) -> None:
    """Raises the errors `migrate` maps to exit codes; prints what was done. `options` as for migrate (with
    `to="transformers"`: out of adapters)."""
    from ..publish import hub_migrate, pull_request
    from ..render.migration import migration_dict, render_migration, render_migration_json

    repo, report = hub_migrate.open_repo(source, revision=revision, token=token, subfolder=subfolder, base=base,
                                         **options)
    committing = create_pr or push_to
    if create_pr:  # a pull request that would change nothing is refused before anything is downloaded
        pull_request.refuse_unchanged(repo.label, report, options.get("to", "flex"))
    if dry_run and not committing:  # the plan from the headers alone: nothing downloaded
        migration = hub_migrate.plan_from_headers(repo, report, base=base, **options)
        click.echo(render_migration_json(report, migration, None) if fmt == "json"
                   else render_migration(report, migration, None))
        return
    with contextlib.ExitStack() as stack:
        written_to = None
        if out is None:  # committing only: the migrated folder lives as long as the commit takes
            out = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="headcheck-migrated-"))) / "out"
            written_to = "a temporary folder (removed when done)"
        on_bytes = stack.enter_context(bar := progress_bar())
        hub = hub_migrate.migrate_hub(repo, report, out, force=force, verify=verify, base=base, on_bytes=on_bytes,
                                      on_stage=bar.stage, **options)
        published = None
        if create_pr:
            published = pull_request.open_pull_request(hub, dry_run=dry_run)
        elif push_to:
            published = pull_request.push_to(hub, push_to, private=private, dry_run=dry_run)
        if fmt == "json":  # the local migrate's result, naming the Hub source, with the commit
            result = migration_dict(report, hub.result.migration, hub.result)
            result["commit"] = None if published is None else _published_dict(published)
            click.echo(dump_json(result, indent=2))
        elif not quiet:
            click.echo(render_migration(report, hub.result.migration, hub.result, verbose=verbose,
                                        written_to=written_to))
            if published is not None:
                click.echo(_published_text(published, dry_run))
        elif published is not None and published.url:
            click.echo(published.url)


def _published_dict(published) -> dict:
    return {"url": published.url, "existing": published.existing, "title": published.title,
            "description": published.description,
            "changes": [{"action": c.action, "path": c.path, "size": c.size} for c in published.changes]}


def _published_text(published, dry_run: bool) -> str:
    changes = "\n".join(f"  {c.action:<6} {c.path}" + (f" ({c.size} bytes)" if c.size else "")
                        for c in published.changes)
    if dry_run:
        return (f"dry run: nothing committed; the commit would be:\n{changes}\n"
                f"title: {published.title}\n\n{published.description}")
    if published.existing:
        return f"not committed: an open headcheck pull request for this commit exists already: {published.url}"
    return f"committed:\n{changes}\n{published.url}"
