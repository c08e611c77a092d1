"""`migrate --to transformers` (issue 18 #2, #3): every head shape headcheck exports loads with transformers' own
class with no missing or unexpected keys and no adapters keys left, and gives the adapters model's logits and loss;
every refused shape exits 1, writes nothing and names its rule. Through the console script."""

from __future__ import annotations

import json

import pytest

zoo = pytest.importorskip("zoo")
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
adapters = pytest.importorskip("adapters")

from headcheck.migration.verify import fixed_inputs, model_outputs  # noqa: E402

from helpers import run_cli, validated  # noqa: E402

ATOL = 1e-5
LABELS = {"negative": 0, "neutral": 1, "positive": 2}

# shape -> (model_type, flex heads, the class the export declares)
EXPORTABLE = {
    "bert-default-classification": ("bert", {"sst": {"type": "classification", "num_labels": 3, "id2label":
                                                     {v: k for k, v in LABELS.items()}}},
                                    "BertForSequenceClassification"),
    "bert-pooler-classification": ("bert", {"sst": {"type": "classification", "num_labels": 3, "layers": 1,
                                                    "activation_function": None, "use_pooler": True}},
                                   "BertForSequenceClassification"),
    "bert-regression": ("bert", {"sts": {"type": "classification", "num_labels": 1}}, "BertForSequenceClassification"),
    "bert-multilabel": ("bert", {"tags": {"type": "multilabel_classification", "num_labels": 4}},
                        "BertForSequenceClassification"),
    "bert-multiple-choice": ("bert", {"swag": {"type": "multiple_choice", "num_choices": 3}}, "BertForMultipleChoice"),
    "bert-tagging": ("bert", {"ner": {"type": "tagging", "num_labels": 5}}, "BertForTokenClassification"),
    "bert-qa": ("bert", {"squad": {"type": "question_answering"}}, "BertForQuestionAnswering"),
    "bert-masked-lm": ("bert", {"mlm": {"type": "masked_lm"}}, "BertForMaskedLM"),
    "roberta-default-classification": ("roberta", {"sst": {"type": "classification", "num_labels": 3}},
                                       "RobertaForSequenceClassification"),
    "roberta-multiple-choice": ("roberta", {"swag": {"type": "multiple_choice", "num_choices": 2}},
                                "RobertaForMultipleChoice"),
    "roberta-masked-lm": ("roberta", {"mlm": {"type": "masked_lm"}}, "RobertaForMaskedLM"),
    "xlm-roberta-default-classification": ("xlm-roberta", {"sst": {"type": "classification", "num_labels": 2}},
                                           "XLMRobertaForSequenceClassification"),
    "distilbert-relu-classification": ("distilbert", {"sst": {"type": "classification", "num_labels": 2,
                                                              "activation_function": "relu"}},
                                       "DistilBertForSequenceClassification"),
    "distilbert-tagging": ("distilbert", {"ner": {"type": "tagging", "num_labels": 3}},
                           "DistilBertForTokenClassification"),
    "electra-gelu-classification": ("electra", {"sst": {"type": "classification", "num_labels": 2,
                                                        "activation_function": "gelu"}},
                                    "ElectraForSequenceClassification"),
    # add_causal_lm_head always adds an output bias and a transform layer; a causal LM head without them is one
    # converted from GPT2LMHeadModel (CONVERTED below)
    "gpt2-qa": ("gpt2", {"squad": {"type": "question_answering"}}, "GPT2ForQuestionAnswering"),
    "bart-default-classification": ("bart", {"sst": {"type": "classification", "num_labels": 3}},
                                    "BartForSequenceClassification"),
    "bart-seq2seq-lm": ("bart", {"gen": {"type": "seq2seq_lm"}}, "BartForConditionalGeneration"),
    "t5-seq2seq-lm": ("t5", {"gen": {"type": "seq2seq_lm"}}, "T5ForConditionalGeneration"),
    "bart-qa": ("bart", {"squad": {"type": "question_answering"}}, "BartForQuestionAnswering"),
    # T5AdapterModel scales the head's input by d_model**-0.5 (tied embeddings), T5ForQuestionAnswering does not:
    # the factor is folded into qa_outputs.weight
    "t5-qa-tied": ("t5", {"squad": {"type": "question_answering"}}, "T5ForQuestionAnswering"),
    # T5AdapterModel pools a classification head's eos token from the decoder output it has NOT scaled (the
    # d_model**-0.5 factor goes only into the output QA and LM heads read), as T5ForSequenceClassification does:
    # no factor, and the base model stays under transformer.*
    "t5-default-classification": ("t5", {"sst": {"type": "classification", "num_labels": 3}},
                                  "T5ForSequenceClassification"),
    "t5-regression": ("t5", {"sts": {"type": "classification", "num_labels": 1}}, "T5ForSequenceClassification"),
    "t5-multilabel": ("t5", {"tags": {"type": "multilabel_classification", "num_labels": 4}},
                      "T5ForSequenceClassification"),
    "beit-pooler-image-classification": ("beit", {"img": {"type": "image_classification", "num_labels": 3,
                                                          "use_pooler": True}}, "BeitForImageClassification"),
    "vit-image-classification": ("vit", {"img": {"type": "image_classification", "num_labels": 3}},
                                 "ViTForImageClassification"),
}

# static classes migrated into flex by headcheck, then exported: the round trip gives the class back
CONVERTED = ["BertForSequenceClassification", "BertForMaskedLM", "RobertaForSequenceClassification",
             "XLMRobertaForTokenClassification", "DistilBertForSequenceClassification", "ElectraForSequenceClassification",
             "GPT2LMHeadModel", "BartForConditionalGeneration", "T5ForConditionalGeneration", "T5ForSequenceClassification",
             "BeitForImageClassification",
             "ViTForImageClassification", "DebertaForSequenceClassification", "DebertaForTokenClassification",
             "DebertaForQuestionAnswering", "DebertaForMaskedLM"]

# shape -> (model_type, flex heads, the rule that refuses it)
REFUSED = {
    "distilbert-tanh-classification": ("distilbert", {"sst": {"type": "classification", "num_labels": 2}}, "HC140"),
    "electra-tanh-classification": ("electra", {"sst": {"type": "classification", "num_labels": 2}}, "HC140"),
    "bert-three-layer-classification": ("bert", {"sst": {"type": "classification", "num_labels": 2, "layers": 3}},
                                        "HC141"),
    "bert-two-layer-tagging": ("bert", {"ner": {"type": "tagging", "num_labels": 3, "layers": 2}}, "HC141"),
    "bert-dependency-parsing": ("bert", {"ud": {"type": "dependency_parsing", "num_labels": 4}}, "HC142"),
    "gpt2-classification": ("gpt2", {"sst": {"type": "classification", "num_labels": 2}}, "HC143"),
    # add_causal_lm_head's default: a transform layer with layer norm before the output, GPT2LMHeadModel has none
    "gpt2-default-causal-lm": ("gpt2", {"lm": {"type": "causal_lm"}}, "HC141"),
    # ViTForImageClassification is built without the pooler: a head on it has no place
    "vit-pooler-image-classification": ("vit", {"img": {"type": "image_classification", "num_labels": 3,
                                                        "use_pooler": True}}, "HC141"),
    "bert-two-heads": ("bert", {"sst": {"type": "classification", "num_labels": 2},
                                "ner": {"type": "tagging", "num_labels": 3}}, "HC144"),
}


def build_flex(model_type, out, heads):
    """zoo.build_flex with every bias non-zero: a dropped or misplaced bias must change the outputs."""
    config = zoo.tiny_config(model_type)
    torch.manual_seed(zoo.SEED)
    model = adapters.AutoAdapterModel.from_config(config).eval()
    zoo._add_heads(model, heads)
    zoo._nonzero_biases(model)
    model.save_pretrained(out)
    return out


def assert_export_equal(src, dst, head, atol=ATOL) -> tuple[float, float]:
    """The export loads with plain transformers (no missing/unexpected keys, no adapters keys) and gives the
    adapters model's logits and loss; returns (max |dlogits|, |dloss|)."""
    config = json.loads((dst / "config.json").read_text())
    assert not {"adapters", "prediction_heads", "custom_heads"} & set(config), config.keys()
    exported, info = getattr(transformers, config["architectures"][0]).from_pretrained(dst, output_loading_info=True)
    assert info["missing_keys"] == [] and info["unexpected_keys"] == [], info
    flex = adapters.AutoAdapterModel.from_pretrained(src).eval()
    flex.active_head = head
    head_config = flex.config.prediction_heads[head]
    inputs = fixed_inputs(exported.config, head_config, head_config.get("num_choices"))
    (logits_a, loss_a), (logits_b, loss_b) = model_outputs(flex, inputs), model_outputs(exported.eval(), inputs)
    assert len(logits_a) == len(logits_b) > 0
    for a, b in zip(logits_a, logits_b):
        torch.testing.assert_close(b, a, atol=atol, rtol=0)
    torch.testing.assert_close(loss_b, loss_a, atol=atol, rtol=0)
    return (max(float((a - b).abs().max()) for a, b in zip(logits_a, logits_b)), float((loss_a - loss_b).abs()))


@pytest.mark.parametrize("shape", sorted(EXPORTABLE))
def test_exportable_heads_load_in_transformers_with_equal_outputs(shape, tmp_path):
    model_type, heads, architecture = EXPORTABLE[shape]
    src = build_flex(model_type, tmp_path / "src", heads)
    scanned = validated(json.loads(run_cli("scan", src, "--format", "json").stdout))
    assert scanned["exports"]["transformers"]["verdict"] == "exportable"
    assert scanned["exports"]["transformers"]["architecture"] == architecture
    result = run_cli("migrate", src, "--to", "transformers", "--out", tmp_path / "out", "--format", "json")
    assert result.returncode == 0, result.stderr
    written = json.loads(result.stdout)
    assert written["to"] == "transformers" and written["architecture"] == architecture
    assert written["rescan_export"]["verdict"] == "native"
    assert_export_equal(src, tmp_path / "out", next(iter(heads)))
    if shape == "bert-default-classification":  # the label map is carried into id2label / label2id
        config = json.loads((tmp_path / "out" / "config.json").read_text())
        assert config["label2id"] == LABELS and config["id2label"] == {str(v): k for k, v in LABELS.items()}
    if shape in ("bert-regression", "bert-multilabel"):  # the loss is kept through problem_type
        config = json.loads((tmp_path / "out" / "config.json").read_text())
        assert config["problem_type"] == {"bert-regression": "regression",
                                          "bert-multilabel": "multi_label_classification"}[shape]


@pytest.mark.parametrize("class_name", CONVERTED)
def test_converted_heads_export_back_to_their_class(class_name, tmp_path):
    static = zoo.build_static(class_name, tmp_path / "static")
    assert run_cli("migrate", static, "--out", tmp_path / "flex").returncode == 0
    head = next(iter(json.loads((tmp_path / "flex" / "config.json").read_text())["prediction_heads"]))
    result = run_cli("migrate", tmp_path / "flex", "--to", "transformers", "--out", tmp_path / "out", "--format", "json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["architecture"] == class_name
    assert_export_equal(tmp_path / "flex", tmp_path / "out", head)


@pytest.mark.parametrize("shape", sorted(REFUSED))
def test_refused_heads_exit_1_write_nothing_and_name_their_rule(shape, tmp_path):
    model_type, heads, rule = REFUSED[shape]
    src = build_flex(model_type, tmp_path / "src", heads)
    result = run_cli("migrate", src, "--to", "transformers", "--out", tmp_path / "out")
    assert result.returncode == 1, result.stderr
    assert rule in result.stderr and "nothing written" in result.stderr
    assert not (tmp_path / "out").exists()


def test_one_of_several_heads_is_exported_with_head(tmp_path):
    _, heads, _ = REFUSED["bert-two-heads"]
    src = build_flex("bert", tmp_path / "src", heads)
    result = run_cli("migrate", src, "--to", "transformers", "--head", "ner", "--out", tmp_path / "out",
                     "--format", "json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["architecture"] == "BertForTokenClassification"
    assert_export_equal(src, tmp_path / "out", "ner")
    unknown = run_cli("migrate", src, "--to", "transformers", "--head", "pos", "--out", tmp_path / "other")
    assert unknown.returncode == 4 and "heads are ner, sst" in unknown.stderr and not (tmp_path / "other").exists()


def test_verify_compares_with_plain_transformers(tmp_path):
    src = build_flex("roberta", tmp_path / "src", {"sst": {"type": "classification", "num_labels": 3}})
    result = run_cli("migrate", src, "--to", "transformers", "--out", tmp_path / "out", "--verify", "--format", "json")
    assert result.returncode == 0, result.stderr
    comparison = json.loads(result.stdout)["comparison"]
    assert comparison["ok"] and comparison["missing_keys"] == [] and comparison["unexpected_keys"] == []
    assert comparison["max_logits_diff"] <= ATOL and comparison["loss_diff"] <= ATOL


def test_dry_run_writes_nothing_and_a_static_checkpoint_is_a_checked_copy(tmp_path):
    src = build_flex("bert", tmp_path / "src", {"sst": {"type": "classification", "num_labels": 2}})
    dry = run_cli("migrate", src, "--to", "transformers", "--out", tmp_path / "out", "--dry-run")
    assert dry.returncode == 0 and "rename heads.sst.4.weight -> classifier.weight" in dry.stdout
    assert not (tmp_path / "out").exists()
    static = zoo.build_static("BertForSequenceClassification", tmp_path / "static")
    copied = run_cli("migrate", static, "--to", "transformers", "--out", tmp_path / "copy")
    assert copied.returncode == 0 and "already BertForSequenceClassification" in copied.stdout


def test_flags_of_the_other_direction_are_usage_errors(tmp_path):
    src = build_flex("bert", tmp_path / "src", {"sst": {"type": "classification", "num_labels": 2}})
    assert run_cli("migrate", src, "--head", "sst", "--out", tmp_path / "a").returncode == 4
    assert run_cli("migrate", src, "--to", "transformers", "--num-choices", "3", "--out", tmp_path / "b").returncode == 4
