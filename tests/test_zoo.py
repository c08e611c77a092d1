"""Smoke tests for the tiny-checkpoint builders in tests/zoo.py."""

from __future__ import annotations

import json

import pytest
import torch
from adapters.head_utils import STATIC_TO_FLEX_HEAD_MAP
from safetensors import safe_open

import zoo


def _config(path):
    return json.loads((path / "config.json").read_text())


def _safetensors_keys(path):
    with safe_open(str(path), "pt") as f:
        return set(f.keys())


def test_static_classes_are_the_adapters_map():
    assert zoo.STATIC_CLASSES == list(STATIC_TO_FLEX_HEAD_MAP)
    assert len(zoo.STATIC_CLASSES) == 82


@pytest.mark.parametrize("class_name", zoo.STATIC_CLASSES)
def test_build_static(class_name, tmp_path):
    out = zoo.build_static(class_name, tmp_path / class_name)
    assert out == tmp_path / class_name
    assert (out / "config.json").is_file()
    assert (out / "model.safetensors").is_file()
    assert _config(out)["architectures"] == [class_name]


def test_build_static_is_deterministic(tmp_path):
    a = zoo.build_static("BertForMaskedLM", tmp_path / "a")
    b = zoo.build_static("BertForMaskedLM", tmp_path / "b")
    assert (a / "model.safetensors").read_bytes() == (b / "model.safetensors").read_bytes()


def test_build_static_rejects_other_classes(tmp_path):
    with pytest.raises(KeyError):
        zoo.build_static("BertForPreTraining", tmp_path)


def test_build_static_options(tmp_path):
    bf16 = zoo.build_static("BertForSequenceClassification", tmp_path / "bf16", dtype=torch.bfloat16)
    assert _config(bf16)["dtype"] == "bfloat16"
    with safe_open(str(bf16 / "model.safetensors"), "pt") as f:
        assert f.get_tensor("classifier.weight").dtype == torch.bfloat16

    sharded = zoo.build_static("BertForSequenceClassification", tmp_path / "sharded", max_shard_size="40KB")
    index = json.loads((sharded / "model.safetensors.index.json").read_text())
    shards = set(index["weight_map"].values())
    assert len(shards) > 1 and all((sharded / s).is_file() for s in shards)
    assert not (sharded / "model.safetensors").exists()

    pt = zoo.build_static("BertForSequenceClassification", tmp_path / "bin", safe_serialization=False)
    assert (pt / "pytorch_model.bin").is_file()
    assert not (pt / "model.safetensors").exists()

    labels = zoo.build_static("BertForSequenceClassification", tmp_path / "labels", num_labels=5)
    assert len(_config(labels)["id2label"]) == 5


def test_tiny_config_is_tiny():
    for class_name in zoo.STATIC_CLASSES:
        config = zoo.tiny_config(class_name)
        assert getattr(config, "vocab_size", 0) <= 100, class_name  # ViT has no vocab
    assert zoo.tiny_config("bert").hidden_size == 32
    assert zoo.tiny_config("BertForMaskedLM", hidden_size=64).hidden_size == 64


@pytest.mark.parametrize(
    "class_name",
    [
        "BertForPreTraining",
        "BertForNextSentencePrediction",
        "XLNetForSequenceClassification",
        "ModernBertForSequenceClassification",
        "BertModel",
    ],
)
def test_build_any(class_name, tmp_path):
    out = zoo.build_any(class_name, tmp_path)
    assert (out / "model.safetensors").is_file()
    assert _config(out)["architectures"] == [class_name]


def test_build_flex(tmp_path):
    heads = {
        "sst": {"type": "classification", "num_labels": 3},
        "ml": {"type": "multilabel", "num_labels": 4},
        "mc": {"type": "multiple_choice"},
        "ner": {"type": "tagging", "num_labels": 5},
        "qa": {"type": "question_answering"},
        "mlm": {"type": "masked_lm"},
        "clm": {"type": "causal_lm"},
    }
    out = zoo.build_flex("bert", tmp_path, heads)
    config = _config(out)
    assert config["architectures"] == ["BertAdapterModel"]
    types = {name: head["head_type"] for name, head in config["prediction_heads"].items()}
    assert types == {
        "sst": "classification",
        "ml": "multilabel_classification",
        "mc": "multiple_choice",
        "ner": "tagging",
        "qa": "question_answering",
        "mlm": "masked_lm",
        "clm": "causal_lm",
    }
    assert config["prediction_heads"]["sst"]["num_labels"] == 3
    keys = _safetensors_keys(out / "model.safetensors")
    assert {k.split(".")[1] for k in keys if k.startswith("heads.")} == set(heads)


@pytest.mark.parametrize(
    "model_type, head_type",
    [("vit", "image_classification"), ("bart", "seq2seq_lm"), ("llama", "causal_lm")],
)
def test_build_flex_other_families(model_type, head_type, tmp_path):
    out = zoo.build_flex(model_type, tmp_path, {"h": {"type": head_type}})
    config = _config(out)
    assert config["architectures"][0].endswith("AdapterModel")
    assert config["prediction_heads"]["h"]["head_type"] == head_type


@pytest.mark.parametrize(
    "head_from, model_class",
    [
        ("flex", "RobertaAdapterModel"),
        ("static", "RobertaForSequenceClassification"),
        ("legacy", "RobertaModelWithHeads"),
        ("none", None),
    ],
)
def test_build_adapter_folder(head_from, model_class, tmp_path):
    out = zoo.build_adapter_folder(tmp_path, head_from=head_from)
    adapter_config = json.loads((out / "adapter_config.json").read_text())
    assert adapter_config["name"] == zoo.ADAPTER_NAME
    adapter_keys = torch.load(out / "pytorch_adapter.bin", weights_only=True)
    assert adapter_keys and all(f".adapters.{zoo.ADAPTER_NAME}." in k for k in adapter_keys)
    if model_class is None:
        assert not (out / "head_config.json").exists()
        assert not (out / "pytorch_model_head.bin").exists()
        return
    head_config = json.loads((out / "head_config.json").read_text())
    assert head_config["model_class"] == model_class
    head_keys = set(torch.load(out / "pytorch_model_head.bin", weights_only=True))
    if head_from == "static":
        assert head_config["config"] is None and head_config["num_labels"] == 3
        assert head_keys == {f"classifier.{m}.{p}" for m in ("dense", "out_proj") for p in ("weight", "bias")}
    else:
        assert head_config["config"]["head_type"] == "classification"
        assert head_keys and all(k.startswith(f"heads.{zoo.ADAPTER_NAME}.") for k in head_keys)


def test_build_adapter_folder_safetensors(tmp_path):
    out = zoo.build_adapter_folder(tmp_path, head_from="flex", use_safetensors=True)
    assert (out / "adapter.safetensors").is_file()
    assert (out / "model_head.safetensors").is_file()
