"""`exports.transformers` in scan reports (issue 18): exportable, native, not-exportable (a rule per reason),
not-applicable; through the console script, every JSON report validated against the shipped schema."""

from __future__ import annotations

import json

import pytest

zoo = pytest.importorskip("zoo")

from helpers import CHECKPOINTS, run_cli, validated  # noqa: E402


def scan_json(path) -> dict:
    result = run_cli("scan", path, "--format", "json")
    assert result.returncode == 0, result.stderr
    return validated(json.loads(result.stdout))


def export_of(report: dict) -> dict:
    return report["exports"]["transformers"]


# shape -> (model_type, heads, expected verdict, architecture or refusing rule)
CASES = {
    "bert-default-classification": ("bert", {"sst": {"type": "classification", "num_labels": 3}},
                                    "exportable", "BertForSequenceClassification"),
    "roberta-default-classification": ("roberta", {"sst": {"type": "classification", "num_labels": 3}},
                                       "exportable", "RobertaForSequenceClassification"),
    "distilbert-tanh-classification": ("distilbert", {"sst": {"type": "classification", "num_labels": 2}},
                                       "not-exportable", "HC140"),
    "bert-two-layer-tagging": ("bert", {"ner": {"type": "tagging", "num_labels": 5, "layers": 2}},
                               "not-exportable", "HC141"),
    "bert-dependency-parsing": ("bert", {"ud": {"type": "dependency_parsing", "num_labels": 4}},
                                "not-exportable", "HC142"),
    "gpt2-classification": ("gpt2", {"sst": {"type": "classification", "num_labels": 2}},
                            "not-exportable", "HC143"),
    "bert-two-heads": ("bert", {"sst": {"type": "classification", "num_labels": 2},
                                "ner": {"type": "tagging", "num_labels": 3}}, "not-exportable", "HC144"),
}


@pytest.mark.parametrize("shape", sorted(CASES))
def test_flex_checkpoints_are_judged(shape, tmp_path):
    model_type, heads, verdict, expected = CASES[shape]
    src = zoo.build_flex(model_type, tmp_path / shape, heads)
    report = scan_json(src)
    export = export_of(report)
    assert export["verdict"] == verdict, export
    if verdict == "exportable":
        assert export["architecture"] == expected and export["rules"] == []
    else:
        assert export["architecture"] is None and export["rules"] == [expected]
        assert [f["rule"] for f in export["findings"]] == [expected]
        assert expected not in {f["rule"] for f in report["findings"]}  # nothing wrong for a flex user
    assert report["verdict"] == "already-flex"  # the flex judgement is unchanged; exports are a verdict of their own


def test_static_checkpoint_is_native_and_text_report_has_one_line_per_target(tmp_path):
    report = scan_json(CHECKPOINTS / "bert-seq-cls")
    assert export_of(report) == {"verdict": "native", "architecture": "BertForSequenceClassification", "head": None,
                                 "adapter": None, "rules": [], "findings": [], "notes": []}
    text = run_cli("scan", CHECKPOINTS / "bert-seq-cls").stdout
    assert [line for line in text.splitlines() if line.strip().startswith("export")] == [
        "  export    transformers: native (BertForSequenceClassification)", "  export    peft: not-applicable"]


def test_adapter_folder_with_a_bottleneck_adapter_is_refused():
    report = scan_json(CHECKPOINTS / "adapter-flex-head")
    assert export_of(report)["verdict"] == "not-exportable" and export_of(report)["rules"] == ["HC145"]


def test_peft_adapter_is_not_applicable_for_transformers_and_native_for_peft():
    result = run_cli("scan", CHECKPOINTS / "peft-seq-cls", "--format", "json")
    report = validated(json.loads(result.stdout))
    assert export_of(report)["verdict"] == "not-applicable" and report["exports"]["peft"]["verdict"] == "native"


def test_full_model_with_a_bottleneck_adapter_is_refused(tmp_path):
    src = zoo.build_flex("bert", tmp_path / "src", {"sst": {"type": "classification", "num_labels": 2}})
    config = json.loads((src / "config.json").read_text())
    config["adapters"]["adapters"] = {"task": "seq_bn"}
    (src / "config.json").write_text(json.dumps(config))
    export = export_of(scan_json(src))
    assert export["verdict"] == "not-exportable" and export["rules"] == ["HC145"]


@pytest.mark.parametrize("code", ["HC140", "HC141", "HC142", "HC143", "HC144", "HC145", "HC146", "HC148"])
def test_every_export_rule_is_explained(code):
    result = run_cli("rule", code)
    assert result.returncode == 0 and "How to fix" in result.stdout, result.stderr


@pytest.mark.parametrize("block,reason", [
    ({"adapters": ["task"]}, "names its adapters in a list"),
    ({"adapters": {"task": "key"}, "config_map": [1]}, "a named adapter config without its settings"),
    ({"adapters": {"task": {"architecture": "lora", "r": 0, "alpha": "x", "composition_mode": "add"}}},
     "not positive numbers"),
    ({"adapters": {"task": 5}}, "a named adapter config without its settings"),
])
def test_malformed_adapters_blocks_are_refused_not_crashed_on(block, reason, tmp_path):
    src = zoo.build_flex("bert", tmp_path / "src", {"sst": {"type": "classification", "num_labels": 2}})
    config = json.loads((src / "config.json").read_text())
    (src / "config.json").write_text(json.dumps({**config, "adapters": block}))
    export = export_of(scan_json(src))
    assert export["verdict"] == "not-exportable" and reason in export["findings"][0]["message"], export
