"""Table-driven scans of the committed torch-free fixtures (tests/fixtures/checkpoints), library and CLI.

The fixtures come from tests/fixtures/make_fixtures.py; regenerate them with
`python tests/fixtures/make_fixtures.py`.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from headcheck.judge import ruledata
from headcheck.errors import InputError, NothingScannedError
from helpers import CHECKPOINTS, run_cli, rules_of, scan, validated

REPO = Path(__file__).resolve().parents[1]
RULES_JSON = json.loads((REPO / "rules" / "rules.json").read_text(encoding="utf-8"))
ALL_CODES = {r["code"] for r in RULES_JSON["rules"]}
SEVERITY = {r["code"]: r["severity"] for r in RULES_JSON["rules"]}
ANSI = "\x1b["


def assert_one_clean_line(stderr: str) -> None:
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("headcheck: "), stderr


@dataclass(frozen=True)
class Expect:
    kind: str
    verdict: str
    head: str  # head.type
    rules: frozenset[str] = frozenset()  # must all be reported
    exit_code: int = 0  # CLI exit code with the default --fail-on error
    also_allowed: frozenset[str] = frozenset()  # further rules that may appear (others of error severity may not)
    problem_type: str | None = "-"  # "-": not checked
    num_labels: int | None = -1  # -1: not checked


def E(kind, verdict, head, rules=(), exit_code=0, also=(), **kw) -> Expect:
    return Expect(kind, verdict, head, frozenset(rules), exit_code, frozenset(also), **kw)


SCANNED: dict[str, Expect] = {
    "bert-seq-cls": E("full-model", "convertible", "classification", num_labels=3),
    "bert-seq-cls-bin": E("full-model", "convertible", "classification", num_labels=3),
    "sharded": E("full-model", "convertible", "classification", num_labels=3),
    "bert-seq-cls-label-mismatch": E("full-model", "not-convertible", "classification", {"HC102"}, 1, num_labels=5),
    # HC116 (no classifier.weight) is a fair second reason for a hand-made head
    "bert-custom-head": E("full-model", "not-convertible", "classification", {"HC101"}, 1, also={"HC116"}),
    "roberta-multilabel": E("full-model", "convertible", "multilabel_classification", {"HC103"}, 0,
                            problem_type="multi_label_classification", num_labels=4),
    "bert-regression-2": E("full-model", "not-convertible", "classification", {"HC105"}, 1,
                           problem_type="regression", num_labels=2),
    "xlnet-seq-cls": E("full-model", "not-convertible", "classification", {"HC106"}, 1),
    "bert-nsp": E("full-model", "not-convertible", "unknown", {"HC107"}, 1),
    "no-architectures": E("full-model", "ambiguous", "unknown", {"HC112"}, 0),
    "adapter-flex-head": E("adapter", "already-flex", "classification", num_labels=2),
    "adapter-flex-head-mismatch": E("adapter", "not-convertible", "classification", {"HC110"}, 1),
    "adapter-static-head": E("adapter", "convertible", "classification", also={"HC117"}, num_labels=2),
    "adapter-pretraining-head": E("adapter", "not-convertible", "unknown", {"HC111"}, 1),
    "adapter-legacy-other-family": E("adapter", "not-convertible", "classification", {"HC111"}, 1),
    "adapter-no-head": E("adapter", "no-head", "none"),
    "peft-seq-cls": E("peft-adapter", "not-convertible", "classification", {"HC118"}, 1),  # adapters cannot load it
    "unsafe-pickle": E("full-model", "not-convertible", "classification", {"HC001"}, 1, also={"HC115"}),
}

# name -> (exception the library raises, CLI exit code, text the one-line message must contain)
REJECTED: dict[str, tuple[type[Exception], int, str]] = {
    "truncated-header": (InputError, 2, "model.safetensors"),
    "bad-json-header": (InputError, 2, "model.safetensors"),
    "offsets-outside": (InputError, 2, "model.safetensors"),
    "invalid-config": (InputError, 2, "config.json"),
    "lfs-pointer-weights": (InputError, 2, "git lfs pull"),
    "lfs-pointer-config": (InputError, 2, "git lfs pull"),
    "shard-missing": (InputError, 2, "model-00002-of-00002.safetensors"),
    "shard-outside": (InputError, 2, "../x.safetensors"),
    "not-a-checkpoint": (NothingScannedError, 3, "no checkpoint files"),
    "mlx-adapter": (NothingScannedError, 3, "MLX"),
}


def test_every_fixture_folder_has_an_expectation():
    on_disk = {p.name for p in CHECKPOINTS.iterdir() if p.is_dir()}
    assert on_disk == set(SCANNED) | set(REJECTED), "run python tests/fixtures/make_fixtures.py"


def test_fixtures_stay_small():
    sizes = [p.stat().st_size for p in CHECKPOINTS.rglob("*") if p.is_file()]
    assert max(sizes) < 50_000 and sum(sizes) < 1_000_000


@pytest.mark.parametrize("name", sorted(SCANNED))
def test_library_report(name):
    expect = SCANNED[name]
    report = scan(CHECKPOINTS / name)
    found = rules_of(report)
    assert (report["kind"], report["verdict"], report["head"]["type"]) == (expect.kind, expect.verdict, expect.head)
    assert expect.rules <= found, found
    unexpected_errors = {r for r in found - expect.rules - expect.also_allowed if SEVERITY[r] == "error"}
    assert not unexpected_errors, report["findings"]
    if expect.problem_type != "-":
        assert report["head"]["problem_type"] == expect.problem_type
    if expect.num_labels != -1:
        assert report["head"]["num_labels"] == expect.num_labels
    # the plan exists exactly when the verdict is convertible
    assert (report["plan"] is not None) == (expect.verdict == "convertible")


@pytest.mark.parametrize("name", sorted(SCANNED))
def test_cli_exit_code_and_json(name):
    expect = SCANNED[name]
    result = run_cli("scan", CHECKPOINTS / name, "--format", "json")
    assert result.returncode == expect.exit_code, result.stderr
    report = validated(json.loads(result.stdout))
    assert (report["kind"], report["verdict"], report["head"]["type"]) == (expect.kind, expect.verdict, expect.head)
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("name", sorted(REJECTED))
def test_rejected_input_library(name):
    exc_type, _, needle = REJECTED[name]
    with pytest.raises(exc_type) as info:
        scan(CHECKPOINTS / name)
    assert needle in str(info.value)
    if exc_type is NothingScannedError:
        assert not isinstance(info.value, InputError)


@pytest.mark.parametrize("name", sorted(REJECTED))
@pytest.mark.parametrize("fmt", ["text", "json"])
def test_rejected_input_cli(name, fmt):
    _, exit_code, needle = REJECTED[name]
    result = run_cli("scan", CHECKPOINTS / name, "--format", fmt)
    assert result.returncode == exit_code, (result.stdout, result.stderr)
    # nothing scanned is never reported as a (clean) report; JSON output carries the error record (issue 14)
    if fmt == "text":
        assert result.stdout == ""
    else:
        record = json.loads(result.stdout)
        assert set(record) == {"schema_version", "source", "error", "exit_code"} and record["exit_code"] == exit_code
        assert needle in record["error"]
    assert_one_clean_line(result.stderr)
    assert needle in result.stderr


def test_empty_folder(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(NothingScannedError):
        scan(empty)
    result = run_cli("scan", empty)
    assert result.returncode == 3
    assert_one_clean_line(result.stderr)


def test_missing_path_is_input_error(tmp_path):
    result = run_cli("scan", tmp_path / "does-not-exist")
    assert result.returncode == 2
    assert_one_clean_line(result.stderr)


def test_no_architectures_decided_by_head_type():
    # The contract: `ambiguous` says what to pass to decide; passing it decides.
    ambiguous = scan(CHECKPOINTS / "no-architectures")
    assert set(ambiguous["head"]["candidates"]) == {"classification", "tagging"}
    assert "--head-type" in next(f["hint"] for f in ambiguous["findings"] if f["rule"] == "HC112")
    decided = scan(CHECKPOINTS / "no-architectures", head_type="tagging")
    assert (decided["verdict"], decided["head"]["type"], decided["head"]["num_labels"]) == ("convertible", "tagging", 3)
    assert decided["plan"]["head_config"]["head_type"] == "tagging"
    assert "HC112" not in rules_of(decided)
    result = run_cli("scan", CHECKPOINTS / "no-architectures", "--head-type", "tagging", "--format", "json")
    assert result.returncode == 0
    assert validated(json.loads(result.stdout))["verdict"] == "convertible"


def test_forcing_classification_without_pooler_is_not_clean():
    # no-architectures holds no bert.pooler.* (what BertForTokenClassification saves)
    report = scan(CHECKPOINTS / "no-architectures", head_type="classification")
    if report["verdict"] == "convertible" and report["plan"]["head_config"].get("use_pooler"):
        assert any("pooler" in f["message"] for f in report["findings"]), report["findings"]


def test_flex_head_config_without_head_weights_is_not_clean(tmp_path):
    folder = tmp_path / "adapter"
    shutil.copytree(CHECKPOINTS / "adapter-flex-head", folder)
    (folder / "model_head.safetensors").unlink()
    report = scan(folder)
    assert report["verdict"] != "already-flex" or rules_of(report) & {"HC115", "HC116", "HC110"}


def test_static_head_config_without_head_weights_is_not_convertible(tmp_path):
    folder = tmp_path / "adapter"
    shutil.copytree(CHECKPOINTS / "adapter-static-head", folder)
    (folder / "model_head.safetensors").unlink()
    report = scan(folder)
    assert report["verdict"] == "not-convertible" and "HC115" in rules_of(report)


def test_static_plan_renames():
    report = scan(CHECKPOINTS / "bert-seq-cls")
    renames = {r["source"]: r["target"] for r in report["plan"]["renames"]}
    assert renames == {"classifier.weight": "heads.default.1.weight", "classifier.bias": "heads.default.1.bias"}
    assert report["plan"]["adapter_model_class"] == "BertAdapterModel"
    assert report["plan"]["head_config"]["label2id"] == {"negative": 0, "neutral": 1, "positive": 2}
    sharded = scan(CHECKPOINTS / "sharded")
    assert {r["file"] for r in sharded["plan"]["renames"]} == {"model-00002-of-00002.safetensors"}


def test_multilabel_plan_keeps_bce():
    report = scan(CHECKPOINTS / "roberta-multilabel")
    assert report["plan"]["head_config"]["head_type"] == "multilabel_classification"
    assert {r["source"] for r in report["plan"]["renames"]} == {
        "classifier.dense.weight", "classifier.dense.bias", "classifier.out_proj.weight", "classifier.out_proj.bias"}


def test_bin_and_safetensors_twins_agree():
    a, b = scan(CHECKPOINTS / "bert-seq-cls"), scan(CHECKPOINTS / "bert-seq-cls-bin")
    for key in ("kind", "verdict", "head"):
        assert a[key] == b[key]


def test_hand_made_bin_loads_in_torch():
    torch = pytest.importorskip("torch")
    state = torch.load(CHECKPOINTS / "bert-seq-cls-bin" / "pytorch_model.bin", weights_only=True)
    assert tuple(state["classifier.weight"].shape) == (3, 8)
    with pytest.raises(Exception):  # torch's own safe loader refuses the malicious one too
        torch.load(CHECKPOINTS / "unsafe-pickle" / "pytorch_model.bin", weights_only=True)


def test_unsafe_pickle_is_reported_never_run():
    report = scan(CHECKPOINTS / "unsafe-pickle")
    hc001 = [f for f in report["findings"] if f["rule"] == "HC001"]
    assert hc001 and hc001[0]["severity"] == "error" and "system" in hc001[0]["message"]
    assert hc001[0]["file"] == "pytorch_model.bin"
    result = run_cli("scan", CHECKPOINTS / "unsafe-pickle")
    assert result.returncode == 1
    assert "pwned" not in result.stdout + result.stderr  # os.system("echo pwned") would print it


# --------------------------------------------------------------------------------------- malformed but valid JSON


def _set(file: str, path: tuple, value):
    def mutate(folder: Path) -> None:
        data = json.loads((folder / file).read_text(encoding="utf-8"))
        target = data
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        (folder / file).write_text(json.dumps(data), encoding="utf-8")
    return mutate


# (fixture, mutation); a scan must end in a schema-valid report, InputError (exit 2) or NothingScannedError (exit 3)
MALFORMED = [
    pytest.param("adapter-flex-head", _set("head_config.json", ("config", "num_labels"), None),
                 id="flex-num_labels-null"),
    pytest.param("bert-seq-cls", _set("config.json", ("label2id",), ["a", "b", "c"]), id="label2id-list"),
    pytest.param("bert-seq-cls", _set("config.json", ("auto_map",), ["x"]), id="auto_map-list"),
    pytest.param("peft-seq-cls", _set("adapter_config.json", ("modules_to_save",), "classifier"),
                 id="modules_to_save-str"),
    pytest.param("sharded", _set("model.safetensors.index.json", ("weight_map",), []), id="weight_map-list"),
    pytest.param("adapter-flex-head", _set("head_config.json", ("config", "layers"), "two"), id="flex-layers-str"),
    pytest.param("adapter-flex-head", _set("head_config.json", ("config", "num_labels"), "abc"),
                 id="flex-num_labels-str"),
    pytest.param("bert-seq-cls", _set("config.json", ("label2id",), {"a": "x", "b": "y", "c": "z"}),
                 id="label2id-values-not-int"),
    pytest.param("bert-seq-cls", _set("config.json", ("model_type",), ["bert"]), id="model_type-list"),
    pytest.param("adapter-flex-head", _set("head_config.json", ("model_type",), ["bert"]), id="head-model_type-list"),
    pytest.param("bert-seq-cls", _set("config.json", ("prediction_heads",), ["default"]), id="prediction_heads-list"),
    pytest.param("bert-seq-cls", _set("config.json", ("prediction_heads",), {"default": None}),
                 id="prediction_heads-entry-null"),
    pytest.param("peft-seq-cls", _set("adapter_config.json", ("task_type",), ["SEQ_CLS"]), id="peft-task_type-list"),
    pytest.param("adapter-flex-head", _set("head_config.json", ("name",), 7), id="head-name-int"),
]


@pytest.mark.parametrize(("fixture", "mutate"), MALFORMED)
def test_malformed_config_never_crashes(fixture, mutate, tmp_path):
    folder = tmp_path / fixture
    shutil.copytree(CHECKPOINTS / fixture, folder)
    mutate(folder)
    try:
        scan(folder)  # validates the report against the schema
    except (InputError, NothingScannedError):
        pass


def test_shape_disagreeing_with_byte_span_is_corrupt(tmp_path):
    folder = tmp_path / "bert"
    shutil.copytree(CHECKPOINTS / "bert-seq-cls", folder)
    path = folder / "model.safetensors"
    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8 : 8 + n])
    header["classifier.weight"]["shape"] = [30, 8]  # the span still holds 3 x 8 floats
    new = json.dumps(header, separators=(",", ":")).encode()
    new += b" " * (-len(new) % 8)
    path.write_bytes(struct.pack("<Q", len(new)) + new + raw[8 + n :])
    with pytest.raises(InputError):
        scan(folder)


# --------------------------------------------------------------------------------------- --fail-on


@pytest.mark.parametrize(("fail_on", "code"), [("error", 0), ("warning", 1), ("never", 0)])
def test_fail_on_with_only_warnings(fail_on, code):
    report = scan(CHECKPOINTS / "roberta-multilabel")
    assert {f["severity"] for f in report["findings"]} == {"warning"}  # the premise of this test
    assert run_cli("scan", CHECKPOINTS / "roberta-multilabel", "--fail-on", fail_on).returncode == code


@pytest.mark.parametrize(("fail_on", "code"), [("error", 1), ("warning", 1), ("never", 0)])
def test_fail_on_with_errors(fail_on, code):
    assert run_cli("scan", CHECKPOINTS / "bert-seq-cls-label-mismatch", "--fail-on", fail_on).returncode == code


def test_fail_on_never_does_not_hide_unreadable_input():
    assert run_cli("scan", CHECKPOINTS / "truncated-header", "--fail-on", "never").returncode == 2
    assert run_cli("scan", CHECKPOINTS / "not-a-checkpoint", "--fail-on", "never").returncode == 3


# --------------------------------------------------------------------------------------- output


@pytest.mark.parametrize("no_color", [None, "1"])
def test_piped_text_output_has_no_ansi(no_color):
    env = {"NO_COLOR": no_color} if no_color else None
    for name in ("roberta-multilabel", "bert-seq-cls-label-mismatch"):
        result = run_cli("scan", CHECKPOINTS / name, env=env)
        assert ANSI not in result.stdout and ANSI not in result.stderr
        assert "HC" in result.stdout


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
@pytest.mark.parametrize("no_color", [False, True])
def test_tty_colour_honours_no_color(no_color):
    import pty

    master, slave = pty.openpty()
    try:
        env = {"NO_COLOR": "1"} if no_color else None
        result = run_cli("scan", CHECKPOINTS / "bert-seq-cls-label-mismatch", env=env, stdout=slave,
                         stderr=subprocess.PIPE)
        os.close(slave)
        slave = None
        chunks = []
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO once the terminal has no writer left
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        if slave is not None:
            os.close(slave)
        os.close(master)
    out = b"".join(chunks).decode()
    assert result.returncode == 1
    assert "not-convertible" in out
    assert (ANSI in out) is (not no_color)


@pytest.mark.parametrize("name", ["bert-seq-cls", "adapter-flex-head", "peft-seq-cls", "no-architectures"])
def test_json_format_validates_and_matches_library(name):
    result = run_cli("scan", CHECKPOINTS / name, "--format", "json")
    cli_report = validated(json.loads(result.stdout))
    lib_report = scan(CHECKPOINTS / name)
    for key in ("schema_version", "kind", "model_type", "head", "verdict", "findings", "plan"):
        assert cli_report[key] == lib_report[key], key


# --------------------------------------------------------------------------------------- usage errors


@pytest.mark.parametrize("args", [
    ("scan", "tests/fixtures/checkpoints/bert-seq-cls", "--bogus"),
    ("scan", "tests/fixtures/checkpoints/bert-seq-cls", "--fail-on", "sometimes"),
    ("scan", "tests/fixtures/checkpoints/bert-seq-cls", "--head-type", "regression"),
    ("scan", "tests/fixtures/checkpoints/bert-seq-cls", "--format", "yaml"),
    ("scan",),
    ("no-such-command",),
])
def test_usage_errors_exit_4(args):
    result = run_cli(*args)
    assert result.returncode == 4, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert result.stderr.strip()


# --------------------------------------------------------------------------------------- headcheck rule


def test_rule_lists_every_code():
    result = run_cli("rule")
    assert result.returncode == 0
    # one entry per rule: the code line, then its summary indented under it
    listed = {line.split()[0] for line in result.stdout.splitlines() if line.strip() and not line[0].isspace()}
    assert listed == ALL_CODES


@pytest.mark.parametrize("query", ["HC101", "custom-head-weights", "hc101"])
def test_rule_explains_in_four_sections(query):
    result = run_cli("rule", query)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("HC101 custom-head-weights (error)")
    for title in ("What it checks", "Why it matters", "Example", "How to fix"):  # each a title line of its own
        assert title in result.stdout.splitlines()
    positions = [result.stdout.index(t) for t in ("What it checks", "Why it matters", "Example", "How to fix")]
    assert positions == sorted(positions)


def test_unknown_rule_is_usage_error():
    result = run_cli("rule", "HC999")
    assert result.returncode == 4
    assert "HC999" in result.stderr and "Traceback" not in result.stderr


# --------------------------------------------------------------------------------------- broken rule data


def _clear_rule_caches() -> None:
    for cached in (ruledata.registry, ruledata.redirects, ruledata.head_layouts, ruledata.families):
        cached.cache_clear()


@pytest.fixture
def rules_copy(tmp_path, monkeypatch):
    copy = tmp_path / "rules"
    shutil.copytree(REPO / "rules", copy)
    monkeypatch.setattr(ruledata, "rules_root", lambda: copy)
    _clear_rule_caches()
    yield copy
    monkeypatch.undo()
    _clear_rule_caches()  # later tests in this worker must see the real rules again


def test_broken_severity_names_file_and_json_path(rules_copy):
    path = rules_copy / "rules.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    data["rules"][3]["severity"] = "fatal"
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    with pytest.raises(ruledata.RuleDataError) as info:
        ruledata.registry()
    message = str(info.value)
    assert "rules/rules.json" in message
    assert "$.rules[3]" in message and "severity" in message
    assert "fatal" in message


def test_rules_file_not_json_names_file(rules_copy):
    (rules_copy / "rules.json").write_text('{"rules": [', encoding="utf-8")
    with pytest.raises(ruledata.RuleDataError) as info:
        ruledata.lookup("HC101")
    assert "rules/rules.json" in str(info.value)


def test_copied_rules_load_unchanged(rules_copy):
    assert set(ruledata.registry()) == ALL_CODES
