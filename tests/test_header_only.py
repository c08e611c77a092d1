"""Scanning reads headers only: a >1 GB safetensors file and a ~270 MB torch pickle are judged without
reading their tensor data, measured by wall time and /proc/self/io `rchar` of the scanning process."""

from __future__ import annotations

import json
import math
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
MB = 1 << 20

pytestmark = pytest.mark.skipif(not Path("/proc/self/io").exists(), reason="needs Linux /proc/self/io")

# Imports everything a scan needs up front; scans argv[1] if given (else only reports the baseline).
SCRIPT = r"""
import json, sys, time
from pathlib import Path
from headcheck.judge.engine import scan_path

result = {}
if len(sys.argv) > 1:
    start = time.perf_counter()
    report = scan_path(Path(sys.argv[1]))
    result["scan_seconds"] = time.perf_counter() - start
    as_dict = report.to_dict()
    result["verdict"] = as_dict["verdict"]
    result["num_labels"] = as_dict["head"]["num_labels"]
    result["rules"] = sorted(f["rule"] for f in as_dict["findings"])
io = dict(line.split(": ") for line in Path("/proc/self/io").read_text().splitlines())
result["rchar"] = int(io["rchar"])
print(json.dumps(result))
"""


def _run(*args: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSTARTUP")}
    env["PYTHONPATH"] = str(REPO)
    proc = subprocess.run([sys.executable, "-c", SCRIPT, *args], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _measure(folder: Path) -> tuple[dict, int]:
    """The scan's result and the bytes it read beyond an identical process that scans nothing."""
    baseline = _run()["rchar"]
    scanned = _run(str(folder))
    return scanned, scanned["rchar"] - baseline


@pytest.fixture
def big_dir(tmp_path):
    """tmp_path, emptied right after the test: pytest keeps the last runs' tmp dirs, these files must not stay."""
    folder = tmp_path / "big"
    folder.mkdir()
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _config(architecture: str, model_type: str, **sizes) -> dict:
    return {
        "architectures": [architecture], "model_type": model_type, "transformers_version": "4.57.6",
        "id2label": {"0": "NEGATIVE", "1": "POSITIVE"}, "label2id": {"NEGATIVE": 0, "POSITIVE": 1},
        "problem_type": "single_label_classification", "torch_dtype": "float32", **sizes,
    }


# ---------------------------------------------------------------------------------------------- safetensors


def bert_large_classifier() -> dict[str, tuple[int, ...]]:
    """Tensor shapes of bert-large (24 layers, hidden 1024) with a 2-label sequence classifier: 1.34 GB in F32."""
    h, ff, vocab = 1024, 4096, 30522
    shapes: dict[str, tuple[int, ...]] = {
        "bert.embeddings.word_embeddings.weight": (vocab, h),
        "bert.embeddings.position_embeddings.weight": (512, h),
        "bert.embeddings.token_type_embeddings.weight": (2, h),
        "bert.embeddings.LayerNorm.weight": (h,),
        "bert.embeddings.LayerNorm.bias": (h,),
    }
    for i in range(24):
        p = f"bert.encoder.layer.{i}"
        for name in ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"):
            shapes[f"{p}.{name}.weight"], shapes[f"{p}.{name}.bias"] = (h, h), (h,)
        for norm in ("attention.output.LayerNorm", "output.LayerNorm"):
            shapes[f"{p}.{norm}.weight"], shapes[f"{p}.{norm}.bias"] = (h,), (h,)
        shapes[f"{p}.intermediate.dense.weight"], shapes[f"{p}.intermediate.dense.bias"] = (ff, h), (ff,)
        shapes[f"{p}.output.dense.weight"], shapes[f"{p}.output.dense.bias"] = (h, ff), (h,)
    shapes["bert.pooler.dense.weight"], shapes["bert.pooler.dense.bias"] = (h, h), (h,)
    shapes["classifier.weight"], shapes["classifier.bias"] = (2, h), (2,)
    return shapes


def write_sparse_safetensors(path: Path, shapes: dict[str, tuple[int, ...]], dtype="F32", itemsize=4) -> int:
    """A valid safetensors file whose data area is a hole: header written by hand, then os.truncate."""
    header: dict = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name in sorted(shapes):
        size = math.prod(shapes[name]) * itemsize
        header[name] = {"dtype": dtype, "shape": list(shapes[name]), "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    with path.open("wb") as fh:
        fh.write(struct.pack("<Q", len(raw)))
        fh.write(raw)
    os.truncate(path, 8 + len(raw) + offset)
    return 8 + len(raw) + offset


def test_1gb_safetensors_is_scanned_from_its_header(big_dir):
    (big_dir / "config.json").write_text(json.dumps(_config(
        "BertForSequenceClassification", "bert", hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
        intermediate_size=4096, vocab_size=30522,
    )))
    size = write_sparse_safetensors(big_dir / "model.safetensors", bert_large_classifier())
    assert size > 1_000_000_000

    scanned, extra = _measure(big_dir)
    print(f"safetensors {size / 1e9:.2f} GB: scan {scanned['scan_seconds'] * 1000:.1f} ms, "
          f"rchar {scanned['rchar'] / MB:.2f} MiB total, {extra / 1024:.1f} KiB beyond baseline")
    assert scanned["verdict"] == "convertible" and scanned["num_labels"] == 2, scanned
    assert scanned["scan_seconds"] < 1.0
    assert scanned["rchar"] < 20 * MB
    assert extra < 2 * MB


# ---------------------------------------------------------------------------------------------- torch pickle


def distilbert_classifier() -> dict[str, tuple[int, ...]]:
    """Tensor shapes of distilbert-base-uncased-finetuned-sst-2-english: 67M parameters, 268 MB in F32."""
    h, ff, vocab = 768, 3072, 30522
    shapes: dict[str, tuple[int, ...]] = {
        "distilbert.embeddings.word_embeddings.weight": (vocab, h),
        "distilbert.embeddings.position_embeddings.weight": (512, h),
        "distilbert.embeddings.LayerNorm.weight": (h,),
        "distilbert.embeddings.LayerNorm.bias": (h,),
    }
    for i in range(6):
        p = f"distilbert.transformer.layer.{i}"
        for name in ("attention.q_lin", "attention.k_lin", "attention.v_lin", "attention.out_lin"):
            shapes[f"{p}.{name}.weight"], shapes[f"{p}.{name}.bias"] = (h, h), (h,)
        for norm in ("sa_layer_norm", "output_layer_norm"):
            shapes[f"{p}.{norm}.weight"], shapes[f"{p}.{norm}.bias"] = (h,), (h,)
        shapes[f"{p}.ffn.lin1.weight"], shapes[f"{p}.ffn.lin1.bias"] = (ff, h), (ff,)
        shapes[f"{p}.ffn.lin2.weight"], shapes[f"{p}.ffn.lin2.bias"] = (h, ff), (h,)
    shapes["pre_classifier.weight"], shapes["pre_classifier.bias"] = (h, h), (h,)
    shapes["classifier.weight"], shapes["classifier.bias"] = (2, h), (2,)
    return shapes


def test_large_pytorch_bin_is_scanned_without_reading_storages(big_dir):
    torch = pytest.importorskip("torch")
    from collections import OrderedDict

    (big_dir / "config.json").write_text(json.dumps(_config(
        "DistilBertForSequenceClassification", "distilbert", dim=768, n_layers=6, n_heads=12, hidden_dim=3072,
        vocab_size=30522,
    )))
    state = OrderedDict((name, torch.zeros(shape)) for name, shape in distilbert_classifier().items())
    path = big_dir / "pytorch_model.bin"
    torch.save(state, path)  # a real torch zip, as save_pretrained(safe_serialization=False) writes it
    del state
    size = path.stat().st_size
    assert size > 250 * MB

    scanned, extra = _measure(big_dir)
    print(f"pytorch_model.bin {size / MB:.0f} MiB: scan {scanned['scan_seconds'] * 1000:.1f} ms, "
          f"rchar {scanned['rchar'] / MB:.2f} MiB total, {extra / 1024:.1f} KiB beyond baseline")
    assert scanned["verdict"] == "convertible" and scanned["num_labels"] == 2, scanned
    assert scanned["scan_seconds"] < 1.0
    assert scanned["rchar"] < 20 * MB
    assert extra < 2 * MB
