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
from helpers import REPO, rules_of, scan  # noqa: E402

WRITERS = REPO / "tests" / "fixtures" / "writers"
CASES = sorted(WRITERS.glob("*/*.expected.json"))
ATOL = 1e-5  # float32; T5 runs sdpa under 5.x and eager under 4.57 (differences ~6e-6)

# writer/case -> (verdict, rules that must be among the findings); anything not listed: convertible or already-flex
NOT_LOADABLE = {
    "transformers-5.24.0/llama-causal-rope-linear": ("not-convertible", {"HC127"}),
    "transformers-5.24.0/t5-v1_1": ("not-convertible", {"HC127"}),
    "transformers-5.24.0/t5-v1_1-tied": ("not-convertible", {"HC127"}),
    # static BertForMaskedLM + seq_bn_inv: a flex LM head also applies the inverse (adapters' own load is 0.066 off)
    "adapters-0.2.1/adapter_static_masked_lm_inv": ("not-convertible", {"HC131"}),
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
    heads = expected["heads"]
    if heads:  # the head the writer made active (or its only one) is the one reported
        head = heads.get(report["head"]["name"]) or next(iter(heads.values()))
        assert report["head"]["type"] == head["head_type"]


def test_loaded_with_adapters_gives_the_writers_outputs(case, tmp_path):
    name, expected, root = case
    if name in NOT_LOADABLE:
        pytest.skip(f"{name}: {NOT_LOADABLE[name][0]} (test_verdict checks why)")
    folder = root / expected["folder"]
    inputs, labels = tensors(expected["inputs"]), tensors(expected["labels"])
    if scan(folder)["verdict"] == "convertible":
        # multiple-choice checkpoints do not record their number of choices: the user says it (--num-choices)
        ids = inputs.get("input_ids")
        choices = ids.shape[1] if ids is not None and ids.dim() == 3 else None
        folder = migrate(folder, tmp_path / "migrated", num_choices=choices).out
    model = load(folder, expected, root)
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
