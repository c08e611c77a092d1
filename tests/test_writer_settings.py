"""Which transformers 5 settings migrate writes the way transformers 4.57 reads them (HC133), and which stay refused
(HC127): the branches no writer fixture reaches (tests/test_writers.py loads the ones that have a fixture)."""

from __future__ import annotations

import pytest

from headcheck.judge.writer_settings import settings_rewrite
from headcheck.model import Plan
from headcheck.read.tensor_info import TensorInfo

PLAN = Plan("LlamaAdapterModel", "default", {"head_type": "causal_lm"}, (), "config.json")


def llama(rope_parameters, **extra):
    return {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "max_position_embeddings": 64,
            "rope_parameters": rope_parameters, **extra}


def rules(rewrite) -> list[str]:
    return [f.rule for f in rewrite.findings]


@pytest.mark.parametrize("config,why", [
    (llama({"rope_type": "longrope", "short_factor": [1.0] * 8, "long_factor": [2.0] * 8, "rope_theta": 1e4}),
     "RoPE type 'longrope'"),
    (llama({"rope_type": "linear", "factor": 2.0, "partial_rotary_factor": 0.5, "rope_theta": 1e4}),
     "partial_rotary_factor 0.5"),
    (llama({"rope_type": "linear", "rope_theta": 1e4}), "without a number for factor"),
    (llama({"full_attention": {"rope_type": "default", "rope_theta": 1e4}}), "per layer type"),
    ({**llama({"rope_type": "linear", "factor": 2.0, "rope_theta": 1e4}), "model_type": "mistral"},
     "for model_type 'mistral'"),
    ({**llama({"rope_type": "default", "rope_theta": 1e6}), "model_type": "qwen2"}, "for model_type 'qwen2'"),
])
def test_settings_without_a_4_57_form_stay_refused(config, why):
    rewrite = settings_rewrite(config, "config.json", {}, PLAN)
    assert rules(rewrite) == ["HC127"] and why in rewrite.findings[0].message
    assert rewrite.plan is None


def test_mistral_rope_theta_is_written():
    rewrite = settings_rewrite({**llama({"rope_type": "default", "rope_theta": 1e6}), "model_type": "mistral"},
                               "config.json", {}, PLAN)
    assert rules(rewrite) == ["HC133"]
    assert [(c.key, c.old, c.new) for c in rewrite.plan.config_changes] == [("rope_theta", None, 1e6)]


def test_llama3_takes_the_top_level_pretraining_length_as_transformers_5_does():
    config = llama({"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                    "original_max_position_embeddings": 32, "rope_theta": 1e4}, original_max_position_embeddings=16)
    rewrite = settings_rewrite(config, "config.json", {}, PLAN)
    scaling = {c.key: c.new for c in rewrite.plan.config_changes}["rope_scaling"]
    assert scaling["original_max_position_embeddings"] == 16


def test_a_setting_4_57_computes_the_same_is_no_finding_without_a_plan():
    """A transformers 5 base model (no head, so no plan) with the default RoPE base: nothing differs, nothing to say."""
    config = {**llama({"rope_type": "default", "rope_theta": 10000.0}), "architectures": ["LlamaModel"]}
    assert settings_rewrite(config, "config.json", {}, None).findings == ()


def test_a_setting_that_needs_a_rewrite_is_refused_without_a_plan():
    config = llama({"rope_type": "linear", "factor": 2.0, "rope_theta": 1e4})
    rewrite = settings_rewrite(config, "config.json", {}, None)
    assert rules(rewrite) == ["HC127"] and rewrite.plan is None


def t5(architecture):
    return {"model_type": "t5", "architectures": [architecture], "tie_word_embeddings": True,
            "scale_decoder_outputs": False}


def test_t5_outside_conditional_generation_stays_refused():
    plan = Plan("T5AdapterModel", "default", {"head_type": "question_answering"}, (), "config.json")
    shared = {"shared.weight": TensorInfo("shared.weight", "F32", (99, 32), "model.safetensors", (0, 12672))}
    rewrite = settings_rewrite(t5("T5ForQuestionAnswering"), "config.json", shared, plan)
    assert rules(rewrite) == ["HC127"] and rewrite.plan is None


def test_t5_copy_follows_the_plan_head_name():
    plan = Plan("T5AdapterModel", "summary", {"head_type": "seq2seq_lm"}, (), "config.json")
    shared = {"shared.weight": TensorInfo("shared.weight", "F32", (99, 32), "model.safetensors", (0, 12672))}
    rewrite = settings_rewrite(t5("T5ForConditionalGeneration"), "config.json", shared, plan)
    assert rules(rewrite) == ["HC133"]
    assert [(c.source, c.target, c.file) for c in rewrite.plan.copies] == [
        ("shared.weight", "heads.summary.0.weight", "model.safetensors")]
