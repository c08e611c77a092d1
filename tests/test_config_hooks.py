"""The project configuration in hook mode: read from the pushed commit's tree, through real pushes to a bare remote.

* the installed native hook honours the commit's [tool.headcheck]: per-path ignores let a push through, the
  findings are still printed as ignored, excluded folders are not judged;
* the commit's configuration counts, not the working tree's (either way round);
* nested configurations: the nearest folder's wins, as on disk;
* a malformed configuration in the pushed commit refuses the push with exit code 4, naming file@commit and key;
* fail-on from the configuration, and --fail-on, --ignore, --config, --no-config on `hook pre-push` / `hook run`.

pre-commit: tests/test_precommit.py; the Action: tests/test_action.py.
"""

from __future__ import annotations

from test_githook import BROKEN, GOOD, Z40, _accepted, _refused, hooked, repo  # noqa: F401  (fixtures)

from headcheck.exitcodes import ExitCode

IGNORE_BAD = '[project]\nname = "models"\n\n[tool.headcheck]\nexclude = ["legacy"]\n\n' \
             '[tool.headcheck.per-path-ignores]\n"models/bad" = ["label-count-mismatch"]\n'


def test_push_honours_the_pushed_commits_configuration(hooked):
    hooked.put("models/bad", BROKEN)
    hooked.put("models/legacy/old", BROKEN)
    (hooked.work / "pyproject.toml").write_text(IGNORE_BAD)
    sha = hooked.commit()
    done = hooked.push()
    _accepted(done)
    assert f"models/bad@{sha[:12]}: not-convertible" in done.stdout  # the verdict stays what it is
    assert f"1 finding ignored (config pyproject.toml@{sha[:12]}: HC102)" in done.stdout
    assert "declares 3 labels" not in done.stdout
    assert (f"models/legacy/old@{sha[:12]}: not judged: excluded by pyproject.toml@{sha[:12]}: "
            "tool.headcheck.exclude 'legacy'") in done.stdout
    assert "1 checkpoint folder(s) judged, none failed" in done.stdout
    assert hooked.remote_has(sha)


def test_the_commits_configuration_counts_not_the_working_trees(hooked):
    hooked.put("models/bad", BROKEN)
    broken = hooked.commit("no configuration yet")
    (hooked.work / "pyproject.toml").write_text(IGNORE_BAD)  # on disk only: does not let the commit through
    _refused(hooked.push(), "HC102")
    assert not hooked.remote_has(broken)
    fixed = hooked.commit("ignore HC102 there")
    (hooked.work / "pyproject.toml").write_text('[tool.headcheck]\nfail-on = "warning"\nignore = []\n')
    (hooked.work / "models" / "bad" / "README.md").write_text("uncommitted\n")
    done = hooked.push()
    _accepted(done)  # the committed configuration judges the committed checkpoint
    assert "1 finding ignored" in done.stdout and hooked.remote_has(fixed)


def test_nested_configurations_nearest_folder_wins(repo):
    repo.put("team-a/m", BROKEN)
    repo.put("team-b/m", BROKEN)
    (repo.work / "pyproject.toml").write_text('[tool.headcheck]\nignore = ["HC102"]\n')
    (repo.work / "team-b" / ".headcheck.toml").write_text("ignore = []\n")  # nearer: ignores nothing
    sha = repo.commit()
    done = repo.pre_push(f"refs/heads/main {sha} refs/heads/main {Z40}\n")
    assert done.returncode == ExitCode.FINDINGS, done.stdout
    assert "1 of 2 checkpoint folder(s) failed" in done.stdout
    assert f"team-a/m@{sha[:12]}: not-convertible" in done.stdout and "1 finding ignored" in done.stdout
    assert "declares 3 labels" in done.stdout  # team-b's HC102 counts and is shown


def test_a_malformed_configuration_in_the_pushed_commit_refuses_the_push(hooked):
    hooked.put("models/good", GOOD)
    (hooked.work / ".headcheck.toml").write_text('fail-on = "sometimes"\n')
    sha = hooked.commit()
    done = hooked.push()
    assert done.returncode != 0 and not hooked.remote_has(sha)
    assert (f"headcheck: config error: .headcheck.toml@{sha[:12]}: fail-on: 'sometimes' is not one of "
            "['error', 'warning', 'never']") in done.stdout, done.stdout
    assert "Traceback" not in done.stdout
    direct = hooked.pre_push(f"refs/heads/main {sha} refs/heads/main {Z40}\n")
    assert direct.returncode == ExitCode.USAGE
    (hooked.work / ".headcheck.toml").write_text('ignore = ["not-a-rule"]\n')
    sha = hooked.commit("still broken")
    unknown = hooked.pre_push(f"refs/heads/main {sha} refs/heads/main {Z40}\n")
    assert unknown.returncode == ExitCode.USAGE
    assert f".headcheck.toml@{sha[:12]}: ignore[0]: unknown rule 'not-a-rule'" in unknown.stdout
    assert hooked.pre_push(f"refs/heads/main {sha} refs/heads/main {Z40}\n", "--no-config").returncode == ExitCode.OK


def test_fail_on_and_the_hook_flags(repo, tmp_path):
    """An LFS pointer without its object gives HC125 and HC115 (warnings there): fail-on and ignores decide."""
    repo.put("models/lfs", "lfs-pointer-weights")
    (repo.work / ".headcheck.toml").write_text('fail-on = "warning"\n')
    sha = repo.commit()
    push = f"refs/heads/main {sha} refs/heads/main {Z40}\n"
    refused = repo.pre_push(push)
    assert refused.returncode == ExitCode.FINDINGS and "(--fail-on warning)" in refused.stdout, refused.stdout
    assert repo.pre_push(push, "--fail-on", "error").returncode == ExitCode.OK  # the flag wins
    assert repo.pre_push(push, "--ignore", "lfs-object-missing").returncode == ExitCode.FINDINGS  # HC115 still counts
    assert repo.pre_push(push, "--ignore", "lfs-object-missing,HC115").returncode == ExitCode.OK
    run = repo.headcheck("hook", "run", check=False)
    assert run.returncode == ExitCode.FINDINGS, run.stdout
    assert repo.headcheck("hook", "run", "--no-config", check=False).returncode == ExitCode.OK
    shared = tmp_path / "ci.toml"  # --config: a file on disk; its patterns relative to its folder on disk
    shared.write_text('fail-on = "warning"\n[per-path-ignores]\n"models/*" = ["HC125", "HC115"]\n')
    assert repo.headcheck("hook", "run", "--config", str(shared), check=False).returncode == ExitCode.FINDINGS
    shared.write_text(f'fail-on = "warning"\n[per-path-ignores]\n"{repo.work.name}/models/*" = ["HC125", "HC115"]\n')
    ok = repo.headcheck("hook", "run", "--config", str(shared), check=False)
    assert ok.returncode == ExitCode.OK, ok.stdout
    assert f"2 findings ignored (config {shared}: HC115, HC125)" in ok.stdout
    bad = repo.headcheck("hook", "run", "--ignore", "HC1", check=False)
    assert bad.returncode == ExitCode.USAGE and "config error: --ignore: unknown rule 'HC1'" in bad.stdout
