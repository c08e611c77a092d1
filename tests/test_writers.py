"""Checkpoints written by other releases, judged and loaded by today's adapters (1.3.0 on transformers 4.57).

tests/fixtures/writers/<writer>/ holds what each writer saved, and <case>.expected.json what that writer
computed on fixed inputs (tests/fixtures/writers/generate.py made them, each writer in its own virtual
environment). Every case is scanned; already-flex ones are loaded as they are, convertible ones after
`headcheck migrate`; outputs and loss must equal the writer's own. A verdict other than those two names
the rule that says why adapters would not give the writer's model.
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("adapters")

from adapters import AutoAdapterModel  # noqa: E402

from headcheck.migration.run import migrate  # noqa: E402
from helpers import REPO, rules_of, run_cli, scan, validated  # noqa: E402

WRITERS = REPO / "tests" / "fixtures" / "writers"
CASES = sorted(WRITERS.glob("*/*.expected.json"))
ATOL = 1e-5  # float32; T5 runs sdpa under 5.x and eager under 4.57 (differences ~6e-6)

# writer/case -> (verdict, rules that must be among the findings); anything not listed: convertible or already-flex
NOT_LOADABLE = {
    # static BertForMaskedLM + seq_bn_inv: a flex LM head also applies the inverse (adapters' own load is 0.066 off)
    "adapters-0.2.1/adapter_static_masked_lm_inv": ("not-convertible", {"HC131"}),
    # a RoPE type transformers 5 added (half the frequencies zero): no rope_scaling of transformers 4.57 computes it
    "transformers-5.24.0/llama-causal-rope-proportional": ("not-convertible", {"HC127"}),
}

# settings transformers 4.57 reads from other keys: these load with the writer's outputs only because migrate
# writes them its way (HC133; before, all but llama-causal, whose rope_theta is 4.57's default, were refused with
# HC127; without the rewrite, logits differ by 3e-3 (dynamic) to 19 (t5-v1_1))
REWRITTEN_SETTINGS = {
    "transformers-5.24.0/llama-causal", "transformers-5.24.0/llama-causal-rope-linear",
    "transformers-5.24.0/llama-causal-rope-dynamic", "transformers-5.24.0/llama-causal-rope-yarn",
    "transformers-5.24.0/llama-causal-rope-llama3", "transformers-5.24.0/t5-v1_1", "transformers-5.24.0/t5-v1_1-tied",
}


# adapter-transformers 2.x's "gelu" is the tanh approximation (adapters' "gelu_new") and its "gelu_orig" the exact
# gelu; these cases load with the writer's outputs only because migrate renames them (HC129; before, 4 differed by
# 1e-4..1.4e-3 and gelu_orig raised KeyError in from_pretrained)
LEGACY_ACTIVATIONS = {
    "adapter-transformers-2.3.0/withheads_masked_lm", "adapter-transformers-2.3.0/withheads_bert_causal_lm",
    "adapter-transformers-2.3.0/adapter_withheads_classification", "adapter-transformers-2.3.0/withheads_tagging",
    "adapter-transformers-2.3.0/withheads_classification_gelu_orig",
}

# adapters < 1.1.0 computed LoRA with scaling 1 whatever alpha said; a whole model records no adapters version, so
# adapters 1.3.0 computes alpha/r unless migrate sets alpha = r (HC132; before, logits differed by 3.2e-3, loss by
# 2.6e-3). The r == alpha and gated (UniPELT) LoRAs and the save_adapter folder load as they are.
LORA_SCALING = {"adapters-1.0.1/lora_r8_alpha16"}


def case_id(path: Path) -> str:
    return f"{path.parent.name}/{path.name.removesuffix('.expected.json')}"


def tensors(record: dict) -> dict:
    return {name: torch.tensor(value["data"], dtype=getattr(torch, value["dtype"])) for name, value in record.items()}


@pytest.fixture(params=CASES, ids=case_id)
def case(request) -> tuple[str, dict, Path]:
    expected = json.loads(request.param.read_text())
    return case_id(request.param), expected, request.param.parent


def test_every_writer_has_fixtures():
    writers = {path.parent.name for path in CASES}
    assert {"adapter-transformers-2.3.0", "adapter-transformers-3.2.1", "adapters-0.2.1", "adapters-1.0.1",
            "transformers-4.26.1", "transformers-5.24.0"} <= writers, writers


def test_verdict(case):
    name, expected, root = case
    report = scan(root / expected["folder"])
    verdict, rules = NOT_LOADABLE.get(name, (None, set()))
    if verdict is None:
        assert report["verdict"] in ("convertible", "already-flex"), report["findings"]
        assert not [f for f in report["findings"] if f["severity"] == "error"], report["findings"]
    else:
        assert report["verdict"] == verdict and rules <= rules_of(report), report["findings"]
    assert ("HC129" in rules_of(report)) == (name in LEGACY_ACTIVATIONS), report["findings"]
    assert ("HC132" in rules_of(report)) == (name in LORA_SCALING), report["findings"]
    if name in LORA_SCALING:  # loaded as it is, adapters would compute another scaling: never already-flex
        assert report["verdict"] == "convertible", report["verdict"]
    assert ("HC133" in rules_of(report)) == (name in REWRITTEN_SETTINGS), report["findings"]
    heads = expected["heads"]
    if heads:  # the head the writer made active (or its only one) is the one reported
        head = heads.get(report["head"]["name"]) or next(iter(heads.values()))
        assert report["head"]["type"] == head["head_type"]


def test_loaded_with_adapters_gives_the_writers_outputs(case, tmp_path):
    name, expected, root = case
    if name in NOT_LOADABLE:
        pytest.skip(f"{name}: {NOT_LOADABLE[name][0]} (test_verdict checks why)")
    folder = root / expected["folder"]
    inputs = tensors(expected["inputs"])
    if scan(folder)["verdict"] == "convertible":
        # multiple-choice checkpoints do not record their number of choices: the user says it (--num-choices)
        ids = inputs.get("input_ids")
        choices = ids.shape[1] if ids is not None and ids.dim() == 3 else None
        folder = migrate(folder, tmp_path / "migrated", num_choices=choices).out
    assert_writers_outputs(load(folder, expected, root), expected)


def assert_writers_outputs(model, expected: dict) -> None:
    """MODEL (loaded by load()) computes the writer's outputs and loss on the writer's inputs."""
    inputs, labels = tensors(expected["inputs"]), tensors(expected["labels"])
    seq2seq = model.heads[model.active_head].config["head_type"] == "seq2seq_lm"
    if seq2seq and "labels" in labels and "decoder_input_ids" not in inputs:
        # transformers' XForConditionalGeneration builds decoder inputs from the labels; adapters' flex
        # models do not, so a user passes them, as transformers would have made them
        from transformers.models.bart.modeling_bart import shift_tokens_right

        inputs["decoder_input_ids"] = shift_tokens_right(labels["labels"], model.config.pad_token_id,
                                                         model.config.decoder_start_token_id)
    with torch.no_grad():
        output = model(**inputs, **labels)
    for field, want in tensors(expected["outputs"]).items():
        got = output[field] if isinstance(output, dict) else getattr(output, field)
        assert got.shape == want.shape, field
        assert torch.allclose(got.float(), want.float(), atol=ATOL, rtol=0), \
            f"{field}: max |diff| {float((got.float() - want.float()).abs().max()):.3g}"


def load(folder: Path, expected: dict, root: Path):
    """The checkpoint as a user of today's adapters loads it, with the writer's adapter and head active."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.disable(logging.WARNING)
        try:
            if (folder / "config.json").exists():
                model, info = AutoAdapterModel.from_pretrained(folder, output_loading_info=True)
                assert not info["missing_keys"] and not info["unexpected_keys"], info
                adapter = (expected["adapter"] or {}).get("name")
            else:  # save_adapter / save_head folders load onto their base model
                model = AutoAdapterModel.from_pretrained(root / expected["base_model"])
                if (folder / "adapter_config.json").exists():
                    adapter = model.load_adapter(str(folder), use_safetensors=any(folder.glob("*.safetensors")))
                else:
                    adapter = None
                    model.load_head(str(folder))
        finally:
            logging.disable(logging.NOTSET)
    if adapter:
        model.set_active_adapters(adapter)
    heads = list(getattr(model, "heads", {}))
    wanted = expected["active_head"] or (adapter if adapter in heads else None) or (heads[0] if heads else None)
    if wanted not in heads and len(heads) == 1:
        wanted = heads[0]  # a migrated static head is named "default"
    if wanted:
        model.active_head = wanted
    return model.eval()


# transformers 5 settings that transformers 4.57 reads from other keys, through the console script as users run it:
# case -> (plan.config_changes as (key, old, new), plan.copies as (source, target) with --head-name summary)
V5_SETTINGS = {
    "llama-causal-rope-linear": ([("rope_theta", None, 10000.0),
                                  ("rope_scaling", None, {"rope_type": "linear", "factor": 2.0})], []),
    "llama-causal-rope-yarn": ([("rope_theta", None, 5000.0),
                                ("rope_scaling", None, {"rope_type": "yarn", "factor": 4.0, "beta_fast": 16.0,
                                                        "truncate": False, "original_max_position_embeddings": 16})],
                               []),
    "t5-v1_1": ([("tie_word_embeddings", True, False)], []),  # lm_head.weight stored: untied as it is
    "t5-v1_1-tied": ([("tie_word_embeddings", True, False)], [("shared.weight", "heads.summary.0.weight")]),
}


@pytest.mark.parametrize("name", sorted(V5_SETTINGS))
def test_transformers_5_settings_are_written_for_adapters_by_the_console_script(name, tmp_path):
    root = WRITERS / "transformers-5.24.0"
    expected = json.loads((root / f"{name}.expected.json").read_text())
    folder = root / expected["folder"]
    changes, copies = V5_SETTINGS[name]

    scanned = run_cli("scan", folder, "--format", "json")
    assert scanned.returncode == 0, scanned.stdout + scanned.stderr
    report = validated(json.loads(scanned.stdout))
    assert report["verdict"] == "convertible" and "HC133" in rules_of(report), report["findings"]
    plan = report["plan"]
    assert [(c["key"], c["old"], c["new"]) for c in plan["config_changes"]] == changes
    assert [(c["source"], c["target"].replace(".default.", ".summary.")) for c in plan["copies"]] == copies

    out = tmp_path / "out"
    migrated = run_cli("migrate", folder, "--out", out, "--head-name", "summary", "--format", "json")
    assert migrated.returncode == 0, migrated.stderr
    result = json.loads(migrated.stdout)
    assert result["rescan_verdict"] == "already-flex"
    config = json.loads((out / "config.json").read_text())
    assert {key: config.get(key) for key, _, _ in changes} == {key: new for key, _, new in changes}
    from safetensors import safe_open

    with safe_open(folder / "model.safetensors", "pt") as before, safe_open(out / "model.safetensors", "pt") as after:
        assert result["tensors_checked"] == len(before.keys()) + len(copies) == len(after.keys())
        for source, target in copies:  # the copy is the source's bytes, written once more
            assert after.get_tensor(target).numpy().tobytes() == before.get_tensor(source).numpy().tobytes()
    assert_writers_outputs(load(out, expected, root), expected)


def test_transformers_5_setting_without_a_4_57_form_is_refused_by_the_console_script(tmp_path):
    folder = WRITERS / "transformers-5.24.0" / "llama-causal-rope-proportional"
    scanned = run_cli("scan", folder, "--format", "json")
    assert scanned.returncode == 1
    report = validated(json.loads(scanned.stdout))
    assert report["verdict"] == "not-convertible" and "HC127" in rules_of(report), report["findings"]
    assert "HC133" not in rules_of(report)
    migrated = run_cli("migrate", folder, "--out", tmp_path / "out")
    assert migrated.returncode == 1 and "HC127" in migrated.stderr and "nothing written" in migrated.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name,rewritten", [
    ("llama-causal-rope-linear", ["rope_theta", "rope_scaling"]),
    ("t5-v1_1", ["tie_word_embeddings"]),
    # logits near 22: float32 rounding alone is 1e-5 there, so the tolerance grows with the outputs (it refused this
    # one at 1.26e-5 against 1e-5)
    ("t5-v1_1-tied", ["tie_word_embeddings", "lm_head.weight = shared.weight"]),
])
def test_verify_loads_the_original_with_the_settings_written_for_4_57(name, rewritten, tmp_path):
    """Loaded as they are, transformers 4.57 computes these originals differently from the writer (the point of
    HC133), so --verify compares against the original with the same rewrite; it refused them before."""
    folder = WRITERS / "transformers-5.24.0" / name
    migrated = run_cli("migrate", folder, "--out", tmp_path / "out", "--verify", "--format", "json")
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    verify = json.loads(migrated.stdout)["comparison"]
    assert verify["ok"] and verify["rewritten"] == rewritten, verify
