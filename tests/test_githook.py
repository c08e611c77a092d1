"""Hook mode judges what is pushed: real git repositories, a bare remote, the installed native pre-push hook.

* a push of a broken checkpoint is refused and names the rule; a good one goes through;
* the commit is judged, not the working tree; a new branch is judged on its whole tree, an update on the
  checkpoint folders it changes, a deletion not at all; several refs in one push;
* git-LFS pointers: with the object in the local store the real weights are read (a symlink, no copy),
  without it the weights are skipped with HC125 and the push goes through;
* `headcheck hook run` (the pre-commit entry) picks PRE_COMMIT_TO_REF, PRE_COMMIT_LOCAL_BRANCH, then HEAD;
* install/uninstall touch only our hook, honour core.hooksPath and keep a forced-over hook running;
* pre-push stdin parsing: zeros, deletions, several refs, empty input.

The helpers here (ModelRepo, git_env) are shared with test_precommit.py.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import CHECKPOINTS, REPO

from headcheck.hooks import prepush as githook
from headcheck.errors import InputError
from headcheck.exitcodes import ExitCode
from headcheck.hooks.install import MARKER
from headcheck.hooks.push import PushedRef, parse_pre_push, push_targets
from headcheck.hooks.repo import Repo
from headcheck.hooks.tree import materialize

Z40 = "0" * 40
GOOD, BROKEN = "bert-seq-cls", "bert-seq-cls-label-mismatch"
HAS_GIT_LFS = shutil.which("git-lfs") is not None


def git_env(tmp: Path) -> dict[str, str]:
    """An environment isolated from the user's git config (and from a hook we may be running inside)."""
    gitconfig = tmp / "gitconfig"
    if not gitconfig.exists():
        gitconfig.write_text("[user]\n\tname = headcheck tests\n\temail = tests@example.invalid\n"
                             "[init]\n\tdefaultBranch = main\n[advice]\n\tdetachedHead = false\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "PRE_COMMIT"))}
    env.update(GIT_CONFIG_GLOBAL=str(gitconfig), GIT_CONFIG_NOSYSTEM="1", GIT_TERMINAL_PROMPT="0")
    env.pop("NO_COLOR", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    return env


def lfs_pointer(data: bytes) -> tuple[str, bytes]:
    oid = hashlib.sha256(data).hexdigest()
    return oid, f"version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {len(data)}\n".encode()


class ModelRepo:
    """A working repository `work` whose `origin` is the bare repository `remote.git`."""

    def __init__(self, root: Path):
        self.root = root
        self.env = git_env(root)
        self.remote = root / "remote.git"
        self.work = root / "work"
        self.run("git", "init", "-q", "--bare", str(self.remote), cwd=root)
        self.run("git", "init", "-q", str(self.work), cwd=root)
        self.git("remote", "add", "origin", str(self.remote))

    def run(self, *args: str, cwd: Path | None = None, check: bool = True, input: str | None = None,
            env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
        done = subprocess.run(list(args), cwd=cwd or self.work, env={**self.env, **(env or {})}, input=input,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout, check=False)
        if check and done.returncode != 0:
            raise AssertionError(f"{args} exited {done.returncode}:\n{done.stdout}")
        return done

    def git(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        return self.run("git", *args, **kwargs)

    def headcheck(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        return self.run(sys.executable, "-m", "headcheck", *args, **kwargs)

    def put(self, folder: str, fixture: str) -> Path:
        """Replace work/FOLDER by a copy of a committed fixture checkpoint."""
        target = self.work / folder
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(CHECKPOINTS / fixture, target)
        return target

    def commit(self, message: str = "change") -> str:
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.sha("HEAD")

    def sha(self, rev: str) -> str:
        return self.git("rev-parse", rev).stdout.strip()

    def push(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        return self.git("push", "origin", *(args or ("main",)), check=False, **kwargs)

    def remote_has(self, sha: str) -> bool:
        return self.run("git", "cat-file", "-e", f"{sha}^{{commit}}", cwd=self.remote, check=False).returncode == 0

    def pre_push(self, stdin: str, *args: str) -> subprocess.CompletedProcess:
        """The hook command as git runs it, without git."""
        return self.headcheck("hook", "pre-push", "origin", str(self.remote), *args, input=stdin, check=False)


@pytest.fixture
def repo(tmp_path) -> ModelRepo:
    return ModelRepo(tmp_path)


@pytest.fixture
def hooked(repo) -> ModelRepo:
    repo.headcheck("hook", "install", "--repo", str(repo.work))
    return repo


def _refused(done: subprocess.CompletedProcess, rule: str) -> None:
    assert done.returncode != 0, done.stdout
    assert rule in done.stdout, done.stdout
    assert "push refused" in done.stdout, done.stdout
    assert "Traceback" not in done.stdout, done.stdout


def _accepted(done: subprocess.CompletedProcess) -> None:
    assert done.returncode == 0, done.stdout
    assert "Traceback" not in done.stdout, done.stdout


# ---------------------------------------------------------------------------------------------- native hook, end to end


def test_push_of_a_good_checkpoint_goes_through(hooked):
    hooked.put("models/good", GOOD)
    sha = hooked.commit()
    done = hooked.push()
    _accepted(done)
    assert "models/good@" in done.stdout and "convertible" in done.stdout
    assert hooked.remote_has(sha)


def test_push_of_a_broken_checkpoint_is_refused_naming_the_rule(hooked):
    hooked.put("models/good", GOOD)
    hooked.commit()
    _accepted(hooked.push())
    hooked.put("models/bad", BROKEN)
    sha = hooked.commit()
    done = hooked.push()
    _refused(done, "HC102")
    assert "models/bad@" in done.stdout and "declares 3 labels" in done.stdout
    assert "models/good@" not in done.stdout  # an update is judged on the folders it changes
    assert not hooked.remote_has(sha)
    _accepted(hooked.push("--no-verify", "main"))  # git's own escape hatch still works


def test_the_pushed_commit_is_judged_not_the_working_tree(hooked):
    hooked.put("models/m", BROKEN)
    broken = hooked.commit()
    hooked.put("models/m", GOOD)  # fixed on disk, not committed
    _refused(hooked.push(), "HC102")
    assert not hooked.remote_has(broken)
    fixed = hooked.commit("fix")
    hooked.put("models/m", BROKEN)  # broken on disk again, not committed
    _accepted(hooked.push())
    assert hooked.remote_has(fixed)


def test_lfs_pointer_without_local_object_goes_through_with_a_warning(hooked):
    """The pointer hides a label-count mismatch that cannot be seen without the weights: HC125, never HC102."""
    hooked.put("models/lfs", "lfs-pointer-weights")
    sha = hooked.commit()
    done = hooked.push()
    _accepted(done)
    assert "HC125 warning (model.safetensors)" in done.stdout
    assert "is not in the local LFS store; weight checks skipped" in done.stdout
    assert "HC102" not in done.stdout and "error" not in done.stdout
    assert "none failed (see the warnings above)" in done.stdout
    assert hooked.remote_has(sha)
    # --fail-on warning makes the skipped check fail the push
    hooked.headcheck("hook", "install", "--repo", str(hooked.work), "--fail-on", "warning")
    hooked.put("models/lfs2", "lfs-pointer-weights")
    hooked.commit()
    _refused(hooked.push(), "HC125")


def test_lfs_pointer_with_the_object_in_the_local_store_is_scanned(hooked):
    """Pointer committed by hand, object placed where git-lfs keeps it: the real weights reveal HC102."""
    folder = hooked.put("models/lfs", BROKEN)
    weights = (folder / "model.safetensors").read_bytes()
    oid, pointer = lfs_pointer(weights)
    (folder / "model.safetensors").write_bytes(pointer)
    obj = hooked.work / ".git" / "lfs" / "objects" / oid[:2] / oid[2:4] / oid
    obj.parent.mkdir(parents=True)
    obj.write_bytes(weights)
    hooked.commit()
    done = hooked.push()
    _refused(done, "HC102")
    assert "HC125" not in done.stdout


def test_lfs_object_of_the_wrong_size_counts_as_missing(repo):
    folder = repo.put("m", GOOD)
    weights = (folder / "model.safetensors").read_bytes()
    oid, pointer = lfs_pointer(weights)
    (folder / "model.safetensors").write_bytes(pointer)
    obj = repo.work / ".git" / "lfs" / "objects" / oid[:2] / oid[2:4] / oid
    obj.parent.mkdir(parents=True)
    obj.write_bytes(weights[:-1])  # an interrupted download
    sha = repo.commit()
    done = repo.pre_push(f"refs/heads/main {sha} refs/heads/main {Z40}\n")
    assert done.returncode == ExitCode.OK, done.stdout
    assert "HC125" in done.stdout


@pytest.mark.skipif(not HAS_GIT_LFS, reason="git-lfs is not installed (.ci/run installs it)")
def test_real_git_lfs_objects_are_read_and_its_hook_keeps_running(repo):
    """git-lfs' own pre-push hook is in place: install needs --force, keeps it, and runs it after headcheck."""
    repo.git("lfs", "install", "--local")
    repo.git("lfs", "track", "*.safetensors")
    lfs_hook = repo.work / ".git" / "hooks" / "pre-push"
    assert "git lfs pre-push" in lfs_hook.read_text()
    refused = repo.headcheck("hook", "install", "--repo", str(repo.work), check=False)
    assert refused.returncode == ExitCode.USAGE and "git-lfs' pre-push hook" in refused.stdout
    assert "--force" in refused.stdout
    repo.headcheck("hook", "install", "--repo", str(repo.work), "--force")
    repo.put("models/bad", BROKEN)
    repo.commit()
    assert repo.git("cat-file", "-p", "HEAD:models/bad/model.safetensors").stdout.startswith("version https://git-lfs")
    _refused(repo.push(), "HC102")

    repo.git("rm", "-rq", "models/bad")
    repo.put("models/good", GOOD)
    sha = repo.commit()
    done = repo.push()
    _accepted(done)
    assert "convertible" in done.stdout and repo.remote_has(sha)
    oid = repo.git("lfs", "ls-files", "--long").stdout.split()[0]
    assert (repo.remote / "lfs" / "objects" / oid[:2] / oid[2:4] / oid).is_file(), "git-lfs' hook did not upload"

    repo.headcheck("hook", "uninstall", "--repo", str(repo.work))
    assert "git lfs pre-push" in lfs_hook.read_text()  # put back


def test_new_branch_is_judged_on_its_whole_tree_updates_on_what_they_change(hooked):
    hooked.put("models/bad", BROKEN)
    hooked.put("models/good", GOOD)
    hooked.commit()
    _accepted(hooked.push("--no-verify", "main"))  # the broken folder is on the remote already
    hooked.put("models/other", GOOD)
    hooked.commit()
    update = hooked.push()
    _accepted(update)  # only models/other changed
    assert "models/other@" in update.stdout and "models/bad@" not in update.stdout
    hooked.git("checkout", "-q", "-b", "feature")
    new_branch = hooked.push("feature")
    _refused(new_branch, "HC102")  # a new branch: every checkpoint folder of the tree
    assert "new branch: whole tree" in new_branch.stdout
    assert all(f"models/{name}@" in new_branch.stdout for name in ("bad", "good", "other"))


def test_deleting_a_branch_is_not_judged_and_several_refs_are(hooked):
    hooked.put("models/bad", BROKEN)
    hooked.commit()
    hooked.git("branch", "broken")
    _accepted(hooked.push("--no-verify", "main", "broken"))
    deletion = hooked.push("--delete", "broken")
    _accepted(deletion)
    assert "no checkpoint folders to judge" in deletion.stdout

    hooked.git("checkout", "-q", "-b", "one")
    hooked.git("rm", "-rq", "models/bad")
    hooked.put("models/a", GOOD)
    hooked.commit()
    hooked.git("checkout", "-q", "-b", "two")
    hooked.put("models/b", BROKEN)
    hooked.commit()
    done = hooked.push("one", "two")
    _refused(done, "HC102")
    assert "refs/heads/one (new branch" in done.stdout and "refs/heads/two (new branch" in done.stdout
    assert done.stdout.count("models/a@") == 1  # the same folder content on both refs is scanned once


def test_deleted_checkpoint_leaves_nothing_to_judge(hooked):
    hooked.put("models/bad", BROKEN)
    hooked.commit()
    _accepted(hooked.push("--no-verify", "main"))
    hooked.git("rm", "-q", "models/bad/config.json", "models/bad/model.safetensors")
    (hooked.work / "models" / "bad" / "notes.txt").parent.mkdir(parents=True, exist_ok=True)
    (hooked.work / "models" / "bad" / "notes.txt").write_text("retired\n")
    hooked.commit()
    done = hooked.push()
    _accepted(done)
    assert "no checkpoint folders to judge" in done.stdout


def test_sharded_weights_with_a_missing_lfs_shard_are_skipped_whole(repo):
    folder = repo.put("sharded", "sharded")
    shard = folder / "model-00002-of-00002.safetensors"
    shard.write_bytes(lfs_pointer(shard.read_bytes())[1])
    sha = repo.commit()
    done = repo.pre_push(f"refs/heads/main {sha} refs/heads/main {Z40}\n")
    assert done.returncode == ExitCode.OK, done.stdout
    assert "model.safetensors.index.json: shards model-00002-of-00002.safetensors are git-LFS pointers" in done.stdout
    assert "HC115" in done.stdout  # judged from the config alone, as it says
    assert "is missing" not in done.stdout  # not reported as a broken checkpoint


@pytest.mark.parametrize(("fixture", "code", "text"), [
    (GOOD, ExitCode.OK, "convertible"),
    (BROKEN, ExitCode.FINDINGS, "HC102"),
    ("invalid-config", ExitCode.INPUT_ERROR, "sub@"),
    ("mlx-adapter", ExitCode.NOTHING_SCANNED, "nothing scanned"),
])
def test_hook_exit_codes_follow_the_contract(repo, fixture, code, text):
    repo.put("sub", fixture)
    sha = repo.commit()
    done = repo.pre_push(f"refs/heads/main {sha} refs/heads/main {Z40}\n")
    assert done.returncode == code, done.stdout
    assert text in done.stdout and "Traceback" not in done.stdout
    assert "headcheck-hook-" not in done.stdout  # folders are named as in the repository, never by the temp copy


def test_worst_folder_decides_and_every_folder_is_printed(repo):
    repo.put("a", GOOD)
    repo.put("b", "invalid-config")
    repo.put("c", BROKEN)
    sha = repo.commit()
    done = repo.pre_push(f"refs/heads/main {sha} refs/heads/main {Z40}\n")
    assert done.returncode == ExitCode.INPUT_ERROR, done.stdout
    assert all(f"{name}@{sha[:12]}" in done.stdout for name in "abc")
    assert "3 of 3" not in done.stdout and "2 of 3 checkpoint folder(s) failed" in done.stdout


def test_empty_stdin_and_deletions_only_judge_nothing(repo):
    repo.put("m", BROKEN)
    sha = repo.commit()
    for stdin in ("", "\n", f"(delete) {Z40} refs/heads/gone {sha}\n"):
        done = repo.pre_push(stdin)
        assert done.returncode == ExitCode.OK, done.stdout
        assert "no checkpoint folders to judge" in done.stdout


def test_remote_commit_unknown_here_means_whole_tree(repo):
    repo.put("m", BROKEN)
    sha = repo.commit()
    done = repo.pre_push(f"refs/heads/main {sha} refs/heads/main {'1' * 40}\n")
    assert done.returncode == ExitCode.FINDINGS, done.stdout
    assert "not here: whole tree" in done.stdout


def test_malformed_stdin_is_an_input_error(repo):
    done = repo.pre_push("refs/heads/main not-a-sha\n")
    assert done.returncode == ExitCode.INPUT_ERROR, done.stdout
    assert done.stdout.startswith("headcheck: error: pre-push stdin line 1")


# ---------------------------------------------------------------------------------------------- hook run (pre-commit entry)


def test_hook_run_judges_pre_commit_to_ref_then_local_branch_then_head(repo):
    repo.put("m", GOOD)
    good = repo.commit()
    repo.git("branch", "good")
    repo.put("m", BROKEN)
    repo.commit()
    files = ("m/config.json", "m/model.safetensors")
    head = repo.headcheck("hook", "run", *files, check=False)
    assert head.returncode == ExitCode.FINDINGS and "HC102" in head.stdout and "(HEAD)" in head.stdout
    to_ref = repo.headcheck("hook", "run", *files, check=False,
                            env={"PRE_COMMIT_TO_REF": good, "PRE_COMMIT_FROM_REF": Z40})
    assert to_ref.returncode == ExitCode.OK, to_ref.stdout
    assert f"m@{good[:12]}: convertible" in to_ref.stdout and "PRE_COMMIT_TO_REF" in to_ref.stdout
    branch = repo.headcheck("hook", "run", *files, check=False, env={"PRE_COMMIT_LOCAL_BRANCH": "refs/heads/good"})
    assert branch.returncode == ExitCode.OK and "PRE_COMMIT_LOCAL_BRANCH" in branch.stdout
    explicit = repo.headcheck("hook", "run", "--ref", "good", "m/config.json", check=False)
    assert explicit.returncode == ExitCode.OK, explicit.stdout
    unknown = repo.headcheck("hook", "run", "--ref", "nope", "m/config.json", check=False)
    assert unknown.returncode == ExitCode.INPUT_ERROR and "names no commit" in unknown.stdout


def test_hook_run_maps_files_to_folders_once_and_ignores_files_not_in_the_commit(repo):
    repo.put("m", BROKEN)
    repo.put("n", GOOD)
    repo.commit()
    (repo.work / "new").mkdir()
    (repo.work / "new" / "config.json").write_text("{}")  # not committed: not pushed, not judged
    done = repo.headcheck("hook", "run", "m/config.json", "m/model.safetensors", "new/config.json", check=False)
    assert done.returncode == ExitCode.FINDINGS, done.stdout
    assert done.stdout.count("m@") == 1 and "n@" not in done.stdout and "new@" not in done.stdout
    everything = repo.headcheck("hook", "run", check=False)  # no files: every checkpoint folder
    assert "m@" in everything.stdout and "n@" in everything.stdout
    sub = repo.headcheck("hook", "run", "config.json", cwd=repo.work / "m", check=False)  # names relative to cwd
    assert sub.returncode == ExitCode.FINDINGS and "m@" in sub.stdout


def test_hook_run_outside_a_repository_is_an_input_error(tmp_path):
    env = git_env(tmp_path)
    env["GIT_CEILING_DIRECTORIES"] = str(tmp_path)
    done = subprocess.run([sys.executable, "-m", "headcheck", "hook", "run", "x/config.json"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == ExitCode.INPUT_ERROR
    assert "not a git repository" in done.stderr


# ---------------------------------------------------------------------------------------------- install / uninstall


def test_install_writes_an_executable_hook_and_uninstall_removes_only_it(repo):
    path = repo.work / ".git" / "hooks" / "pre-push"
    done = repo.headcheck("hook", "install", "--repo", str(repo.work))
    assert str(path) in done.stdout
    text = path.read_text()
    assert text.startswith("#!/bin/sh\n") and MARKER in text
    assert "-m headcheck hook pre-push" in text and sys.executable in text
    assert path.stat().st_mode & stat.S_IXUSR
    repo.headcheck("hook", "install", "--repo", str(repo.work))  # reinstalling our own hook is fine
    repo.headcheck("hook", "uninstall", "--repo", str(repo.work))
    assert not path.exists()
    again = repo.headcheck("hook", "uninstall", "--repo", str(repo.work))
    assert "nothing to remove" in again.stdout


def test_install_refuses_a_foreign_hook_unless_forced_and_keeps_it_running(repo):
    hooks = repo.work / ".git" / "hooks"
    foreign = hooks / "pre-push"
    log = repo.root / "foreign.log"
    foreign.write_text(f"#!/bin/sh\ncat >> '{log}'\necho foreign-hook-ran \"$1\"\n")
    foreign.chmod(0o755)
    refused = repo.headcheck("hook", "install", "--repo", str(repo.work), check=False)
    assert refused.returncode == ExitCode.USAGE, refused.stdout
    assert "a pre-push hook not written by headcheck" in refused.stdout and "--force" in refused.stdout
    assert "foreign-hook-ran" in foreign.read_text()
    assert repo.headcheck("hook", "uninstall", "--repo", str(repo.work), check=False).returncode == ExitCode.USAGE
    assert foreign.exists()

    forced = repo.headcheck("hook", "install", "--repo", str(repo.work), "--force")
    assert "pre-push.headcheck-saved" in forced.stdout
    repo.put("m", GOOD)
    sha = repo.commit()
    done = repo.push()
    _accepted(done)
    assert "convertible" in done.stdout and "foreign-hook-ran origin" in done.stdout
    assert log.read_text().split() == ["refs/heads/main", sha, "refs/heads/main", Z40]  # same stdin as ours

    repo.headcheck("hook", "uninstall", "--repo", str(repo.work))
    assert "foreign-hook-ran" in foreign.read_text() and not (hooks / "pre-push.headcheck-saved").exists()


def test_install_honours_core_hooks_path(hooked):
    hooked.headcheck("hook", "uninstall", "--repo", str(hooked.work))
    hooked.git("config", "core.hooksPath", ".githooks")
    done = hooked.headcheck("hook", "install", "--repo", str(hooked.work))
    assert str(hooked.work / ".githooks" / "pre-push") in done.stdout
    assert not (hooked.work / ".git" / "hooks" / "pre-push").exists()
    hooked.put("m", BROKEN)
    hooked.commit()
    _refused(hooked.push(), "HC102")


def test_install_outside_a_repository_is_a_usage_error(tmp_path):
    """Issue 14: not being in a repository is how the command was called (4), not unreadable input (2)."""
    env = git_env(tmp_path)
    env["GIT_CEILING_DIRECTORIES"] = str(tmp_path)
    done = subprocess.run([sys.executable, "-m", "headcheck", "hook", "install", "--repo", str(tmp_path)],
                          env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == ExitCode.USAGE and "not a git repository" in done.stderr


# ---------------------------------------------------------------------------------------------- units


def test_parse_pre_push_lines():
    a, b = "a" * 40, "b" * 40
    assert parse_pre_push("") == ()
    assert parse_pre_push("\n\n") == ()
    refs = parse_pre_push(f"refs/heads/new {a} refs/heads/new {Z40}\n"
                          f"(delete) {Z40} refs/heads/old {b}\n"
                          f"refs/heads/main {a} refs/heads/main {b}\n"
                          f"HEAD~1 {b} refs/tags/v1 {Z40}")
    assert [r.local_ref for r in refs] == ["refs/heads/new", "(delete)", "refs/heads/main", "HEAD~1"]
    assert [(r.is_new, r.is_deletion) for r in refs] == [(True, False), (False, True), (False, False), (True, False)]
    sha256 = "c" * 64  # sha256 repositories
    assert parse_pre_push(f"refs/heads/x {sha256} refs/heads/x {'0' * 64}")[0].is_new
    for bad in ("refs/heads/main", f"refs/heads/main {a} refs/heads/main", f"a {a} b xyz", f"a {a.upper()} b {b}"):
        with pytest.raises(InputError, match="pre-push stdin line 1"):
            parse_pre_push(bad)


def test_push_targets():
    a, b, c = "a" * 40, "b" * 40, "c" * 40
    refs = (
        PushedRef("refs/heads/new", a, "refs/heads/new", Z40),
        PushedRef("(delete)", Z40, "refs/heads/old", b),
        PushedRef("refs/heads/main", a, "refs/heads/main", b),
        PushedRef("refs/heads/x", c, "refs/heads/x", "d" * 40),
    )
    targets = push_targets(refs, known=lambda sha: sha == b)
    assert [(t.commit, t.base) for t in targets] == [(a, None), (a, b), (c, None)]
    assert push_targets((), known=lambda sha: True) == []


def test_checkpoint_file_pattern():
    yes = ["config.json", "m/config.json", "a/b/adapter_config.json", "head_config.json", "model.safetensors",
           "x/model-00001-of-00002.safetensors", "pytorch_model.bin", "m/model.safetensors.index.json",
           "pytorch_model.bin.index.json", "adapter_model.bin"]
    no = ["tokenizer.json", "m/myconfig.json", "config.json.bak", "README.md", "m/generation_config.json",
          "vocab.txt", "model.safetensors/readme.txt"]
    assert [p for p in yes if not githook.CHECKPOINT_FILES.search(p)] == []
    assert [p for p in no if githook.CHECKPOINT_FILES.search(p)] == []


def test_materialize_links_lfs_objects_and_writes_small_blobs(repo, tmp_path):
    folder = repo.put("m", GOOD)
    weights = (folder / "model.safetensors").read_bytes()
    oid, pointer = lfs_pointer(weights)
    (folder / "model.safetensors").write_bytes(pointer)
    objects = repo.work / ".git" / "lfs" / "objects"
    (objects / oid[:2] / oid[2:4]).mkdir(parents=True)
    (objects / oid[:2] / oid[2:4] / oid).write_bytes(weights)
    sha = repo.commit()
    git = Repo(repo.work)
    entries = [e for e in git.ls_tree(sha) if e.folder == "m"]
    with git.blobs() as blobs:
        done = materialize(blobs, entries, tmp_path / "out", githook.objects_dir(git))
    linked = done.path / "model.safetensors"
    assert linked.is_symlink() and linked.resolve() == (objects / oid[:2] / oid[2:4] / oid).resolve()
    assert (done.path / "config.json").read_bytes() == (CHECKPOINTS / GOOD / "config.json").read_bytes()
    assert done.linked == ("model.safetensors",) and done.skipped == ()
