"""Hostile model cards and shard indexes (issue 11, text class): bounded, never followed outside the folder."""

from __future__ import annotations

import json
import shutil

import pytest

from helpers import CHECKPOINTS, run_cli
from hostile import capped_headcheck


def scan_capped(folder, *args):
    return capped_headcheck("scan", folder, *args, timeout=30)


def test_a_card_whose_yaml_aliases_expand_exponentially(tmp_path):
    folder = tmp_path / "ckpt"
    shutil.copytree(CHECKPOINTS / "bert-seq-cls", folder)
    lines = ["---", 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    previous = "a"
    for name in "bcdefghi":  # 9**9 strings if anything expanded the references
        lines.append(f"{name}: &{name} [" + ",".join([f"*{previous}"] * 9) + "]")
        previous = name
    lines += ["tags: [1, {x: 2}, null]", "library_name: [adapter-transformers]", f"base_model: *{previous}", "---"]
    (folder / "README.md").write_text("\n".join(lines) + "\n")
    done = scan_capped(folder, "--format", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["verdict"] == "convertible"


@pytest.mark.parametrize("shard", ["../outside.safetensors", "/etc/passwd", "C:/weights/model.safetensors",
                                   "..\\outside.safetensors", "sub/../../outside.safetensors"])
def test_a_shard_index_never_leads_outside_the_folder(tmp_path, shard):
    folder = tmp_path / "ckpt"
    shutil.copytree(CHECKPOINTS / "sharded", folder)
    (tmp_path / "outside.safetensors").write_bytes((CHECKPOINTS / "bert-seq-cls" / "model.safetensors").read_bytes())
    index = json.loads((folder / "model.safetensors.index.json").read_text())
    name = next(iter(index["weight_map"]))
    index["weight_map"][name] = shard
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    done = scan_capped(folder)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "outside the checkpoint folder" in done.stderr or "is missing" in done.stderr


def test_tags_that_are_an_alias_tree_are_not_expanded(tmp_path):
    folder = tmp_path / "ckpt"
    shutil.copytree(CHECKPOINTS / "bert-seq-cls", folder)
    lines = ["---", 'a: &a ["adapter-transformers","x","x","x","x","x","x","x","x"]']
    previous = "a"
    for name in "bcdefghi":
        lines.append(f"{name}: &{name} [" + ",".join([f"*{previous}"] * 9) + "]")
        previous = name
    lines += [f"tags: *{previous}", "---"]
    (folder / "README.md").write_text("\n".join(lines) + "\n")
    done = scan_capped(folder, "--format", "json")
    assert done.returncode == 0, done.stderr


def test_remote_code_in_auto_map_is_a_finding_and_never_runs(tmp_path):
    """auto_map points at a modeling file beside the weights; importing it would create the canary."""
    folder = tmp_path / "remote-code"
    shutil.copytree(CHECKPOINTS / "bert-seq-cls", folder)
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoConfig": "configuration_evil.EvilConfig",
                          "AutoModelForSequenceClassification": "modeling_evil.EvilForSequenceClassification"}
    (folder / "config.json").write_text(json.dumps(config))
    canary = tmp_path / "CANARY"
    payload = f"open({str(canary)!r}, 'w').write('ran')\n"
    (folder / "modeling_evil.py").write_text(payload)
    (folder / "configuration_evil.py").write_text(payload)
    scanned = run_cli("scan", folder, "--format", "json")
    report = json.loads(scanned.stdout)
    assert [f["severity"] for f in report["findings"] if f["rule"] == "HC130"] == ["warning"], report["findings"]
    assert run_cli("scan", folder, "--fail-on", "warning").returncode == 1
    migrated = run_cli("migrate", folder, "--out", tmp_path / "out")  # judged from the weights, as HC113 says
    assert migrated.returncode == 0, migrated.stderr
    assert not canary.exists()
