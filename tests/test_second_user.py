"""Issue 20: what a second new user found, each through the console script."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from helpers import REPO, run_cli  # noqa: E402

WRITER_ADAPTER = REPO / "tests" / "fixtures" / "writers" / "adapters-0.2.1" / "adapter_classification"
TINY = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37)


class BertRegressor(transformers.BertPreTrainedModel):
    """A hand-written head of a class nobody knows (the issue's own example)."""

    def __init__(self, config):
        super().__init__(config)
        self.bert = transformers.BertModel(config)
        self.regressor = torch.nn.Linear(config.hidden_size, 1)
        self.post_init()


class Custom(transformers.BertForSequenceClassification):
    """HC101's documented example: an MLP classifier, under a class name of its own."""

    def __init__(self, config):
        super().__init__(config)
        hidden = config.hidden_size
        self.classifier = torch.nn.Sequential(torch.nn.Linear(hidden, 16), torch.nn.ReLU(),
                                              torch.nn.Linear(16, config.num_labels))


@pytest.fixture(scope="module")
def hand_made(tmp_path_factory):
    root = tmp_path_factory.mktemp("hand_made")
    torch.manual_seed(0)
    for cls in (BertRegressor, Custom):
        cls(transformers.BertConfig(**TINY)).save_pretrained(root / cls.__name__)
    return root


@pytest.mark.parametrize("name, head_key", [("BertRegressor", "regressor.bias"), ("Custom", "classifier.0.bias")])
def test_1_a_hand_written_head_of_an_unknown_class_is_never_no_head(hand_made, name, head_key):
    result = run_cli("scan", hand_made / name, "--format", "json")
    report = json.loads(result.stdout)
    assert result.returncode == 1, result.stdout
    assert report["verdict"] == "not-convertible"
    assert report["head"]["type"] != "none"
    [custom] = [f for f in report["findings"] if f["rule"] == "HC101"]
    assert custom["severity"] == "error" and custom["file"] == "model.safetensors"
    assert head_key in custom["message"]
    text = run_cli("scan", hand_made / name)
    assert text.returncode == 1 and "no-head" not in text.stdout and "HC101 error" in text.stdout


def test_2_a_folder_holding_only_weights_is_nothing_scanned(hand_made, tmp_path):
    folder = tmp_path / "weights-only"
    folder.mkdir()
    shutil.copy(hand_made / "BertRegressor" / "model.safetensors", folder)
    for target in (folder, folder / "model.safetensors"):
        result = run_cli("scan", target)
        assert result.returncode == 3, result.stdout + result.stderr
        assert "weights alone cannot be judged" in result.stderr
        assert "HC106" not in result.stdout + result.stderr and "config.json (" not in result.stderr


def test_3_verify_onto_a_base_of_another_size_is_one_line_and_writes_nothing(tmp_path):
    config = json.loads((WRITER_ADAPTER.parent / "adapter_classification-base" / "config.json").read_text())
    smaller = transformers.BertConfig(**{**TINY, "vocab_size": config["vocab_size"], "hidden_size": 16,
                                         "num_attention_heads": 2})
    transformers.BertModel(smaller).save_pretrained(tmp_path / "other-base")
    result = run_cli("migrate", WRITER_ADAPTER, "--out", tmp_path / "out", "--verify", "--base", tmp_path / "other-base")
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert str(tmp_path / "other-base") in line and "does not fit" in line and "size mismatch for" in line
    assert not (tmp_path / "out").exists()
    assert not list(tmp_path.glob(".out.*"))


@pytest.fixture(scope="module")
def default_classifier(tmp_path_factory):
    """What BertForSequenceClassification.save_pretrained writes for its default 2 labels: no label map, no
    problem_type."""
    zoo = pytest.importorskip("zoo")
    folder = zoo.build_static("BertForSequenceClassification", tmp_path_factory.mktemp("default") / "bert")
    config = json.loads((folder / "config.json").read_text())
    assert not {"id2label", "label2id", "problem_type"} & set(config)
    return folder


def test_9_a_default_two_label_classifier_gets_no_label_map_warning(default_classifier):
    result = run_cli("scan", default_classifier, "--format", "json", "--fail-on", "warning")
    assert result.returncode == 0, result.stdout
    report = json.loads(result.stdout)
    assert "HC109" not in {f["rule"] for f in report["findings"]}
    assert any("2 labels, as adapters assumes" in line for line in report["head"]["evidence"])


def test_10_problem_type_unrecorded_is_one_short_line(default_classifier):
    lines = run_cli("scan", default_classifier).stdout.splitlines()
    [at] = [i for i, line in enumerate(lines) if "HC117" in line]
    assert len(lines[at]) <= 110 and "single-label" in lines[at]
    assert at + 1 == len(lines) or not lines[at + 1].strip().startswith("hint:")


def test_11_a_typo_of_a_local_folder_points_at_the_folder(default_classifier, tmp_path):
    shutil.copytree(default_classifier, tmp_path / "bert-regression")
    result = run_cli("scan", tmp_path / "bert-regresion")
    assert result.returncode == 2
    assert f"did you mean {tmp_path / 'bert-regression'}?" in result.stderr
    assert "google-bert/" not in result.stderr


def test_12_an_already_flex_copy_counts_what_it_compared(tmp_path):
    flex = REPO / "tests" / "fixtures" / "writers" / "adapters-0.2.1" / "flex_classification"
    result = run_cli("migrate", flex, "--out", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    copied = sorted(p.name for p in flex.iterdir())
    assert f"{len(copied)} copied files byte-checked against the source" in result.stdout
    assert "0 tensors" not in result.stdout
    as_json = json.loads(run_cli("migrate", flex, "--out", tmp_path / "json", "--format", "json").stdout)
    assert as_json["files_checked"] == len(copied)


def test_13_verify_says_what_it_is_doing_on_a_terminal_only(default_classifier, tmp_path):
    from helpers import under_a_pty

    shown = under_a_pty("migrate", default_classifier, "--out", tmp_path / "tty", "--verify")
    assert b"verify: loading the original and the result" in shown
    piped = run_cli("migrate", default_classifier, "--out", tmp_path / "pipe", "--verify")
    assert piped.returncode == 0 and "loading the original" not in piped.stderr + piped.stdout


def test_14_migrate_json_names_its_schema_and_the_comparison_once(default_classifier, tmp_path):
    result = run_cli("migrate", default_classifier, "--out", tmp_path / "out", "--verify", "--format", "json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["schema_version"] == 1
    assert "verify" not in data and data["comparison"]["ok"] is True  # MigrateResult.comparison, the same name


def test_14_an_invalid_config_scanned_alone_names_its_folder(tmp_path):
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "bert",}')
    result = run_cli("scan", folder / "config.json")
    assert result.returncode == 2
    assert f"{folder / 'config.json'}: invalid JSON" in result.stderr


def test_14_the_migrate_summary_says_regression(tmp_path):
    regression = REPO / "tests" / "fixtures" / "writers" / "transformers-5.24.0" / "bert-seqcls-regression"
    result = run_cli("migrate", regression, "--out", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    assert "classification head, regression (BertForSequenceClassification)" in result.stdout.splitlines()[0]


FIXTURE_FOLDERS = sorted({p.parent for root in ("checkpoints", "writers")
                          for p in (REPO / "tests" / "fixtures" / root).rglob("config.json")})


@pytest.mark.parametrize("folder", FIXTURE_FOLDERS, ids=lambda p: str(p.relative_to(REPO / "tests" / "fixtures")))
def test_no_fixture_with_keys_past_the_base_model_is_called_no_head(folder):
    """The issue's acceptance: weights outside the base model's prefix are never 'no head'."""
    from headcheck.errors import InputError, NothingScannedError
    from headcheck.judge.engine import scan_facts
    from headcheck.judge.full_model import model_type_of
    from headcheck.judge.static import head_keys
    from headcheck.read.facts import build_facts

    try:
        facts = build_facts(folder)
    except (InputError, NothingScannedError):
        pytest.skip("unreadable on purpose (a hostile fixture): nothing to classify")
    tensors = facts.weights.get("model") or {}
    past_the_base = head_keys(tensors, model_type_of(facts.doc("model") or {}))
    if not past_the_base:
        pytest.skip("every tensor is the base model's")
    assert scan_facts(facts).verdict.value != "no-head", past_the_base[:5]


def test_1_the_hook_refuses_a_push_of_a_hand_written_head(hand_made, tmp_path):
    repo = tmp_path / "repo"
    shutil.copytree(hand_made / "BertRegressor", repo / "model")
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    for args in (["init", "-q"], ["add", "."], ["commit", "-qm", "model"]):
        subprocess.run([*git, *args], check=True, capture_output=True)
    result = subprocess.run([sys.executable, "-m", "headcheck", "hook", "run", "--ref", "HEAD"], cwd=repo,
                            capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "HC101" in result.stdout + result.stderr


def test_migrate_refuses_an_extra_file_that_is_a_device(tmp_path):
    """A symlink to /dev/zero named like a tokenizer file would be copied without end: one line, exit 2."""
    folder = tmp_path / "ckpt"
    shutil.copytree(REPO / "tests" / "fixtures" / "checkpoints" / "bert-seq-cls", folder)
    (folder / "vocab.txt").symlink_to("/dev/zero")
    result = run_cli("migrate", folder, "--out", tmp_path / "out")
    assert result.returncode == 2, result.stderr
    assert "vocab.txt: not a regular file" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.*"))
