"""Hook mode: judge the checkpoint folders of a commit as git stores them, not as the working tree has them.

Each file name maps to its checkpoint folder (the folder holding it); each folder is read from the commit,
materialised into a temporary directory (LFS objects linked from the local store, never copied) and scanned
once. Weights whose LFS object is not here are left out and reported by HC125, so the rest of the folder is
still judged and the report never reads as clean for what was not checked.

Which folders: those holding a checkpoint file (CHECKPOINT_FILES) that changed in the push, or every such
folder of the tree for a new branch; a folder that no longer holds any checkpoint file at the commit (the
checkpoint was deleted) has nothing left to judge.

The project configuration comes from the same commit (hooks/commit_config.py): a folder it excludes is
not judged, the findings it ignores are marked and do not count, and its fail-on applies unless --fail-on
is given.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType

from ..judge.engine import scan_facts
from ..errors import InputError, NothingScannedError
from ..exitcodes import ExitCode
from ..read.facts import Facts, build_facts_from
from ..judge.suppress import DEFAULT_FAIL_ON, FAIL_ON
from .commit_config import CommitConfigs
from .lfs import objects_dir
from .push import Target, hook_commit_candidates
from .repo import GitError, Repo, TreeEntry
from .tree import Materialized, Skipped, materialize
from ..judge.judgement import finding
from ..model import Finding, Report, Severity
from ..read.local import LocalFolder

# The files whose change makes their folder worth judging; .pre-commit-hooks.yaml's `files:` is this pattern
# (a test keeps them equal). `identify` has no tag for weights, hence a regex.
CHECKPOINT_FILES = re.compile(r"(^|/)((adapter_|head_)?config\.json|[^/]*\.(safetensors|bin)|[^/]*\.index\.json)$")


@dataclass(frozen=True)
class FolderResult:
    folder: str  # relative to the repository root; '' is the root
    commit: str
    label: str  # folder@commit, the report's source
    report: Report | None = None
    code: ExitCode | None = None  # INPUT_ERROR or NOTHING_SCANNED when there is no report
    message: str | None = None
    fail_on: str = DEFAULT_FAIL_ON  # --fail-on, else the folder's configuration's fail-on, else error
    excluded: str | None = None  # "FILE: KEY 'pattern'" when the configuration excludes the folder (not judged)

    @property
    def threshold(self) -> Severity | None:
        return FAIL_ON[self.fail_on]

    def exit_code(self) -> ExitCode:
        """OK, FINDINGS (a finding that counts, at or above the folder's fail-on), or the error's code."""
        if self.excluded is not None:
            return ExitCode.OK
        if self.report is None:
            return self.code or ExitCode.INPUT_ERROR
        threshold = self.threshold
        worst = self.report.worst()
        return ExitCode.FINDINGS if threshold is not None and worst is not None and worst >= threshold else ExitCode.OK


def overall_exit_code(results: Iterable[FolderResult]) -> ExitCode:
    """The worst folder's code, each at its own fail-on; a push without checkpoint folders has nothing wrong in it."""
    return max((r.exit_code() for r in results), default=ExitCode.OK)


def label_for(folder: str, commit: str) -> str:
    return f"{folder or '.'}@{commit[:12]}"


def checkpoint_folders(entries: list[TreeEntry], paths: Iterable[str] | None, *, filter_paths: bool = True) -> list[str]:
    """Folders (in ENTRIES' tree) to judge for PATHS; None means every checkpoint folder of the tree."""
    present = {e.folder for e in entries if CHECKPOINT_FILES.search(e.path)}
    if paths is None:
        return sorted(present)
    wanted = set()
    for path in paths:
        if filter_paths and not CHECKPOINT_FILES.search(path):
            continue
        wanted.add(path.rpartition("/")[0])
    return sorted(wanted & present)


def repo_relative(repo: Repo, names: Iterable[str], cwd: Path | None = None) -> list[str]:
    """File names as given on the command line (relative to CWD, or absolute) -> POSIX paths from the repo root."""
    root = os.path.realpath(repo.root)
    out = []
    for name in names:
        full = os.path.join(cwd or os.getcwd(), name)
        real = os.path.join(os.path.realpath(os.path.dirname(full)), os.path.basename(full))
        rel = os.path.relpath(real, root)
        if rel == os.pardir or rel.startswith(os.pardir + os.sep):
            raise InputError(f"{name}: outside the repository {repo.root}")
        out.append(Path(rel).as_posix())
    return out


def resolve_hook_commit(repo: Repo, env: Mapping[str, str], ref: str | None = None) -> tuple[str, str]:
    """(sha, where it came from) of the commit hook mode judges."""
    for rev, source in hook_commit_candidates(env, ref):
        sha = repo.commit(rev)
        if sha:
            return sha, source if source == "HEAD" else f"{source}={rev}"
        if source in ("--ref", "PRE_COMMIT_TO_REF"):
            raise GitError(f"{source} {rev!r} names no commit in {repo.root}")
    raise NothingScannedError(f"{repo.root}: no commit yet, nothing to judge")


class Checker:
    """Scans folders of commits of one repository, each distinct folder content once."""

    def __init__(self, repo: Repo, head_type: str | None = None, configs: CommitConfigs | None = None,
                 fail_on: str | None = None):
        self.repo = repo
        self.head_type = head_type
        self.configs = configs or CommitConfigs(repo)  # default: each commit's own configuration
        self.fail_on = fail_on  # --fail-on; None: each folder's configuration decides
        self.lfs_objects = objects_dir(repo)
        self._trees: dict[str, list[TreeEntry]] = {}
        self._seen: set[tuple] = set()

    def tree(self, commit: str) -> list[TreeEntry]:
        if commit not in self._trees:
            self._trees[commit] = self.repo.ls_tree(commit)
        return self._trees[commit]

    def check_target(self, target: Target) -> list[FolderResult]:
        paths = None if target.base is None else self.repo.changed_paths(target.base, target.commit)
        return self.check_commit(target.commit, paths)

    def check_commit(self, commit: str, paths: Iterable[str] | None, *, filter_paths: bool = True) -> list[FolderResult]:
        entries = self.tree(commit)
        by_folder: dict[str, list[TreeEntry]] = {}
        for entry in entries:
            by_folder.setdefault(entry.folder, []).append(entry)
        results = []
        for folder in checkpoint_folders(entries, paths, filter_paths=filter_paths):
            files = by_folder[folder]
            folder_policy, path = self.configs.policy_for(commit, folder, entries)
            content = (folder, tuple(sorted((e.name, e.oid) for e in files)), folder_policy.settings())
            if content in self._seen:  # the same folder, unchanged, under the same configuration, on several refs
                continue
            self._seen.add(content)
            fail_on = folder_policy.fail_on(self.fail_on)
            if pattern := folder_policy.excluded_by(path):
                config = folder_policy.config
                results.append(FolderResult(folder, commit, label_for(folder, commit), fail_on=fail_on,
                                            excluded=f"{config.file}: {config.key('exclude')} {pattern!r}"))
                continue
            result = self.check_folder(folder, commit, files)
            if result.report is not None:
                result = replace(result, report=folder_policy.apply(result.report, path))
            results.append(replace(result, fail_on=fail_on))
        return results

    def check_folder(self, folder: str, commit: str, files: list[TreeEntry]) -> FolderResult:
        label = label_for(folder, commit)
        with tempfile.TemporaryDirectory(prefix="headcheck-hook-") as tmp:
            try:
                with self.repo.blobs() as blobs:
                    done = materialize(blobs, files, Path(tmp) / "checkpoint", self.lfs_objects)
                report = self._scan(done, label)
            except InputError as exc:
                return FolderResult(folder, commit, label, code=ExitCode.INPUT_ERROR, message=_relabel(exc, tmp, label))
            except NothingScannedError as exc:
                return FolderResult(folder, commit, label, code=ExitCode.NOTHING_SCANNED, message=_relabel(exc, tmp, label))
        return FolderResult(folder, commit, label, report=report)

    def _scan(self, done: Materialized, label: str) -> Report:
        skipped = tuple(lfs_findings(done.skipped))
        folder = LocalFolder(done.path)
        folder.label = label  # messages and the report name the folder in the repository, not the temp copy
        try:
            facts = build_facts_from(folder)
        except NothingScannedError:
            if not skipped:
                raise
            # all there was to judge is an LFS pointer without its object: report that, never "nothing wrong"
            facts = Facts(root=label, files=tuple(sorted(s.name for s in done.skipped)), docs=MappingProxyType({}),
                          weights=MappingProxyType({}), weight_files=MappingProxyType({}))
        return scan_facts(replace(facts, read_findings=(*facts.read_findings, *skipped)), self.head_type)


def lfs_findings(skipped: Iterable[Skipped]) -> Iterable[Finding]:
    hint = "run `git lfs fetch` (or `git lfs pull`) so the object is in the local LFS store, then push again"
    for item in skipped:
        if not CHECKPOINT_FILES.search(item.name):
            continue  # tokenizer files, cards, ...: not judged anyway
        if item.pointer is None:
            message = (f"{item.name}: shards {', '.join(item.shards)} are git-LFS pointers without a local object; "
                       "the sharded weights were not checked")
        else:
            what = "weight checks skipped" if not item.name.endswith(".json") else "not checked"
            message = (f"{item.name} is a git-LFS pointer and its object (sha256:{item.pointer.oid[:12]}, "
                       f"{item.pointer.size} bytes) is not in the local LFS store; {what}")
        yield finding("HC125", message, file=item.name, hint=hint)


def _relabel(exc: Exception, tmp: str, label: str) -> str:
    message = str(exc).replace(str(Path(tmp) / "checkpoint"), label).replace(tmp, label)
    return message.removeprefix(f"{label}: ")  # the output names the folder first already
