"""`headcheck scan` never imports the heavy stack: one subprocess scans a checkpoint of every kind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

zoo = pytest.importorskip("zoo")
torch = pytest.importorskip("torch")

from safetensors.torch import save_file  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures" / "checkpoints"
HEAVY = ("torch", "transformers", "adapters", "numpy")

SCRIPT = r"""
import contextlib, io, json, sys, traceback
from pathlib import Path

from headcheck.cli.main import main
from headcheck.judge.engine import scan_path
from headcheck.errors import InputError, NothingScannedError

results, unexpected = {}, []
for target in json.loads(sys.argv[1]):
    entry = results[target] = {}
    try:
        entry["verdict"] = scan_path(Path(target)).verdict.value
    except (InputError, NothingScannedError) as exc:
        entry["verdict"] = type(exc).__name__
    except Exception:
        unexpected.append(f"scan_path({target}):\n{traceback.format_exc()}")
    for fmt in ("json", "text"):
        sys.argv = ["headcheck", "scan", target, "--format", fmt, "--fail-on", "never"]
        out, err = io.StringIO(), io.StringIO()
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                main()
            code = None
        except SystemExit as exc:
            code = exc.code
        except Exception:
            unexpected.append(f"headcheck scan {target} --format {fmt}:\n{traceback.format_exc()}")
            continue
        entry[f"exit_{fmt}"] = code
        if fmt == "json" and code == 0:
            entry["kind"] = json.loads(out.getvalue())["kind"]
for argv in (["headcheck", "rule"], ["headcheck", "rule", "HC101"]):
    sys.argv = argv
    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
        main()

print(json.dumps({
    "heavy": sorted({name.split(".")[0] for name in sys.modules} & set(HEAVY)),
    "modules": sorted({name.split(".")[0] for name in sys.modules}),
    "results": results,
    "unexpected": unexpected,
}))
""".replace("set(HEAVY)", repr(set(HEAVY)))


def _peft_folder(folder: Path) -> Path:
    """What `peft` writes for a LoRA sequence classifier (modules_to_save=classifier), by hand."""
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text(json.dumps({
        "peft_type": "LORA", "task_type": "SEQ_CLS", "base_model_name_or_path": "bert-base-uncased",
        "r": 4, "lora_alpha": 8, "lora_dropout": 0.1, "target_modules": ["query", "value"],
        "modules_to_save": ["classifier", "score"], "inference_mode": True, "bias": "none",
    }, indent=2))
    tensors = {}
    for i in range(2):
        for proj in ("query", "value"):
            stem = f"base_model.model.bert.encoder.layer.{i}.attention.self.{proj}"
            tensors[f"{stem}.lora_A.weight"] = torch.zeros(4, 32)
            tensors[f"{stem}.lora_B.weight"] = torch.zeros(32, 4)
    tensors["base_model.model.classifier.modules_to_save.default.weight"] = torch.zeros(3, 32)
    tensors["base_model.model.classifier.modules_to_save.default.bias"] = torch.zeros(3)
    save_file(tensors, folder / "adapter_model.safetensors", metadata={"format": "pt"})
    return folder


def _mlx_folder(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text(json.dumps({
        "model": "mlx-community/Mistral-7B-Instruct-v0.3-4bit", "fine_tune_type": "lora", "num_layers": 16,
        "lora_parameters": {"rank": 8, "scale": 20.0, "dropout": 0.0}, "batch_size": 4, "iters": 1000,
    }, indent=2))
    return folder


@pytest.fixture(scope="module")
def targets(tmp_path_factory) -> list[str]:
    root = tmp_path_factory.mktemp("kinds")
    cls = "BertForSequenceClassification"
    static = zoo.build_static(cls, root / "static-safetensors")
    (static / "README.md").write_text("---\nlibrary_name: adapters\ntags: [adapters]\n---\n# card\n")
    static_bin = zoo.build_static(cls, root / "static-bin", safe_serialization=False)
    sharded = zoo.build_static(cls, root / "sharded", max_shard_size="50KB")
    sharded_bin = zoo.build_static(cls, root / "sharded-bin", max_shard_size="50KB", safe_serialization=False)
    assert (sharded / "model.safetensors.index.json").is_file() and (sharded_bin / "pytorch_model.bin.index.json").is_file()
    folders = [
        static, static_bin, sharded, sharded_bin,
        zoo.build_static("RobertaForMaskedLM", root / "static-mlm"),
        zoo.build_flex("bert", root / "flex", {"sst": {"type": "classification", "num_labels": 3}}),
        zoo.build_any("BertModel", root / "base"),
        zoo.build_adapter_folder(root / "adapter-flex", head_from="flex"),
        zoo.build_adapter_folder(root / "adapter-flex-st", head_from="flex", use_safetensors=True),
        zoo.build_adapter_folder(root / "adapter-static", head_from="static"),
        zoo.build_adapter_folder(root / "adapter-legacy", head_from="legacy"),
        zoo.build_adapter_folder(root / "adapter-none", head_from="none"),
        _peft_folder(root / "peft"),
        _mlx_folder(root / "mlx"),
    ]
    single_files = [
        static / "config.json", static / "model.safetensors", static_bin / "pytorch_model.bin",
        sharded / "model.safetensors.index.json", root / "mlx" / "adapter_config.json",
    ]
    fixtures = sorted(p for p in FIXTURES.iterdir() if p.is_dir()) if FIXTURES.is_dir() else []
    return [str(p) for p in (*folders, *single_files, *fixtures)]


def test_scan_imports_no_heavy_module(targets):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSTARTUP")}
    env["PYTHONPATH"] = str(REPO)
    proc = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(targets)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["heavy"] == [], f"heavy modules imported by a scan: {out['heavy']} (all: {out['modules']})"

    results = out["results"]
    assert set(results) == set(targets)
    # the scans did happen: the built kinds were recognised (not all swallowed as errors)
    by_name = {Path(t).name: r for t, r in results.items() if not Path(t).is_relative_to(FIXTURES)}
    assert by_name["static-safetensors"]["verdict"] == "convertible"
    assert by_name["static-bin"]["verdict"] == "convertible"
    assert by_name["sharded"]["verdict"] == by_name["sharded-bin"]["verdict"] == "convertible"
    assert by_name["flex"]["verdict"] == "already-flex"
    assert by_name["base"]["verdict"] == "no-head"
    assert by_name["peft"]["kind"] == "peft-adapter"
    assert by_name["adapter-flex"]["kind"] == by_name["adapter-static"]["kind"] == "adapter"
    assert by_name["mlx"]["verdict"] == "NothingScannedError" and by_name["mlx"]["exit_json"] == 3
    assert not out["unexpected"], "\n".join(out["unexpected"])
