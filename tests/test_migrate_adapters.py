"""Adapter folders migrate so that load_adapter gives the head in place, with the original's outputs."""

from __future__ import annotations

import json

import pytest

zoo = pytest.importorskip("zoo")
torch = pytest.importorskip("torch")

from headcheck.migration.run import migrate  # noqa: E402
from headcheck.migration.verify import compare  # noqa: E402

from helpers import scan  # noqa: E402


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return zoo.build_any("RobertaModel", tmp_path_factory.mktemp("base") / "roberta")


@pytest.mark.parametrize("head_from,use_safetensors", [
    ("static", False), ("static", True), ("flex", False), ("legacy", False), ("legacy", True),
])
def test_adapter_folder_migrates_equivalently(base, tmp_path, head_from, use_safetensors):
    src = zoo.build_adapter_folder(tmp_path / "src", head_from=head_from, use_safetensors=use_safetensors)
    result = migrate(src, tmp_path / "out")
    out = tmp_path / "out"
    head = json.loads((out / "head_config.json").read_text())
    assert head["model_class"] == "RobertaAdapterModel"
    assert head["config"]["head_type"] == "classification"
    assert head["name"] == json.loads((out / "adapter_config.json").read_text())["name"]
    assert scan(out)["verdict"] == "already-flex"
    # adapter weights are untouched, byte for byte
    for name in ("pytorch_adapter.bin", "adapter.safetensors"):
        if (src / name).exists():
            assert (src / name).read_bytes() == (out / name).read_bytes()
    comparison = compare(src, out, base=base)
    assert comparison.missing_keys == () and comparison.unexpected_keys == ()
    assert comparison.max_logits_diff <= 1e-5 and comparison.loss_diff <= 1e-5, comparison
    assert result.rescan.verdict.value == "already-flex"


def test_verify_detects_a_broken_migration(base, tmp_path):
    """Negative control: compare() must fail when the head weights were changed."""
    src = zoo.build_adapter_folder(tmp_path / "src", head_from="static", use_safetensors=True)
    migrate(src, tmp_path / "out")
    from safetensors.torch import load_file, save_file

    path = tmp_path / "out" / "model_head.safetensors"
    weights = load_file(path)
    name = next(k for k in weights if k.endswith(".4.weight"))  # the output layer
    # a uniform shift would cancel out (LayerNorm-ed inputs sum to zero; softmax ignores row-constant shifts)
    weights[name] = weights[name] * 1.5
    save_file(weights, path, metadata={"format": "pt"})
    comparison = compare(src, tmp_path / "out", base=base)
    assert not comparison.ok
    assert comparison.max_logits_diff > 1e-3
