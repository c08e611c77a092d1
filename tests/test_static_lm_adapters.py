"""Adapter folders of a static language-model head (issue 20, points 5 and 6), through the console script.

The adapters 0.2.1 writer fixtures `adapter_static_masked_lm*`: a static BertForMaskedLM made adapter-ready with
`adapters.init` and saved with `save_adapter(..., with_head=True)`. torch.save keeps the tied output bias under
both `cls.predictions.bias` and `cls.predictions.decoder.bias`: migrate places the decoder bias (as adapters'
conversion does) and checks the other holds the same bytes. With an invertible adapter (`seq_bn_inv`) no flex LM
head gives the static model's logits: HC131, not-convertible. tests/test_writers.py loads both cases with adapters.
"""

from __future__ import annotations

import json
import shutil

import pytest

from headcheck.migration.tensor_bytes import digest_of, tensor_chunks
from headcheck.read.pickle_index import read_pickle_index
from helpers import REPO, rules_of, run_cli, scan, validated

WRITER = REPO / "tests" / "fixtures" / "writers" / "adapters-0.2.1"
STATIC_MLM = WRITER / "adapter_static_masked_lm"
STATIC_MLM_INV = WRITER / "adapter_static_masked_lm_inv"
HEAD_FILE = "pytorch_model_head.bin"


def head_tensors(folder):
    return read_pickle_index(folder / HEAD_FILE, HEAD_FILE)


def test_static_masked_lm_head_with_both_tied_bias_names_migrates(tmp_path):
    scanned = run_cli("scan", STATIC_MLM, "--format", "json")
    assert scanned.returncode == 0, scanned.stdout + scanned.stderr
    assert validated(json.loads(scanned.stdout))["verdict"] == "convertible"

    out = tmp_path / "out"
    # before: exit 2, "cls.predictions.bias: no destination planned for this tensor"
    result = run_cli("migrate", STATIC_MLM, "--out", out, "--format", "json")
    assert result.returncode == 0, result.stdout + result.stderr
    migrated = json.loads(result.stdout)
    assert migrated["rescan_verdict"] == "already-flex"
    assert [d["tensor"] for d in migrated["dropped"]] == ["cls.predictions.bias"]
    assert migrated["tensors_checked"] == 7  # 6 written tensors, and the dropped duplicate against the one kept

    source, written = head_tensors(STATIC_MLM), head_tensors(out)
    assert sorted(written) == [f"heads.mlm.{i}.{p}" for i in (0, 2, 3) for p in ("bias", "weight")]
    bias = digest_of(tensor_chunks(out, written["heads.mlm.3.bias"]))
    assert bias == digest_of(tensor_chunks(STATIC_MLM, source["cls.predictions.decoder.bias"]))
    assert bias == digest_of(tensor_chunks(STATIC_MLM, source["cls.predictions.bias"]))
    assert json.loads((out / "head_config.json").read_text())["model_class"] == "BertAdapterModel"
    assert scan(out)["verdict"] == "already-flex"


def test_tied_bias_names_with_different_values_are_refused(tmp_path):
    torch = pytest.importorskip("torch")
    src, out = tmp_path / "src", tmp_path / "out"
    shutil.copytree(STATIC_MLM, src)
    state = torch.load(src / HEAD_FILE, weights_only=True)
    state["cls.predictions.bias"] = state["cls.predictions.bias"].clone() + 1  # no longer the decoder's bias
    torch.save(state, src / HEAD_FILE)
    assert run_cli("scan", src).returncode == 0  # headers only: scan cannot see values

    result = run_cli("migrate", src, "--out", out)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "cls.predictions.bias and cls.predictions.decoder.bias differ" in result.stderr
    assert "would load cls.predictions.decoder.bias (as heads.mlm.3.bias)" in result.stderr
    assert not out.exists() and not list(tmp_path.glob(".out*"))


def test_invertible_adapter_under_a_static_masked_lm_head_is_not_convertible(tmp_path):
    # before: convertible (exit 0), and migrate failed with exit 2 on cls.predictions.bias
    scanned = run_cli("scan", STATIC_MLM_INV, "--format", "json")
    assert scanned.returncode == 1, scanned.stdout + scanned.stderr
    report = validated(json.loads(scanned.stdout))
    assert report["verdict"] == "not-convertible" and report["plan"] is None
    hc131 = [f for f in report["findings"] if f["rule"] == "HC131"]
    assert [(f["severity"], f["file"], f["key"]) for f in hc131] == [("error", "adapter_config.json", "config")]
    assert "'lang' (nice)" in hc131[0]["message"] and "BertForMaskedLM" in hc131[0]["message"]

    out = tmp_path / "out"
    result = run_cli("migrate", STATIC_MLM_INV, "--out", out)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "HC131" in result.stderr and "nothing written" in result.stderr
    assert not out.exists() and not list(tmp_path.iterdir())


def test_the_same_adapter_without_its_invertible_part_stays_convertible(tmp_path):
    """HC131 comes from the adapter's inv_adapter (and its invertible_adapters.* weights), nothing else."""
    src = tmp_path / "src"
    shutil.copytree(STATIC_MLM_INV, src)
    config = json.loads((src / "adapter_config.json").read_text())
    config["config"].update(inv_adapter=None, inv_adapter_reduction_factor=None)
    (src / "adapter_config.json").write_text(json.dumps(config))
    (src / "pytorch_adapter.bin").write_bytes((STATIC_MLM / "pytorch_adapter.bin").read_bytes())
    assert "HC131" not in rules_of(scan(src)) and scan(src)["verdict"] == "convertible"
    # the invertible weights alone are evidence too
    (src / "pytorch_adapter.bin").write_bytes((STATIC_MLM_INV / "pytorch_adapter.bin").read_bytes())
    report = scan(src)
    assert report["verdict"] == "not-convertible"
    assert [f["key"] for f in report["findings"] if f["rule"] == "HC131"] == ["bert.invertible_adapters.lang.F.0.bias"]


def test_full_static_masked_lm_model_with_an_invertible_adapter(tmp_path):
    """The same for a full model: adapters' block in config.json, saved by today's adapters with save_pretrained."""
    torch = pytest.importorskip("torch")
    adapters = pytest.importorskip("adapters")
    from transformers import BertConfig, BertForMaskedLM

    torch.manual_seed(0)
    model = BertForMaskedLM(BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                       intermediate_size=37, vocab_size=99, max_position_embeddings=64))
    adapters.init(model)
    model.add_adapter("lang", config="double_seq_bn_inv")
    model.save_pretrained(tmp_path / "full")
    result = run_cli("scan", tmp_path / "full", "--format", "json")
    assert result.returncode == 1, result.stdout + result.stderr
    report = validated(json.loads(result.stdout))
    assert report["kind"] == "full-model" and report["verdict"] == "not-convertible"
    assert [(f["file"], f["key"].split(".")[:2]) for f in report["findings"] if f["rule"] == "HC131"] == [
        ("config.json", ["adapters", "config_map"])]
