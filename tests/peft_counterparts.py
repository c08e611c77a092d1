"""PEFT counterparts of the PEFT fixtures, made without headcheck: the harness's own control, and the reference the
exporter (`headcheck migrate CASE --to peft`) must match.

For each case of tests/fixtures/peft this loads the adapters model (the adapter folder onto its base, as adapters
users load it), builds the task model PEFT wraps (`getattr(transformers, auto_class).from_pretrained(base,
num_labels=...)`) with PEFT's own `get_peft_model` and the config written out below, copies every trained tensor
into it by the explicit mapping below, and writes it with PEFT's `save_pretrained`. tests/test_peft_versions.py loads
these with tests/peft_loader.py under transformers 4.57 and 5.24.

The mapping (adapters 1.3.0 methods/lora.py and models/*/mixin_*.py; PEFT 0.21.2 tuners/lora, tuners/ia3,
utils/save_and_load.py):

* LoRA: `<module>.loras.<name>.lora_A` (r, in) is PEFT's `<module>.lora_A.default.weight` (r, in), no transpose, and
  `lora_B` (out, r) its `lora_B.default.weight`; scaling alpha/r on both sides (`lora_alpha` = alpha, rsLoRA off).
  adapters' `output_lora` wraps BERT's / XLM-R's `layer.N.output.dense` (not `attention.output.dense`: PEFT's suffix
  match would take both, hence a regular expression), and on Llama `intermediate_lora` wraps `mlp.down_proj`,
  `output_lora` `mlp.up_proj` (o_proj and gate_proj are never wrapped).
* GPT-2's fused `c_attn` with attn_matrices q and v: adapters holds lora_A (2r, in) (A_q over A_v) and lora_B
  (2 hidden, r) (B_q over B_v), applied per block by a grouped convolution. In PEFT it is one LoRA of rank 2r on
  c_attn (Conv1D: `fan_in_fan_out`): lora_A = adapters' lora_A, lora_B (3 hidden, 2r) block-structured (q rows take
  columns 0..r from B_q, k rows zero, v rows columns r..2r from B_v), `lora_alpha` = 2·alpha so that the scaling
  stays alpha/r.
* (IA)³ ("scale" composition): adapters multiplies the module's output, bias included, by lora_B (out, 1) times
  alpha; PEFT's IA3 on the same modules with `feedforward_modules=[]` multiplies the output by `ia3_l.default`
  (out, 1).
* Heads become the task model's own modules in `modules_to_save` (PEFT adds `classifier` for SEQ_CLS and
  TOKEN_CLS): a one-layer tagging head's layer 1 is `classifier`; BERT's default two-layer classification head
  (tanh, CLS token) is `bert.pooler.dense` (layer 1) and `classifier` (layer 4), so `pooler` is saved too. A
  causal LM without a head keeps the base's LM head.

Main test environment only (adapters 1.3.0, transformers 4.57, peft 0.21.2).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any, Callable

import torch
import transformers
from peft import IA3Config, LoraConfig, get_peft_model
from safetensors.torch import load_file, save_file

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "peft"
sys.path.insert(0, str(FIXTURES))
from make_peft import _load_back  # noqa: E402  (tests/fixtures/peft/make_peft.py: the adapters model, loaded back)

# BERT-family LoRA targets: attention q/v, and with intermediate_lora / output_lora the FFN's two dense layers
ENCODER_LORA = r".*\.layer\.\d+\.(attention\.self\.(query|value)|intermediate\.dense|output\.dense)"
ENCODER_LORA_NO_INTERMEDIATE = r".*\.layer\.\d+\.(attention\.self\.(query|value)|output\.dense)"

# case -> the PEFT config
CONFIGS: dict[str, Callable[[], Any]] = {
    "bert-lora-seqcls": lambda: LoraConfig(task_type="SEQ_CLS", r=8, lora_alpha=16, lora_dropout=0.0,
                                           target_modules=ENCODER_LORA, modules_to_save=["pooler"]),
    "gpt2-lora-cattn": lambda: LoraConfig(task_type="CAUSAL_LM", r=16, lora_alpha=32, lora_dropout=0.0,
                                          target_modules=["c_attn"], fan_in_fan_out=True),
    "llama-lora-attn-mlp": lambda: LoraConfig(task_type="CAUSAL_LM", r=8, lora_alpha=16, lora_dropout=0.0,
                                              target_modules=["q_proj", "k_proj", "v_proj", "down_proj", "up_proj"]),
    "xlmr-lora-tagging": lambda: LoraConfig(task_type="TOKEN_CLS", r=8, lora_alpha=16, lora_dropout=0.0,
                                            target_modules=ENCODER_LORA_NO_INTERMEDIATE),
    "roberta-ia3-tagging": lambda: IA3Config(task_type="TOKEN_CLS", target_modules=["key", "value",
                                                                                    "intermediate.dense"],
                                             feedforward_modules=[]),
}
# the head's layers: adapters module -> the PEFT model's copy of the task model's module (modules_to_save wraps the
# module named in the config: BERT's `pooler`, holding the dense layer)
HEADS: dict[str, dict[str, str]] = {
    "bert-lora-seqcls": {"heads.sentiment.1": "bert.pooler.modules_to_save.default.dense",
                         "heads.sentiment.4": "classifier.modules_to_save.default"},
    "xlmr-lora-tagging": {"heads.ner.1": "classifier.modules_to_save.default"},
    "roberta-ia3-tagging": {"heads.ner.1": "classifier.modules_to_save.default"},
}
FUSED = {"gpt2-lora-cattn": ("q", None, "v")}  # c_attn's blocks: which adapters' lora_B block each takes


def cases() -> list[str]:
    return sorted(p.name.removesuffix(".peft.json") for p in FIXTURES.glob("*.peft.json"))


def peft_spec(case: str) -> dict:
    return json.loads((FIXTURES / f"{case}.peft.json").read_text())


def _fused_lora_b(lora_b: torch.Tensor, blocks: tuple[str | None, ...], r: int) -> torch.Tensor:
    """adapters' per-block lora_B (blocks adapted × hidden, r) as one rank (adapted·r) lora_B over all blocks."""
    hidden = lora_b.shape[0] // sum(b is not None for b in blocks)
    adapted = sum(b is not None for b in blocks)
    out = lora_b.new_zeros(len(blocks) * hidden, adapted * r)
    i = 0
    for block, name in enumerate(blocks):
        if name is not None:
            out[block * hidden:(block + 1) * hidden, i * r:(i + 1) * r] = lora_b[i * hidden:(i + 1) * hidden]
            i += 1
    return out


def peft_tensors(case: str, adapters_state: dict[str, torch.Tensor], adapter: str, method: str,
                 alpha: float, r: int) -> dict[str, torch.Tensor]:
    """adapters' trained tensors under the PEFT model's parameter names (with the adapter name `default`)."""
    heads = HEADS.get(case, {})
    out = {}
    for key, value in adapters_state.items():
        if key.startswith("heads."):
            prefix, _, leaf = key.rpartition(".")
            out[f"base_model.model.{heads[prefix]}.{leaf}"] = value
            continue
        match = re.fullmatch(rf"(.*)\.loras\.{re.escape(adapter)}\.(lora_A|lora_B)", key)
        assert match, key
        module, which = match.groups()
        if method == "ia3":
            assert which == "lora_B", key
            out[f"base_model.model.{module}.ia3_l.default"] = value * alpha
        elif case in FUSED and which == "lora_B":
            out[f"base_model.model.{module}.lora_B.default.weight"] = _fused_lora_b(value, FUSED[case], r)
        else:
            out[f"base_model.model.{module}.{which}.default.weight"] = value
    return out


def build_counterpart(case: str, out: Path, *, alter: bool = False, drop: str | None = None) -> Path:
    """Write the PEFT counterpart of `case` to `out`. The controls that must fail the comparison: `alter`, the last
    adapter tensor (by name) with seeded noise of 0.01 added (not a constant: a constant added to a lora_B before a
    LayerNorm shifts every feature alike, which the LayerNorm takes out again); `drop`, the file's tensors whose
    names contain it left out (what PEFT then holds stays as the base or its initialisation made it)."""
    spec = peft_spec(case)
    source, base = FIXTURES / spec["source"], FIXTURES / spec["base"]
    adapters_model = _load_back(source, base, spec["adapter"], spec["head"])
    config = json.loads((source / "adapter_config.json").read_text())["config"]
    trained = {k: v.detach().clone() for k, v in adapters_model.named_parameters()
               if f".loras.{spec['adapter']}." in k or (spec["head"] and k.startswith(f"heads.{spec['head']}."))}
    tensors = peft_tensors(case, trained, spec["adapter"], spec["method"], config["alpha"], config["r"])

    kwargs = {"num_labels": spec["num_labels"]} if spec["num_labels"] else {}
    task_model = getattr(transformers, spec["auto_class"]).from_pretrained(base, **kwargs)
    model = get_peft_model(task_model, CONFIGS[case]())
    params = dict(model.named_parameters())
    adapter_params = {k for k in params if ".default." in k or k.endswith(".default")}
    # every tensor has its place, and every PEFT adapter parameter gets a trained tensor (none left at its init)
    assert set(tensors) <= set(params), sorted(set(tensors) - set(params))
    assert adapter_params == set(tensors), sorted(adapter_params ^ set(tensors))
    with torch.no_grad():
        for key, value in tensors.items():
            assert params[key].shape == value.shape, (key, params[key].shape, value.shape)
            params[key].copy_(value)
        if alter:
            altered = params[max(k for k in tensors if ".modules_to_save." not in k)]
            altered.add_(torch.randn(altered.shape, generator=torch.Generator().manual_seed(0)) * 0.01)
    model.save_pretrained(out)
    if drop is not None:
        file = out / "adapter_model.safetensors"
        kept = {key: value for key, value in load_file(file).items() if drop not in key}
        assert len(kept) < len(tensors), drop
        save_file(kept, file, metadata={"format": "pt"})
    return out
