"""Flex heads of every head type adapters offers, with non-default options, several heads in one model, saved
through save_pretrained and save_adapter: rules/flex_heads.json must predict every head parameter adapters
builds, and each checkpoint must scan as already-flex, load as it is, and keep its outputs through migrate."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
adapters = pytest.importorskip("adapters")
zoo = pytest.importorskip("zoo")

from adapters import AutoAdapterModel  # noqa: E402
from adapters.heads import ClassificationHead, TaggingHead  # noqa: E402

from headcheck.judge import layouts, ruledata  # noqa: E402
from headcheck.migration.verify import fixed_inputs, model_outputs  # noqa: E402
from helpers import rules_of, run_cli, scan  # noqa: E402

# case -> (model_type, head name, head type, add_*_head options or a head-class factory)
CASES = {
    "classification": ("bert", "classification", {"num_labels": 3}),
    "classification-3-layers-relu-pooler": ("bert", "classification",
                                            {"num_labels": 4, "layers": 3, "activation_function": "relu",
                                             "use_pooler": True}),
    "classification-1-layer": ("roberta", "classification", {"num_labels": 2, "layers": 1}),
    "regression": ("bert", "classification", {"num_labels": 1}),
    "multilabel": ("bert", "multilabel_classification", {"num_labels": 5}),
    "tagging-2-layers": ("bert", "tagging", {"num_labels": 4, "layers": 2}),
    "multiple-choice": ("bert", "multiple_choice", {"num_choices": 3}),
    "question-answering": ("bert", "question_answering", {}),
    "dependency-parsing": ("bert", "dependency_parsing", {"num_labels": 5}),
    "masked-lm": ("bert", "masked_lm", {}),
    "masked-lm-1-layer": ("bert", "masked_lm", {"layers": 1}),
    "causal-lm": ("gpt2", "causal_lm", {}),
    "causal-lm-1-layer": ("gpt2", "causal_lm", {"layers": 1}),
    "seq2seq-lm": ("bart", "seq2seq_lm", {}),
    "image-classification": ("vit", "image_classification", {"num_labels": 3, "layers": 2}),
}
# options the add_*_head methods do not take: the head classes directly, as add_prediction_head users do
HEAD_CLASSES = {
    "classification-no-bias": ("bert", lambda m, n: ClassificationHead(m, n, num_labels=3, layers=2, bias=False)),
    "tagging-dropout": ("bert", lambda m, n: TaggingHead(m, n, num_labels=3, layers=1, dropout_prob=0.3)),
}
HEAD = "task"


def build(case: str):
    if case in HEAD_CLASSES:
        model_type, factory = HEAD_CLASSES[case]
        model = _model(model_type)
        model.add_prediction_head(factory(model, HEAD))
        return model
    model_type, head_type, options = CASES[case]
    model = _model(model_type)
    zoo._add_heads(model, {HEAD: {"type": head_type, **options}})
    return model


def _model(model_type: str):
    torch.manual_seed(zoo.SEED)
    model = AutoAdapterModel.from_config(zoo.tiny_config(model_type))
    model.add_adapter("a", config="seq_bn")
    model.set_active_adapters("a")
    with torch.no_grad():  # every parameter counts, biases included
        for param in model.parameters():
            param.add_(torch.randn_like(param) * 0.05)
    return model.eval()


ALL = sorted([*CASES, *HEAD_CLASSES])


def head_params(model, name: str = HEAD) -> dict[str, tuple[int, ...]]:
    prefix = f"heads.{name}."
    return {k[len(prefix):]: tuple(v.shape) for k, v in model.state_dict().items() if k.startswith(prefix)}


@pytest.mark.parametrize("case", ALL)
def test_rule_data_predicts_every_head_parameter(case):
    model = build(case)
    config = model.heads[HEAD].config
    predicted = layouts.flex_params(config)
    assert predicted is not None, f"rules/flex_heads.json does not know {config['head_type']}"
    actual = head_params(model)
    stored = {p.path for p in predicted}
    assert set(actual) == stored, (config, actual)
    output = next(p.path for p in predicted if p.output)
    rows = layouts.flex_output_size(config)
    if rows is not None:
        assert actual[output][0] == rows


def test_rule_data_covers_every_head_type_adapters_offers():
    from adapters.heads.model_mixin import MODEL_HEAD_MAP

    assert set(ruledata.flex_heads()) == set(MODEL_HEAD_MAP)


def save_base(model, out: Path) -> None:
    """The model without its adapter and heads: what an adapter folder is loaded onto."""
    plain = AutoAdapterModel.from_config(zoo.tiny_config(model.config.model_type))
    own = model.state_dict()
    missing, _ = plain.load_state_dict({k: v for k, v in own.items() if k in plain.state_dict()}, strict=False)
    assert not missing, missing
    plain.save_pretrained(out)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """case -> (full model folder, adapter folder, base model folder), written once."""
    root = tmp_path_factory.mktemp("flex-heads")
    out = {}
    for case in ALL:
        model = build(case)
        full, folder, base = root / case / "full", root / case / "adapter", root / case / "base"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.save_pretrained(full)
            model.save_adapter(str(folder), "a", with_head=False)
            model.save_head(str(folder), HEAD)
            save_base(model, base)
        out[case] = (full, folder, base)
    return out


@pytest.mark.parametrize("case", ALL)
@pytest.mark.parametrize("saved_with", ["save_pretrained", "save_adapter"])
def test_saved_checkpoint_scans_already_flex(saved, case, saved_with):
    full, folder, _ = saved[case]
    report = scan(full if saved_with == "save_pretrained" else folder)
    assert report["verdict"] == "already-flex", report["findings"]
    assert not rules_of(report) & {"HC110", "HC115"}
    head_type = json.loads((full / "config.json").read_text())["prediction_heads"][HEAD]["head_type"]
    assert report["head"]["type"] == head_type


@pytest.mark.parametrize("case", ALL)
@pytest.mark.parametrize("saved_with", ["save_pretrained", "save_adapter"])
def test_already_flex_loads_as_it_is_with_the_writers_outputs(saved, case, saved_with):
    """The already-flex promise: adapters loads it with every head weight placed, and the logits and loss
    of the model that wrote it."""
    full, folder, base = saved[case]
    model = build(case)
    if saved_with == "save_pretrained":
        loaded, info = AutoAdapterModel.from_pretrained(full, output_loading_info=True)
        assert not info["missing_keys"] and not info["unexpected_keys"], info
    else:
        loaded = AutoAdapterModel.from_pretrained(base)
        info: dict = {}
        loaded.load_adapter(str(folder), loading_info=info)
        loaded.load_head(str(folder))
        assert not [k for k in info.get("missing_keys", []) + info.get("unexpected_keys", []) if "heads." in k], info
    loaded.eval().set_active_adapters("a")
    loaded.active_head = HEAD
    head_config = model.heads[HEAD].config
    inputs = fixed_inputs(model.config, head_config, head_config.get("num_choices"))
    (want, want_loss), (got, got_loss) = model_outputs(model, inputs), model_outputs(loaded, inputs)
    assert len(want) == len(got) > 0
    for a, b in zip(want, got):
        assert torch.allclose(a, b, atol=1e-6), float((a - b).abs().max())
    assert torch.allclose(want_loss, got_loss, atol=1e-6)


def test_several_heads_and_the_active_head(tmp_path):
    model = _model("bert")
    zoo._add_heads(model, {"sst": {"type": "classification", "num_labels": 3},
                           "ner": {"type": "tagging", "num_labels": 7, "layers": 2},
                           "parse": {"type": "dependency_parsing", "num_labels": 4}})
    model.active_head = "ner"
    model.save_pretrained(tmp_path / "full")
    report = scan(tmp_path / "full")
    assert report["verdict"] == "already-flex" and not rules_of(report) & {"HC110"}
    loaded, info = AutoAdapterModel.from_pretrained(tmp_path / "full", output_loading_info=True)
    assert set(loaded.heads) == {"sst", "ner", "parse"}
    assert not info["missing_keys"] and not info["unexpected_keys"]


def test_a_head_config_that_disagrees_with_its_weights_is_still_caught(saved, tmp_path):
    """The layouts are exact: claiming one layer fewer than the weights hold is HC110."""
    full, _, _ = saved["classification-3-layers-relu-pooler"]
    broken = tmp_path / "broken"
    broken.mkdir()
    for item in full.iterdir():
        (broken / item.name).write_bytes(item.read_bytes())
    config = json.loads((broken / "config.json").read_text())
    config["prediction_heads"][HEAD]["layers"] = 2
    (broken / "config.json").write_text(json.dumps(config))
    report = scan(broken)
    assert report["verdict"] == "not-convertible" and "HC110" in rules_of(report)


def test_dependency_parsing_regression(saved):
    """Was: not-convertible with HC110 'no heads.<name>.* weights' (biaffine parameters are not numbered)."""
    full, folder, _ = saved["dependency-parsing"]
    for path in (full, folder):
        report = scan(path)
        assert report["verdict"] == "already-flex" and report["head"]["type"] == "dependency_parsing"
        assert report["head"]["num_labels"] == 5


@pytest.mark.parametrize("case", ["classification", "dependency-parsing", "causal-lm"])
def test_verify_of_an_already_flex_checkpoint(saved, tmp_path, case):
    """Was: AttributeError (module transformers has no attribute BertAdapterModel)."""
    full, _, _ = saved[case]
    result = run_cli("migrate", full, "--out", tmp_path / "out", "--verify")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    line = next(line for line in result.stdout.splitlines() if line.startswith("verify:"))
    assert "missing keys 0, unexpected keys 0" in line
    assert (tmp_path / "out" / "config.json").exists()


def test_verify_when_the_head_type_decides(tmp_path):
    """Was: KeyError 'architectures' — the static class then comes from the judgement, not the config."""
    src = zoo.build_static("BertForSequenceClassification", tmp_path / "src", num_labels=3)
    config = json.loads((src / "config.json").read_text())
    del config["architectures"]
    (src / "config.json").write_text(json.dumps(config))
    assert scan(src)["verdict"] == "ambiguous"
    result = run_cli("migrate", src, "--out", tmp_path / "out", "--head-type", "classification", "--verify")
    assert result.returncode == 0, result.stderr
    assert any(line.startswith("verify:") for line in result.stdout.splitlines())

