"""Build the benchmark checkpoints. Runs as a child process (it imports torch and transformers).

    python -m benchmarks.generate SPEC_JSON

SPEC_JSON maps a kind to {"out": folder, ...parameters} (see benchmarks.inputs). Each checkpoint is
written into a temporary sibling and renamed into place, so an interrupted run leaves nothing half-built.

- ``bert``: a real BertForSequenceClassification with random init, saved by transformers
  (``bertbin``: the same as pytorch_model.bin, for the remote .bin row).
- ``wide``: a BERT classifier with more/wider layers; names and shapes come from a model built on the
  ``meta`` device, the safetensors file is written by hand with random bytes (real bytes on disk).
- ``lora``: a ``BertAdapterModel`` with a LoRA adapter (r=8, alpha=16, on query/key/value) and a 2-layer
  classification head, random init with LoRA's B drawn too (adapters zero-initialises it, and an all-zero delta
  would merge to the base's own values), saved by adapters' ``save_pretrained``; with ``base``/``factor``, as wide
  as ``wide`` (4x the bytes).
- ``llama``: a LlamaForCausalLM tensor index (names and shapes from the ``meta`` device), sharded,
  headers written by hand, data areas left as holes (``os.truncate``) so the disk is not filled.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import sys
from pathlib import Path

DTYPES = {"float32": "F32", "float16": "F16", "bfloat16": "BF16"}
CHUNK = 16 << 20
MARKER_SUFFIX = ".input.json"  # <out>.input.json beside the checkpoint, written last: it means "complete"


def _tensors(model_cls, config) -> list[tuple[str, str, tuple[int, ...], int]]:
    """(name, safetensors dtype, shape, byte length) of every tensor the model saves, in state_dict order."""
    import torch

    with torch.device("meta"):
        model = model_cls(config)
    dtype = DTYPES[str(getattr(config, "dtype", None) or config.torch_dtype).removeprefix("torch.")]
    size = {"F32": 4, "F16": 2, "BF16": 2}[dtype]
    return [(name, dtype, tuple(t.shape), t.numel() * size) for name, t in model.state_dict().items()]


def _header(tensors) -> tuple[bytes, int]:
    """safetensors header bytes (length prefix included, 8-byte aligned) and the data size."""
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, dtype, shape, length in tensors:
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + length]}
        offset += length
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw, offset


def _marker(out: Path) -> Path:
    return out.parent / f"{out.name}{MARKER_SUFFIX}"


def _fresh(out: Path) -> Path:
    _marker(out).unlink(missing_ok=True)
    tmp = out.parent / f".{out.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    return tmp


def _finish(tmp: Path, out: Path, spec: dict, info: dict) -> None:
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    _marker(out).write_text(json.dumps({"spec": spec, "info": info}, sort_keys=True, indent=1) + "\n")


def bert(spec: dict) -> None:
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    out = Path(spec["out"])
    tmp = _fresh(out)
    torch.manual_seed(0)
    model = BertForSequenceClassification(BertConfig(**spec["config"]))
    model.save_pretrained(tmp, safe_serialization=spec.get("format") != "bin")
    params = sum(p.numel() for p in model.state_dict().values())
    _finish(tmp, out, spec, {"params": params, "bytes": _weight_bytes(tmp), "files": 1})


def wide(spec: dict) -> None:
    import numpy as np
    from transformers import BertConfig, BertForSequenceClassification

    out = Path(spec["out"])
    tmp = _fresh(out)
    layers, base_params, _ = wide_layers(spec["base"], spec["config"], spec["factor"])
    config = BertConfig(**spec["config"], num_hidden_layers=layers, dtype="float32",
                        architectures=["BertForSequenceClassification"])
    tensors = sorted(_tensors(BertForSequenceClassification, config))
    head, size = _header(tensors)
    rng = np.random.default_rng(0)
    with (tmp / "model.safetensors").open("wb") as fh:
        fh.write(head)
        left = size
        while left:
            block = rng.bytes(min(CHUNK, left))
            fh.write(block)
            left -= len(block)
    config.save_pretrained(tmp)
    _finish(tmp, out, spec, {"params": size // 4, "bytes": _weight_bytes(tmp), "files": 1, "layers": layers,
                             "hidden_size": config.hidden_size, "base_params": base_params})


def lora(spec: dict) -> None:
    import torch
    from transformers import BertConfig

    import adapters
    from adapters import LoRAConfig

    out = Path(spec["out"])
    tmp = _fresh(out)
    layers = {}
    if "factor" in spec:
        layers = {"num_hidden_layers": wide_layers(spec["base"], spec["config"], spec["factor"])[0]}
    torch.manual_seed(0)
    model = adapters.BertAdapterModel(BertConfig(**spec["config"], **layers))
    model.add_classification_head("sentiment", num_labels=2)
    model.add_adapter("sentiment", LoRAConfig(**spec["lora"]))
    with torch.no_grad():
        for name, param in model.named_parameters():
            if ".loras." in name and name.endswith("lora_B"):
                param.normal_(0.0, 0.02)
    model.save_pretrained(tmp)
    params = sum(p.numel() for p in model.state_dict().values())
    _finish(tmp, out, spec, {"params": params, "bytes": _weight_bytes(tmp), "files": 1,
                             "layers": model.config.num_hidden_layers, "hidden_size": model.config.hidden_size,
                             "lora_params": sum(p.numel() for n, p in model.named_parameters() if ".loras." in n)})


def llama(spec: dict) -> None:
    from transformers import LlamaConfig, LlamaForCausalLM

    out = Path(spec["out"])
    tmp = _fresh(out)
    config = LlamaConfig(**spec["config"], architectures=["LlamaForCausalLM"])
    tensors = _tensors(LlamaForCausalLM, config)
    shards: list[list] = [[]]
    for tensor in tensors:  # fill shards in state_dict order, like transformers' max_shard_size
        if shards[-1] and sum(t[3] for t in shards[-1]) + tensor[3] > spec["max_shard_bytes"]:
            shards.append([])
        shards[-1].append(tensor)
    weight_map, total = {}, 0
    for i, shard in enumerate(shards, 1):
        name = f"model-{i:05d}-of-{len(shards):05d}.safetensors"
        head, size = _header(sorted(shard))
        path = tmp / name
        with path.open("wb") as fh:
            fh.write(head)
        os.truncate(path, len(head) + size)  # a hole: headers are real, tensor data reads as zeros
        weight_map.update({t[0]: name for t in shard})
        total += size
    index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
    (tmp / "model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")
    config.save_pretrained(tmp)
    _finish(tmp, out, spec, {"params": total // 2, "bytes": total, "files": len(shards),
                             "allocated": sum(p.stat().st_blocks * 512 for p in tmp.iterdir())})


def _weight_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.iterdir() if p.suffix in (".safetensors", ".bin"))


def wide_layers(base: dict, wide_config: dict, factor: float) -> tuple[int, int, int]:
    """Layer count making the wide BERT classifier `factor` times the base's parameters: (layers, base, wide)."""
    from transformers import BertConfig, BertForSequenceClassification

    def params(config: dict) -> int:
        cfg = BertConfig(**config, dtype="float32")
        return sum(t[3] for t in _tensors(BertForSequenceClassification, cfg)) // 4

    base_params = params(base)
    one, two = params({**wide_config, "num_hidden_layers": 1}), params({**wide_config, "num_hidden_layers": 2})
    per_layer = two - one
    layers = max(1, round((factor * base_params - (one - per_layer)) / per_layer))
    return layers, base_params, one - per_layer + layers * per_layer


BUILDERS = {"bert": bert, "bertbin": bert, "wide": wide, "llama": llama, "lora": lora, "lora4x": lora}


def main(argv: list[str]) -> None:
    import transformers

    transformers.logging.set_verbosity_error()
    for kind, spec in json.loads(argv[0]).items():
        print(f"generating {kind} -> {spec['out']}", file=sys.stderr, flush=True)
        BUILDERS[kind](spec)


if __name__ == "__main__":
    main(sys.argv[1:])
