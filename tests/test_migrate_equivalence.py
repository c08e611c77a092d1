"""Migrated checkpoints load into adapters with no missing/unexpected keys and give the original's logits and loss."""

from __future__ import annotations

import json

import pytest

zoo = pytest.importorskip("zoo")
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
adapters = pytest.importorskip("adapters")

from headcheck.migration.run import migrate  # noqa: E402
from headcheck.migration.verify import OUTPUT_FIELDS, fixed_inputs  # noqa: E402

from helpers import scan  # noqa: E402

ATOL = 1e-5


def run(model, inputs):
    with torch.no_grad():
        out = model(**inputs)
    return [getattr(out, f) for f in OUTPUT_FIELDS if getattr(out, f, None) is not None], out.loss


def assert_equivalent(src, dst, atol=ATOL, num_choices=None, language=None):
    arch = json.loads((src / "config.json").read_text())["architectures"][0]
    static = getattr(transformers, arch).from_pretrained(src).eval()
    flex, info = adapters.AutoAdapterModel.from_pretrained(dst, output_loading_info=True)
    flex.eval()
    if language is not None:  # X-MOD: the built-in language adapter became an adapters adapter of that name
        static.set_default_language(language)
        flex.set_active_adapters(language)
    assert info["missing_keys"] == [] and info["unexpected_keys"] == [], info
    head_config = next(iter(flex.config.prediction_heads.values()))
    inputs = fixed_inputs(static.config, head_config, num_choices or head_config.get("num_choices"))
    (logits_a, loss_a), (logits_b, loss_b) = run(static, inputs), run(flex, inputs)
    assert len(logits_a) == len(logits_b) > 0
    for a, b in zip(logits_a, logits_b):
        assert a.shape == b.shape
        torch.testing.assert_close(b.float(), a.float(), atol=atol, rtol=0)
    torch.testing.assert_close(loss_b.float(), loss_a.float(), atol=atol, rtol=0)
    return head_config


@pytest.mark.parametrize("class_name", zoo.STATIC_CLASSES)
def test_every_static_class_migrates_equivalently(class_name, tmp_path):
    src = zoo.build_static(class_name, tmp_path / "src")
    result = migrate(src, tmp_path / "out")
    assert result.rescan.verdict.value == "already-flex"
    language = json.loads((src / "config.json").read_text())["default_language"] if class_name.startswith("Xmod") else None
    head_config = assert_equivalent(src, tmp_path / "out", language=language)
    if head_config["head_type"] == "multiple_choice":
        assert head_config["num_choices"] == 2  # nothing recorded it; --num-choices sets it


@pytest.mark.parametrize("class_name,overrides", [
    ("BertForSequenceClassification", {"num_labels": 4, "problem_type": "multi_label_classification"}),
    ("RobertaForSequenceClassification", {"num_labels": 4, "problem_type": "multi_label_classification"}),
    ("BertForSequenceClassification", {"num_labels": 1, "problem_type": "regression"}),
    ("RobertaForSequenceClassification", {"num_labels": 1, "problem_type": "regression"}),
    ("T5ForQuestionAnswering", {"tie_word_embeddings": True}),
    ("MT5ForConditionalGeneration", {"tie_word_embeddings": False}),
])
def test_loss_and_layout_specials(class_name, overrides, tmp_path):
    src = zoo.build_static(class_name, tmp_path / "src", **overrides)
    migrate(src, tmp_path / "out")
    head_config = assert_equivalent(src, tmp_path / "out")
    if overrides.get("problem_type") == "multi_label_classification":
        assert head_config["head_type"] == "multilabel_classification"


@pytest.mark.parametrize("variant", ["safetensors-sharded", "bin", "bin-sharded", "float16"])
def test_storage_variants(variant, tmp_path):
    kwargs = {
        "safetensors-sharded": dict(max_shard_size="40KB"),
        "bin": dict(safe_serialization=False),
        "bin-sharded": dict(safe_serialization=False, max_shard_size="40KB"),
        "float16": dict(dtype=torch.float16),
    }[variant]
    src = zoo.build_static("RobertaForSequenceClassification", tmp_path / "src", num_labels=3, **kwargs)
    migrate(src, tmp_path / "out")
    out_files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert not any(name.endswith(".bin") for name in out_files)
    if "sharded" in variant:
        index = json.loads((tmp_path / "out" / "model.safetensors.index.json").read_text())
        assert len(set(index["weight_map"].values())) > 1
        assert all((tmp_path / "out" / f).exists() for f in index["weight_map"].values())
    assert_equivalent(src, tmp_path / "out", atol=1e-3 if variant == "float16" else ATOL)
    if variant == "float16":
        header = scan(tmp_path / "out")
        assert header["verdict"] == "already-flex"


def test_num_choices_is_written(tmp_path):
    src = zoo.build_static("BertForMultipleChoice", tmp_path / "src")
    migrate(src, tmp_path / "out", num_choices=4)
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert config["prediction_heads"]["default"]["num_choices"] == 4
    assert_equivalent(src, tmp_path / "out", num_choices=4)


@pytest.mark.parametrize("ln_before_adapter", [True, False])
@pytest.mark.parametrize("language", ["en_XX", "de_DE"])
def test_xmod_language_adapters_are_carried_over(tmp_path, ln_before_adapter, language):
    src = zoo.build_static("XmodForSequenceClassification", tmp_path / "src", ln_before_adapter=ln_before_adapter)
    migrate(src, tmp_path / "out")
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert set(config["adapters"]["adapters"]) == {"en_XX", "de_DE"}
    assert_equivalent(src, tmp_path / "out", language=language)


@pytest.mark.parametrize("class_name,overrides,fails", [
    ("T5ForQuestionAnswering", {}, True),
    ("MT5ForQuestionAnswering", {}, True),
    ("MT5ForConditionalGeneration", {}, True),
    ("LlamaForQuestionAnswering", {}, True),
    ("T5ForConditionalGeneration", {}, False),  # control: lm_head tied, nothing but base weights
])
def test_hc123_matches_what_adapters_itself_does(tmp_path, class_name, overrides, fails):
    """HC123 says adapters' own conversion fails or changes logits: check it against adapters itself."""
    src = zoo.build_static(class_name, tmp_path / "src", **overrides)
    assert ("HC123" in {f["rule"] for f in scan(src)["findings"]}) == fails
    try:
        flex = adapters.AutoAdapterModel.from_pretrained(src).eval()
    except ValueError as exc:
        assert fails and "corrupted" in str(exc)
        return
    static = getattr(transformers, class_name).from_pretrained(src).eval()
    inputs = fixed_inputs(static.config, next(iter(flex.config.prediction_heads.values())))
    (a, _), (b, _) = run(static, inputs), run(flex, inputs)
    differs = any(not torch.allclose(x, y, atol=ATOL) for x, y in zip(a, b))
    assert differs == fails


@pytest.mark.parametrize("class_name,overrides,what", [
    ("BertForMaskedLM", {}, "logits"),  # HC108: tied output bias dropped
    ("RobertaForCausalLM", {}, "logits"),  # HC108
    ("BartForConditionalGeneration", {}, "logits"),  # final_logits_bias dropped
    ("BertForSequenceClassification", {"num_labels": 3, "problem_type": "multi_label_classification"}, "loss"),  # HC103
])
def test_adapters_own_conversion_loses_what_migrate_keeps(tmp_path, class_name, overrides, what):
    """Control for the equivalence tests: these cases really differ when adapters converts them itself."""
    src = zoo.build_static(class_name, tmp_path / "src", **overrides)
    static = getattr(transformers, class_name).from_pretrained(src).eval()
    own = adapters.AutoAdapterModel.from_pretrained(src).eval()
    head_config = dict(next(iter(own.config.prediction_heads.values())))
    if what == "loss":  # feed multi-label targets, as the original was trained
        head_config["head_type"] = "multilabel_classification"
    inputs = fixed_inputs(static.config, head_config)
    a, _ = run(static, inputs)
    if what == "logits":
        b, _ = run(own, inputs)
        assert not torch.allclose(a[0], b[0], atol=ATOL)
    else:  # the single-label head adapters builds cannot even take multi-label targets
        with pytest.raises(ValueError, match="batch_size"):
            run(own, inputs)
    migrate(src, tmp_path / "out")
    assert_equivalent(src, tmp_path / "out")
