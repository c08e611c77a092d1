"""Issue 20: what a second new user found, each through the console script."""

from __future__ import annotations

import json
import shutil

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
