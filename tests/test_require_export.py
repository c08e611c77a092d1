"""--require-export transformers / `require-export = ["transformers"]` (issue 18 #5): a checkpoint that runs only inside
adapters gets the error HC147, so scan exits 1 and the hooks refuse the push; a checkpoint that exports (or already is
a transformers class) passes. Through the console script and real hook runs."""

from __future__ import annotations

import json

from test_githook import Z40, repo  # noqa: F401  (fixture)

from headcheck.exitcodes import ExitCode
from helpers import CHECKPOINTS, run_cli, validated

ADAPTERS_ONLY = CHECKPOINTS / "adapter-flex-head"  # a bottleneck adapter: HC145
STATIC = CHECKPOINTS / "bert-seq-cls"  # native


def test_scan_refuses_what_does_not_export(tmp_path):
    assert run_cli("scan", ADAPTERS_ONLY).returncode == ExitCode.OK
    result = run_cli("scan", ADAPTERS_ONLY, "--require-export", "transformers", "--format", "json")
    assert result.returncode == ExitCode.FINDINGS, result.stderr
    report = validated(json.loads(result.stdout))
    (required,) = [f for f in report["findings"] if f["rule"] == "HC147"]
    assert required["severity"] == "error" and "HC145" in required["message"]
    assert "--require-export requires an export to transformers" in required["message"]
    assert run_cli("scan", STATIC, "--require-export", "transformers").returncode == ExitCode.OK


def test_configuration_requires_it_and_per_path_ignores_release_a_folder(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.headcheck]\nrequire-export = ["transformers"]\n')
    import shutil

    shutil.copytree(ADAPTERS_ONLY, tmp_path / "m")
    refused = run_cli("scan", tmp_path / "m")
    assert refused.returncode == ExitCode.FINDINGS and "HC147" in refused.stdout
    assert "pyproject.toml requires an export to transformers" in refused.stdout
    (tmp_path / "pyproject.toml").write_text('[tool.headcheck]\nrequire-export = ["transformers"]\n\n'
                                             '[tool.headcheck.per-path-ignores]\n"m" = ["export-required"]\n')
    assert run_cli("scan", tmp_path / "m").returncode == ExitCode.OK
    (tmp_path / "pyproject.toml").write_text('[tool.headcheck]\nrequire-export = ["peft-someday"]\n')
    assert run_cli("scan", tmp_path / "m").returncode == ExitCode.USAGE  # the schema names the targets


def test_hooks_refuse_the_push(repo):  # noqa: F811
    repo.put("models/a", "adapter-flex-head")
    sha = repo.commit()
    stdin = f"refs/heads/main {sha} refs/heads/main {Z40}\n"
    assert repo.pre_push(stdin).returncode == ExitCode.OK
    refused = repo.pre_push(stdin, "--require-export", "transformers")
    assert refused.returncode == ExitCode.FINDINGS and "HC147" in refused.stdout, refused.stdout
    (repo.work / "pyproject.toml").write_text('[tool.headcheck]\nrequire-export = ["transformers"]\n')
    configured = repo.commit("require exports")
    done = repo.pre_push(f"refs/heads/main {configured} refs/heads/main {Z40}\n")
    assert done.returncode == ExitCode.FINDINGS and "HC147" in done.stdout, done.stdout
    run = repo.headcheck("hook", "run", "--ref", configured, check=False)
    assert run.returncode == ExitCode.FINDINGS and "HC147" in run.stdout, run.stdout


def test_scan_requires_a_peft_export_where_asked():
    """--require-export peft (issue 19): an adapter method PEFT computes differently is an error; an exportable
    adapter folder and a PEFT adapter pass, and so does a checkpoint without an adapter (not-applicable)."""
    peft_fixtures = CHECKPOINTS.parent / "peft"
    refused = run_cli("scan", peft_fixtures / "refused" / "prefix", "--require-export", "peft", "--format", "json")
    assert refused.returncode == ExitCode.FINDINGS, refused.stderr
    (required,) = [f for f in validated(json.loads(refused.stdout))["findings"] if f["rule"] == "HC147"]
    assert "requires an export to peft" in required["message"] and "HC150" in required["message"]
    for passing in (peft_fixtures / "bert-lora-seqcls", STATIC):
        assert run_cli("scan", passing, "--require-export", "peft").returncode == ExitCode.OK, passing
    native = run_cli("scan", CHECKPOINTS / "peft-seq-cls", "--require-export", "peft")  # not-convertible (HC118) itself
    assert "peft: native" in native.stdout and "HC147" not in native.stdout, native.stdout
