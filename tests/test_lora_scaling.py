"""HC132: a whole model saved by adapters < 1.1.0 with a LoRA whose r != alpha (issue 20, point 8).

adapters 0.1.0 - 1.0.1 computed LoRA with scaling 1 whatever alpha said (adapters PR #770); adapters 1.3.0 sets
alpha = r for adapter folders of those releases (their adapter_config.json records the version), but config.json
records no adapters version, so a whole model loads with scaling alpha/r. The writer fixture
tests/fixtures/writers/adapters-1.0.1/ holds what adapters 1.0.1 itself saved and computed.
"""

from __future__ import annotations

import json
import logging
import shutil
import warnings
from pathlib import Path

import pytest

from helpers import REPO, rules_of, run_cli, scan, validated

WRITER = REPO / "tests" / "fixtures" / "writers" / "adapters-1.0.1"
LORA = WRITER / "lora_r8_alpha16"  # LoRAConfig(r=8, alpha=16, intermediate_lora=True, output_lora=True)
ATOL = 1e-5


def scan_cli(folder: Path) -> dict:
    result = run_cli("scan", folder, "--format", "json")
    assert result.returncode == 0, result.stderr  # a warning: the default --fail-on (error) lets it pass
    return validated(json.loads(result.stdout))


def writer_outputs(folder: Path):
    """The adapters 1.3.0 outputs of FOLDER (a whole model, its adapter and head active) and the writer's."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("adapters")
    from adapters import AutoAdapterModel

    expected = json.loads((WRITER / "lora_r8_alpha16.expected.json").read_text())
    tensors = {k: torch.tensor(v["data"], dtype=getattr(torch, v["dtype"]))
               for k, v in {**expected["inputs"], **expected["labels"]}.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.disable(logging.WARNING)
        try:
            model = AutoAdapterModel.from_pretrained(folder)
        finally:
            logging.disable(logging.NOTSET)
    model.set_active_adapters(expected["adapter"]["name"])
    model.active_head = expected["active_head"]
    with torch.no_grad():
        got = model.eval()(**tensors)
    want = {k: torch.tensor(v["data"]) for k, v in expected["outputs"].items()}
    return got, want


def test_scan_reports_hc132_not_already_flex():
    report = scan_cli(LORA)
    assert report["verdict"] == "convertible", report
    [hc132] = [f for f in report["findings"] if f["rule"] == "HC132"]
    assert hc132["severity"] == "warning" and hc132["file"] == "config.json"
    # the evidence: the LoRA config's keys (no dtype, added in 1.1.0) and transformers_version
    assert "'sst' (r=8, alpha=16: scaling 2 in 1.1+)" in hc132["message"]
    assert "'dtype'" in hc132["message"] and "4.45.2" in hc132["message"]
    assert report["plan"]["adapter_model_class"] == "BertAdapterModel" and report["plan"]["renames"] == []


def test_as_it_is_adapters_1_3_computes_another_scaling():
    """What HC132 is about: loaded as it is, the logits are off (3.2e-3 on this tiny model, loss 2.6e-3)."""
    torch = pytest.importorskip("torch")
    got, want = writer_outputs(LORA)
    assert float((got.logits - want["logits"]).abs().max()) > 1e-3
    assert not torch.allclose(got.loss, want["loss"], atol=ATOL, rtol=0)


def test_migrate_output_gives_the_writers_logits(tmp_path):
    torch = pytest.importorskip("torch")
    out = tmp_path / "migrated"
    result = run_cli("migrate", LORA, "--out", out)
    assert result.returncode == 0, result.stderr
    assert "rescan: already-flex" in result.stdout
    lora = json.loads((out / "config.json").read_text())["adapters"]["config_map"]["2e3d1fb61268c5a4"]
    assert (lora["r"], lora["alpha"]) == (8, 8)  # what adapters does to adapter folders of releases < 1.1.0
    # the rest of config.json and every tensor are as the writer saved them
    source = json.loads((LORA / "config.json").read_text())
    source["adapters"]["config_map"]["2e3d1fb61268c5a4"]["alpha"] = 8
    assert json.loads((out / "config.json").read_text()) == source
    report = scan_cli(out)
    assert report["verdict"] == "already-flex" and "HC132" not in rules_of(report), report
    got, want = writer_outputs(out)
    assert torch.allclose(got.logits, want["logits"], atol=ATOL, rtol=0), (got.logits - want["logits"]).abs().max()
    assert torch.allclose(got.loss, want["loss"], atol=ATOL, rtol=0)


@pytest.mark.parametrize("case", ["lora_r4_alpha4", "unipelt", "adapter_lora_r8_alpha16"])
def test_no_false_alarm_on_the_writers_controls(case):
    """r == alpha, a gated LoRA (UniPELT: the gate replaces the scaling in every release), and an adapter folder
    (adapters 1.3.0 reads its version and sets alpha = r itself) all load as they are."""
    report = scan_cli(WRITER / case)
    assert report["verdict"] == "already-flex" and "HC132" not in rules_of(report), report


@pytest.mark.parametrize("edit, flagged", [
    ({}, True),
    ({"transformers_version": "4.35.2"}, True),  # adapters 0.1.0's transformers
    ({"transformers_version": "4.26.1"}, False),  # adapter-transformers 3.2.1 (computed alpha/r, as 1.1+ does)
    ({"transformers_version": "4.47.1"}, False),  # adapters 1.1.0's transformers: contradicts the keys
    ({"transformers_version": None}, False),  # no evidence of the writer
    ({"dtype": None}, False),  # a LoRA config with 1.1.0's dtype field was written by 1.1.0 or later
    ({"use_gating": True}, False),  # gated: the gate replaces the scaling in every release
    ({"alpha": 8}, False),  # r == alpha: scaling 1 in every release
    ({"union": True}, True),  # inside a union (ConfigUnion, UniPELT): the same LoRA module
])
def test_writer_told_from_recorded_facts(tmp_path, edit, flagged):
    folder = tmp_path / "model"
    shutil.copytree(LORA, folder)
    config = json.loads((folder / "config.json").read_text())
    block = config["adapters"]["config_map"]
    lora = block["2e3d1fb61268c5a4"]
    for key, value in edit.items():
        if key == "transformers_version":
            if value is None:
                del config[key]
            else:
                config[key] = value
        elif key == "union":
            block["2e3d1fb61268c5a4"] = {"architecture": "union", "configs": [lora]}
        else:
            lora[key] = value
    (folder / "config.json").write_text(json.dumps(config))
    report = scan(folder)
    assert ("HC132" in rules_of(report)) == flagged, report["findings"]
    assert report["verdict"] == ("convertible" if flagged else "already-flex"), report


def test_no_false_alarm_on_a_model_saved_by_adapters_1_3(tmp_path):
    """adapters 1.3.0 computes alpha/r and writes it that way: its own r != alpha model stays already-flex."""
    torch = pytest.importorskip("torch")
    adapters = pytest.importorskip("adapters")
    from adapters import BertAdapterModel, LoRAConfig
    from transformers import BertConfig

    torch.manual_seed(0)
    model = BertAdapterModel(BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                        intermediate_size=37, vocab_size=99))
    model.add_adapter("sst", config=LoRAConfig(r=8, alpha=16))
    model.add_classification_head("sst", num_labels=3)
    model.train_adapter("sst")
    model.save_pretrained(tmp_path / "saved")
    assert adapters.__version__ == "1.3.0"
    report = scan_cli(tmp_path / "saved")
    assert report["verdict"] == "already-flex" and "HC132" not in rules_of(report), report


def test_base_model_with_pre_1_1_lora_is_reported_too(tmp_path):
    """No prediction head: nothing to convert (no-head), but loading it as it is still computes another scaling."""
    folder = tmp_path / "model"
    shutil.copytree(LORA, folder)
    config = json.loads((folder / "config.json").read_text())
    del config["prediction_heads"]
    (folder / "config.json").write_text(json.dumps(config))
    report = scan(folder)
    [hc132] = [f for f in report["findings"] if f["rule"] == "HC132"]
    assert report["verdict"] == "no-head" and "set alpha to r" in hc132["hint"], report
