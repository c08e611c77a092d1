"""The benchmark inputs: what they are (per preset), and making sure they exist in the cache folder."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

MARKER_SUFFIX = ".input.json"  # as benchmarks.generate.MARKER_SUFFIX: <checkpoint>.input.json, written last
BERT_BASE = {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072}
LLAMA_7B = {"hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32, "num_attention_heads": 32,
            "num_key_value_heads": 32, "vocab_size": 32000, "max_position_embeddings": 4096, "rms_norm_eps": 1e-5,
            "dtype": "float16"}

MINI = {"hidden_size": 256, "num_hidden_layers": 4, "num_attention_heads": 4, "intermediate_size": 1024}
MINI_WIDE = {"hidden_size": 512, "num_attention_heads": 8, "intermediate_size": 2048}
LORA = {"r": 8, "alpha": 16, "attn_matrices": ["q", "k", "v"]}
WIDE = {"hidden_size": 1024, "num_attention_heads": 16, "intermediate_size": 4096}

PRESETS = {
    # bert-base (~110M params, ~440 MB); 4x: BERT-large width with more layers (~440M params, ~1.75 GB);
    # Llama-2-7B tensor index (6.74B params, 13.5 GB as float16) in 3 shards of at most 5 GB.
    "full": {
        "bert": {"config": BERT_BASE},
        "bertbin": {"config": BERT_BASE, "format": "bin"},
        "wide": {"base": BERT_BASE, "factor": 4, "config": WIDE},
        "llama": {"config": LLAMA_7B, "max_shard_bytes": 5_000_000_000},
        # BertAdapterModel + LoRA + classification head (the export rows); 4x as "wide"
        "lora": {"config": BERT_BASE, "lora": LORA},
        "lora4x": {"base": BERT_BASE, "factor": 4, "config": WIDE, "lora": LORA},
    },
    # --quick: a smoke run with inputs about 10x smaller (targets are then indicative only).
    "quick": {
        "bert": {"config": {"hidden_size": 256, "num_hidden_layers": 4, "num_attention_heads": 4,
                            "intermediate_size": 1024}},
        "bertbin": {"config": {"hidden_size": 256, "num_hidden_layers": 4, "num_attention_heads": 4,
                               "intermediate_size": 1024}, "format": "bin"},
        "wide": {"base": {"hidden_size": 256, "num_hidden_layers": 4, "num_attention_heads": 4,
                          "intermediate_size": 1024},
                 "factor": 4, "config": {"hidden_size": 512, "num_attention_heads": 8, "intermediate_size": 2048}},
        "llama": {"config": {**LLAMA_7B, "hidden_size": 2048, "intermediate_size": 5504, "num_hidden_layers": 16,
                             "num_attention_heads": 16, "num_key_value_heads": 16},
                  "max_shard_bytes": 1_000_000_000},
        "lora": {"config": MINI, "lora": LORA},
        "lora4x": {"base": MINI, "factor": 4, "config": MINI_WIDE, "lora": LORA},
    },
}
NAMES = {"bert": "bert-base", "bertbin": "bert-base-bin", "wide": "bert-4x", "llama": "llama-7b-index",
         "lora": "bert-base-lora", "lora4x": "bert-4x-lora"}
QUICK_NAMES = {"bert": "bert-mini", "bertbin": "bert-mini-bin", "wide": "bert-mini-4x", "llama": "llama-1b-index",
               "lora": "bert-mini-lora", "lora4x": "bert-mini-4x-lora"}


@dataclass(frozen=True)
class Checkpoint:
    kind: str
    name: str
    path: Path
    info: dict

    def describe(self) -> str:
        size = f"{self.info['bytes'] / 1e9:.2f} GB" if self.info["bytes"] >= 1e9 else f"{self.info['bytes'] / 1e6:.0f} MB"
        kind = "pytorch_model.bin" if self.kind == "bertbin" else "safetensors"
        text = f"{self.name}: {self.info['params'] / 1e6:,.0f}M params, {size} {kind}"
        if self.kind == "llama":
            text += f" in {self.info['files']} shards (sparse: {self.info['allocated'] / 1e6:.1f} MB on disk)"
        if self.kind in ("lora", "lora4x"):
            text = (f"{self.name}: BertAdapterModel, {self.info['params'] / 1e6:,.0f}M params ({size} safetensors, "
                    f"hidden {self.info['hidden_size']}, {self.info['layers']} layers), LoRA r=8 alpha=16 on "
                    f"query/key/value ({self.info['lora_params'] / 1e6:.2f}M params) and a 2-layer classification "
                    f"head, random init, saved by adapters' save_pretrained")
        if self.kind == "wide":
            text += (f" (BERT, hidden {self.info['hidden_size']}, {self.info['layers']} layers, random bytes; "
                     f"{self.info['params'] / self.info['base_params']:.2f}x the base's params)")
        return text


def _marker(path: Path) -> dict | None:
    try:
        return json.loads(path.with_name(path.name + MARKER_SUFFIX).read_text())
    except (OSError, ValueError):
        return None


def ensure(cache: Path, quick: bool, repo: Path, env: dict[str, str], progress) -> dict[str, Checkpoint]:
    """Return the inputs, generating (in one child process) the ones missing or built from another spec."""
    preset = "quick" if quick else "full"
    names = QUICK_NAMES if quick else NAMES
    root = cache / preset
    specs = {kind: {**spec, "out": str(root / names[kind])} for kind, spec in PRESETS[preset].items()}
    missing = {}
    for kind, spec in specs.items():
        marker = _marker(Path(spec["out"]))
        if marker is None or marker.get("spec") != spec:
            missing[kind] = spec
    if missing:
        root.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(root).free
        if free < (1e9 if quick else 8e9):
            progress(f"warning: only {free / 1e9:.1f} GB free under {root}; generation and migrate outputs need ~8 GB")
        progress(f"generating inputs into {root}: {', '.join(names[k] for k in missing)} (once; cached afterwards)")
        subprocess.run([sys.executable, "-m", "benchmarks.generate", json.dumps(missing)], cwd=repo, env=env,
                       check=True)
    found = {}
    for kind, spec in specs.items():
        marker = _marker(Path(spec["out"]))
        if marker is None or marker.get("spec") != spec:
            raise RuntimeError(f"{spec['out']}: generation did not complete")
        found[kind] = Checkpoint(kind, names[kind], Path(spec["out"]), marker["info"])
    return found
