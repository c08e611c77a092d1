"""The hook through the real pre-commit tool, as users get it: `.pre-commit-hooks.yaml` from a git repository.

The headcheck sources are committed into a throwaway repository that a model repository's
`.pre-commit-config.yaml` points at; `pre-commit install --hook-type pre-push` and a real `git push` then run
it (pre-commit builds its own virtualenv and pip-installs headcheck into it, so PYTHONPATH is not passed on).
Shown: a broken checkpoint is refused naming the rule, a good one goes through, LFS pointers without objects go
through with HC125, and without PRE_COMMIT_TO_REF (a root-commit push, `--all-files`) the pushed branch or
HEAD is judged, never the working tree.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO
from pre_commit.clientlib import load_manifest
from test_githook import BROKEN, GOOD, ModelRepo, git_env

from headcheck.hooks.prepush import CHECKPOINT_FILES

MANIFEST = REPO / ".pre-commit-hooks.yaml"
SOURCE_PARTS = ("pyproject.toml", "README.md", ".pre-commit-hooks.yaml", "headcheck", "rules")


def test_manifest_is_valid_and_matches_hook_mode():
    (hook,) = load_manifest(str(MANIFEST))  # pre-commit's own schema check
    assert hook["id"] == "headcheck"
    assert hook["language"] == "python" and hook["entry"] == "headcheck hook run"
    assert hook["stages"] == ["pre-push", "manual"]
    assert hook["require_serial"] is True and hook["pass_filenames"] is True
    assert hook["files"] == CHECKPOINT_FILES.pattern  # one pattern, two places


@pytest.fixture(scope="module")
def hook_repo(tmp_path_factory) -> tuple[Path, str, Path]:
    """(a git repository holding this checkout's headcheck, its commit, a PRE_COMMIT_HOME for the module)."""
    root = tmp_path_factory.mktemp("precommit")
    source = root / "headcheck-src"
    source.mkdir()
    for part in SOURCE_PARTS:
        if (REPO / part).is_dir():
            shutil.copytree(REPO / part, source / part, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(REPO / part, source / part)
    env = git_env(root)
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "headcheck under test"]):
        subprocess.run(["git", *args], cwd=source, env=env, check=True, capture_output=True)
    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=source, env=env, check=True, capture_output=True,
                         text=True).stdout.strip()
    return source, sha, root / "pre-commit-home"


class PreCommitRepo(ModelRepo):
    def __init__(self, root: Path, hook_repo: tuple[Path, str, Path]):
        super().__init__(root)
        source, sha, home = hook_repo
        self.env.pop("PYTHONPATH", None)  # the hook must run from pre-commit's own environment
        self.env["PRE_COMMIT_HOME"] = str(home)
        (self.work / ".pre-commit-config.yaml").write_text(
            f"repos:\n- repo: {source}\n  rev: {sha}\n  hooks:\n  - id: headcheck\n    verbose: true\n"
        )

    def pre_commit(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.run(sys.executable, "-m", "pre_commit", *args, check=check, timeout=600)


@pytest.mark.slow
def test_pre_push_through_pre_commit(tmp_path, hook_repo):
    repo = PreCommitRepo(tmp_path, hook_repo)
    repo.pre_commit("install", "--hook-type", "pre-push")
    repo.pre_commit("install-hooks")  # builds the virtualenv once, outside any push
    assert "pre-commit" in (repo.work / ".git" / "hooks" / "pre-push").read_text()

    repo.put("models/good", GOOD)
    first = repo.commit("good")
    done = repo.push()  # a root commit: pre-commit gives no PRE_COMMIT_TO_REF, only the local branch
    assert done.returncode == 0, done.stdout
    assert "headcheck" in done.stdout and "Passed" in done.stdout
    assert f"models/good@{first[:12]}: convertible" in done.stdout and "PRE_COMMIT_LOCAL_BRANCH" in done.stdout
    assert repo.remote_has(first)

    repo.put("models/bad", BROKEN)
    bad = repo.commit("broken")
    done = repo.push()
    assert done.returncode != 0, done.stdout
    assert "Failed" in done.stdout and "HC102" in done.stdout and "declares 3 labels" in done.stdout
    assert "PRE_COMMIT_TO_REF" in done.stdout and "models/good@" not in done.stdout  # only what changed
    assert not repo.remote_has(bad)

    repo.git("reset", "-q", "--hard", first)
    repo.put("models/lfs", "lfs-pointer-weights")
    lfs = repo.commit("weights in LFS, object not here")
    done = repo.push()
    assert done.returncode == 0, done.stdout
    assert "HC125 warning (model.safetensors)" in done.stdout and "weight checks skipped" in done.stdout
    assert repo.remote_has(lfs)

    # --all-files / manual stage: no PRE_COMMIT_TO_REF, HEAD is judged; the working tree does not count
    repo.put("models/good", BROKEN)  # broken on disk only
    manual = repo.pre_commit("run", "headcheck", "--hook-stage", "manual", "--all-files", check=False)
    assert manual.returncode == 0, manual.stdout
    assert f"({'HEAD'})" in manual.stdout and f"models/good@{lfs[:12]}: convertible" in manual.stdout
    # an explicit range is judged at --to-ref, which pre-commit hands over as PRE_COMMIT_TO_REF
    repo.commit("broken for real")
    ranged = repo.pre_commit("run", "headcheck", "--hook-stage", "pre-push", "--from-ref", first, "--to-ref", lfs,
                             check=False)
    assert ranged.returncode == 0, ranged.stdout
    assert f"models/lfs@{lfs[:12]}" in ranged.stdout
    head = repo.pre_commit("run", "headcheck", "--hook-stage", "pre-push", "--from-ref", lfs, "--to-ref", "HEAD",
                           check=False)
    assert head.returncode == 1 and "HC102" in head.stdout, head.stdout


@pytest.mark.slow
def test_pre_commit_honours_the_pushed_commits_configuration(tmp_path, hook_repo):
    """[tool.headcheck] of the pushed commit: ignores and excludes; a malformed one fails the hook (exit code 4)."""
    repo = PreCommitRepo(tmp_path, hook_repo)
    repo.pre_commit("install", "--hook-type", "pre-push")
    repo.put("models/bad", BROKEN)
    repo.put("models/legacy/old", BROKEN)
    (repo.work / "pyproject.toml").write_text('[tool.headcheck]\nexclude = ["legacy"]\n\n[tool.headcheck.per-path-ignores]\n'
                                              '"models/bad" = ["HC102"]\n')
    sha = repo.commit("ignored and excluded")
    done = repo.push()
    assert done.returncode == 0, done.stdout
    assert "Passed" in done.stdout and f"models/bad@{sha[:12]}: not-convertible" in done.stdout
    assert f"1 finding ignored (config pyproject.toml@{sha[:12]}: HC102)" in done.stdout
    assert f"models/legacy/old@{sha[:12]}: not judged: excluded by pyproject.toml@{sha[:12]}" in done.stdout
    assert repo.remote_has(sha)

    (repo.work / "pyproject.toml").write_text('[tool.headcheck]\nignore = "HC102"\n')
    repo.put("models/good", GOOD)  # a checkpoint file changes, so pre-commit runs the hook
    bad = repo.commit("malformed configuration")
    done = repo.push()
    assert done.returncode != 0 and not repo.remote_has(bad), done.stdout
    assert "Failed" in done.stdout and "exit code: 4" in done.stdout
    assert (f"headcheck: config error: pyproject.toml@{bad[:12]}: tool.headcheck.ignore: 'HC102' is not of type "
            "'array'") in done.stdout

    # hook arguments from .pre-commit-config.yaml reach `headcheck hook run`
    config = repo.work / ".pre-commit-config.yaml"
    config.write_text(config.read_text() + "    args: [--no-config]\n")
    last = repo.commit("no configuration for headcheck")
    done = repo.push()
    assert done.returncode == 0, done.stdout
    assert f"models/good@{last[:12]}: convertible" in done.stdout and repo.remote_has(last)
