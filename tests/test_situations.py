"""Each verdict situation of the scan issue, judged on real tiny checkpoints built with transformers/adapters."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

zoo = pytest.importorskip("zoo")
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from helpers import rules_of, scan  # noqa: E402


def edit_json(path: Path, **changes) -> None:
    data = json.loads(path.read_text())
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    path.write_text(json.dumps(data))


def labels(n: int) -> dict:
    return {"id2label": {str(i): f"L{i}" for i in range(n)}, "label2id": {f"L{i}": i for i in range(n)}}


@pytest.fixture(scope="session")
def out(tmp_path_factory):
    root = tmp_path_factory.mktemp("situations")
    return lambda name: root / name


def test_custom_head_weights_are_not_convertible(out):
    config = zoo.tiny_config("BertForSequenceClassification", num_labels=3)
    model = transformers.BertForSequenceClassification(config)
    model.classifier = torch.nn.Sequential(torch.nn.Linear(32, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    model.save_pretrained(out("custom"))
    report = scan(out("custom"))
    assert report["head"]["type"] == "classification"
    assert report["verdict"] == "not-convertible"
    assert "HC101" in rules_of(report)
    assert report["plan"] is None


def test_label_count_disagreeing_with_weights(out):
    folder = zoo.build_static("BertForSequenceClassification", out("mismatch"), num_labels=5)
    edit_json(folder / "config.json", **labels(3))
    report = scan(folder)
    assert report["verdict"] == "not-convertible"
    assert "HC102" in rules_of(report)
    assert report["head"]["num_labels"] == 5  # taken from the weights


def test_multilabel_becomes_multilabel_classification(out):
    folder = zoo.build_static("BertForSequenceClassification", out("ml"), num_labels=4,
                              problem_type="multi_label_classification")
    report = scan(folder)
    assert report["verdict"] == "convertible"
    assert report["head"]["type"] == "multilabel_classification"
    assert "HC103" in rules_of(report)
    assert report["plan"]["head_config"]["head_type"] == "multilabel_classification"
    assert report["plan"]["head_config"]["num_labels"] == 4


@pytest.mark.parametrize("class_name", ["BertForSequenceClassification", "RobertaForSequenceClassification"])
def test_single_output_regression_is_convertible(out, class_name):
    folder = zoo.build_static(class_name, out(f"reg1-{class_name}"), num_labels=1, problem_type="regression")
    report = scan(folder)
    assert report["verdict"] == "convertible"
    assert report["head"] | {"evidence": None} == report["head"] | {
        "type": "classification", "problem_type": "regression", "num_labels": 1, "evidence": None}
    assert "HC104" in rules_of(report)


@pytest.mark.parametrize("class_name", ["BertForSequenceClassification", "RobertaForSequenceClassification"])
def test_multi_output_regression_is_not_convertible(out, class_name):
    folder = zoo.build_static(class_name, out(f"reg2-{class_name}"), num_labels=2, problem_type="regression")
    report = scan(folder)
    assert report["verdict"] == "not-convertible"
    assert report["head"]["problem_type"] == "regression"
    assert "HC105" in rules_of(report)


@pytest.mark.parametrize("class_name", ["XLNetForSequenceClassification", "ModernBertForSequenceClassification"])
def test_unsupported_family(out, class_name):
    folder = zoo.build_any(class_name, out(class_name))
    report = scan(folder)
    assert report["head"]["type"] == "classification"
    assert report["verdict"] == "not-convertible"
    assert rules_of(report) == {"HC106"}


@pytest.mark.parametrize("class_name", ["BertForPreTraining", "BertForNextSentencePrediction"])
def test_head_without_flex_equivalent(out, class_name):
    report = scan(zoo.build_any(class_name, out(class_name)))
    assert report["head"]["type"] == "unknown"
    assert report["verdict"] == "not-convertible"
    assert rules_of(report) == {"HC107"}


@pytest.mark.parametrize("class_name,tied,target_index", [
    ("BertForMaskedLM", "cls.predictions.bias", 3),
    ("RobertaForMaskedLM", "lm_head.bias", 3),
    ("AlbertForMaskedLM", "predictions.bias", 3),
])
def test_tied_lm_bias_is_carried_by_the_plan(out, class_name, tied, target_index):
    report = scan(zoo.build_static(class_name, out(f"tied-{class_name}")))
    assert report["verdict"] == "convertible"
    assert "HC108" in rules_of(report)
    renames = {r["source"]: r["target"] for r in report["plan"]["renames"]}
    assert renames[tied] == f"heads.default.{target_index}.bias"


def test_missing_label_map_uses_weight_shape(out):
    folder = zoo.build_static("BertForSequenceClassification", out("nolabels"), num_labels=3)
    edit_json(folder / "config.json", id2label=None, label2id=None)
    report = scan(folder)
    assert report["verdict"] == "convertible"
    assert "HC109" in rules_of(report)
    assert report["head"]["num_labels"] == 3
    assert len(report["plan"]["head_config"]["label2id"]) == 3


def test_base_model_has_no_head(out):
    report = scan(zoo.build_any("BertModel", out("base")))
    assert report["head"]["type"] == "none"
    assert report["verdict"] == "no-head"
    assert report["layout"] == "base"


def test_consistent_flex_checkpoint_is_already_flex(out):
    folder = zoo.build_flex("bert", out("flex"), {"sst": {"type": "classification", "num_labels": 3}})
    report = scan(folder)
    assert report["layout"] == "flex"
    assert report["verdict"] == "already-flex"
    assert report["head"]["type"] == "classification"
    assert report["head"]["num_labels"] == 3
    assert rules_of(report) == set()


@pytest.mark.parametrize("change", [{"num_labels": 5}, {"layers": 1}, {"label2id": {"a": 0}}])
def test_flex_config_disagreeing_with_weights(out, change):
    name = "flexbad-" + next(iter(change))
    folder = zoo.build_flex("bert", out(name), {"sst": {"type": "classification", "num_labels": 3}})
    config = json.loads((folder / "config.json").read_text())
    config["prediction_heads"]["sst"].update(change)
    (folder / "config.json").write_text(json.dumps(config))
    report = scan(folder)
    assert report["verdict"] == "not-convertible"
    assert "HC110" in rules_of(report)


def test_ambiguous_keys_without_architecture(out):
    folder = zoo.build_static("BertForTokenClassification", out("noarch"), num_labels=3)
    edit_json(folder / "config.json", architectures=None)
    report = scan(folder)
    assert report["verdict"] == "ambiguous"
    assert set(report["head"]["candidates"]) == {"classification", "tagging"}
    assert "HC112" in rules_of(report)
    decided = scan(folder, head_type="tagging")
    assert decided["verdict"] == "convertible"
    assert decided["head"]["type"] == "tagging"
    assert decided["plan"]["head_config"]["head_type"] == "tagging"
    assert "HC113" in rules_of(decided)


def test_custom_auto_map_class_classified_from_keys(out):
    folder = zoo.build_static("RobertaForSequenceClassification", out("automap"), num_labels=3)
    edit_json(folder / "config.json", architectures=["MyRobertaClassifier"],
              auto_map={"AutoModelForSequenceClassification": "modeling_my.MyRobertaClassifier"})
    report = scan(folder)
    assert report["layout"] == "custom"
    assert report["head"]["type"] == "classification"
    assert report["verdict"] == "convertible"
    assert "HC113" in rules_of(report)


def test_pickle_and_sharded_checkpoints_give_the_same_report(out):
    reference = scan(zoo.build_static("RobertaForSequenceClassification", out("ref"), num_labels=3))
    as_bin = scan(zoo.build_static("RobertaForSequenceClassification", out("bin"), num_labels=3,
                                   safe_serialization=False))
    sharded_dir = zoo.build_static("RobertaForSequenceClassification", out("sharded"), num_labels=3,
                                   max_shard_size="20KB")
    assert (sharded_dir / "model.safetensors.index.json").exists()
    sharded = scan(sharded_dir)
    for other in (as_bin, sharded):
        assert other["head"] | {"evidence": None} == reference["head"] | {"evidence": None}
        assert other["verdict"] == reference["verdict"]
        assert rules_of(other) == rules_of(reference)
        assert len(other["plan"]["renames"]) == len(reference["plan"]["renames"])


@pytest.mark.parametrize("head_from,verdict,rules", [
    ("flex", "already-flex", set()),
    ("static", "convertible", {"HC117"}),
    ("legacy", "convertible", {"HC114"}),
    ("none", "no-head", set()),
])
def test_adapter_folders(out, head_from, verdict, rules):
    folder = zoo.build_adapter_folder(out(f"adapter-{head_from}"), head_from=head_from)
    report = scan(folder)
    assert report["kind"] == "adapter"
    assert report["verdict"] == verdict
    assert rules_of(report) == rules
    if head_from != "none":
        assert report["head"]["type"] == "classification"
        assert report["head"]["num_labels"] == 3


@pytest.mark.parametrize("model_class", ["BertForPreTraining", "XLNetForSequenceClassification", "BertModelWithHeads",
                                         "BertAdapterModel"])
def test_adapter_heads_load_adapter_refuses(out, model_class):
    # The adapter belongs to a roberta model: load_adapter builds RobertaAdapterModel and raises for these classes.
    folder = zoo.build_adapter_folder(out(f"refused-{model_class}"), head_from="flex")
    edit_json(folder / "head_config.json", model_class=model_class)
    report = scan(folder)
    assert report["verdict"] == "not-convertible"
    assert "HC111" in rules_of(report)
    with pytest.raises(ValueError, match="Cannot automatically convert prediction head"):
        roberta_adapter_model().load_adapter(str(folder))


def roberta_adapter_model():
    import adapters

    return adapters.AutoAdapterModel.from_config(zoo.tiny_config("roberta"))


@pytest.mark.parametrize("head_from", ["flex", "static", "legacy"])
def test_adapter_heads_load_adapter_accepts(out, head_from):
    folder = zoo.build_adapter_folder(out(f"accepted-{head_from}"), head_from=head_from)
    assert scan(folder)["verdict"] in ("already-flex", "convertible")
    model = roberta_adapter_model()
    name = model.load_adapter(str(folder))
    assert name in model.adapters_config
    assert len(model.heads) == 1
