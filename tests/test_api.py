"""The public Python API (headcheck.scan, headcheck.migrate and the types it names), used as documented."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

import headcheck
from helpers import CHECKPOINTS, REPO, validated


def readme_api_example() -> str:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    match = re.search(r"<!-- api-example[^>]*-->\n```python\n(.*?)```", readme, re.S)
    assert match, "README.md lost its API example"
    return match.group(1)


def test_readme_api_example_runs():
    result = subprocess.run([sys.executable, "-c", readme_api_example()], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("convertible multilabel_classification ['HC103'")
    assert lines[1].endswith(" already-flex")
    assert lines[2].startswith("unreadable: ") and "missing" in lines[2]


def test_scan_returns_a_report_whose_dict_is_the_json_report():
    report = headcheck.scan(CHECKPOINTS / "bert-seq-cls-label-mismatch")
    assert isinstance(report, headcheck.Report)
    assert report.verdict is headcheck.Verdict.NOT_CONVERTIBLE
    assert "HC102" in {f.rule for f in report.findings}
    assert all(isinstance(f, headcheck.Finding) for f in report.findings)
    as_dict = validated(json.loads(json.dumps(report.to_dict())))
    cli = subprocess.run([sys.executable, "-m", "headcheck", "scan", str(CHECKPOINTS / "bert-seq-cls-label-mismatch"),
                          "--format", "json"], capture_output=True, text=True)
    assert json.loads(cli.stdout) == as_dict


def test_scan_decides_an_ambiguous_head_with_head_type():
    assert headcheck.scan(CHECKPOINTS / "no-architectures").verdict is headcheck.Verdict.AMBIGUOUS
    decided = headcheck.scan(CHECKPOINTS / "no-architectures", head_type="tagging")
    assert decided.head.type == "tagging"


@pytest.mark.parametrize("fixture, error", [
    ("truncated-header", headcheck.InputError),
    ("not-a-checkpoint", headcheck.NothingScannedError),
])
def test_scan_errors_are_headchecks_own(fixture, error):
    with pytest.raises(error):
        headcheck.scan(CHECKPOINTS / fixture)


def test_a_dangerous_pickle_is_a_finding_not_an_exception():
    report = headcheck.scan(CHECKPOINTS / "unsafe-pickle")
    assert report.verdict is headcheck.Verdict.NOT_CONVERTIBLE
    assert [(f.rule, f.severity) for f in report.findings] == [("HC001", headcheck.Severity.ERROR)]


def test_migrate_result_and_refusal(tmp_path):
    result = headcheck.migrate(CHECKPOINTS / "bert-seq-cls", tmp_path / "out", head_name="sentiment")
    assert isinstance(result, headcheck.MigrateResult)
    assert result.out == (tmp_path / "out").resolve() and result.tensors_checked > 0
    assert result.rescan.verdict is headcheck.Verdict.ALREADY_FLEX
    assert result.rescan.head.name == "sentiment"
    with pytest.raises(headcheck.OutputExistsError):
        headcheck.migrate(CHECKPOINTS / "bert-seq-cls", tmp_path / "out")
    with pytest.raises(headcheck.NotConvertibleError) as refused:
        headcheck.migrate(CHECKPOINTS / "bert-custom-head", tmp_path / "custom")
    assert "HC101" in {f.rule for f in refused.value.report.findings}
    assert str(refused.value) == f"{refused.value.report.source}: verdict not-convertible; nothing written"
    assert not (tmp_path / "custom").exists()
    with pytest.raises(headcheck.NotExportableError) as refused:
        headcheck.migrate(CHECKPOINTS / "adapter-flex-head", tmp_path / "plain", to="transformers")
    assert isinstance(refused.value, headcheck.NotConvertibleError)  # one except clause catches every refusal
    assert str(refused.value) == f"{refused.value.report.source}: not exportable to transformers; nothing written"
    assert {e.target: e.rules for e in refused.value.report.exports}["transformers"] == ("HC145",)
    assert not (tmp_path / "plain").exists()


def test_import_headcheck_is_cheap():
    """The layers load on first use: `import headcheck` alone imports none of them."""
    code = ("import sys, headcheck; "
            "print(sorted(m for m in sys.modules if m.startswith('headcheck.')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "['headcheck.version']"


def test_every_public_name_resolves():
    for name in headcheck.__all__:
        assert getattr(headcheck, name) is not None
    with pytest.raises(AttributeError):
        headcheck.no_such_name  # noqa: B018
