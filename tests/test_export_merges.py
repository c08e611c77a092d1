"""`migrate --to transformers` of full models saved with an adapter (issue 18 #3, #6): LoRA and (IA)^3 merged into
the base weights with numpy give the adapters model's logits and loss (atol 1e-4); adapters headcheck does not
merge exit 1 and write nothing; several adapters need --adapter. Through the console script."""

from __future__ import annotations

import json

import pytest

zoo = pytest.importorskip("zoo")
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
adapters = pytest.importorskip("adapters")

from headcheck.migration.verify import fixed_inputs, model_outputs  # noqa: E402

from helpers import run_cli, train_loras, validated  # noqa: E402

ATOL = 1e-4  # merged weights: one rounding of W + s * B @ A against adapters' unmerged computation

LORA_ATTN_MLP = dict(r=4, alpha=8, intermediate_lora=True, output_lora=True, init_weights="bert")

# shape -> (model_type, adapter config, dtype)
MERGED = {
    "bert-lora-attention": ("bert", adapters.LoRAConfig(r=4, alpha=16, init_weights="bert"), None),
    "bert-lora-attention-mlp": ("bert", adapters.LoRAConfig(**LORA_ATTN_MLP), None),
    "xlm-roberta-lora": ("xlm-roberta", adapters.LoRAConfig(r=2, alpha=2, init_weights="bert"), None),
    "roberta-ia3": ("roberta", adapters.IA3Config(), None),
    "bert-lora-bfloat16": ("bert", adapters.LoRAConfig(**LORA_ATTN_MLP), torch.bfloat16),
    # VeRA: the shared frozen A and B are saved with the model; vera_B and vera_D trained off their diagonals too
    "bert-vera": ("bert", adapters.VeraConfig(r=4, alpha=8, vera_b=0.3), None),
    "roberta-vera-attention-qkv": ("roberta", adapters.VeraConfig(attn_matrices=["q", "k", "v"], vera_b=0.3), None),
}

# shape -> (model_type, adapter config)
REFUSED = {
    "bert-bottleneck": ("bert", "seq_bn"),
    "bert-prefix-tuning": ("bert", "prefix_tuning"),
    "bert-gated-lora": ("bert", adapters.LoRAConfig(use_gating=True)),
    "bert-dora": ("bert", adapters.LoRAConfig(use_dora=True)),
    "albert-lora": ("albert", adapters.LoRAConfig()),  # no test proves its layers: refused
    # adapters' fused q/k/v layer (LoRAMergedLinear) cannot run VeRA: its forward reads the Vera module's lora_A
    "gpt2-vera": ("gpt2", adapters.VeraConfig(vera_b=0.3)),
}


def build(model_type, out, adapter_config, dtype=None, names=("task",)):
    """A flex model with a classification head and adapters, every bias and adapter weight non-zero (a zero
    LoRA B or a unit (IA)^3 vector would hide a merge that does nothing), saved whole."""
    torch.manual_seed(zoo.SEED)
    # weights 10x the tiny default: a merge that does nothing then moves the logits far beyond the tolerance
    model = adapters.AutoAdapterModel.from_config(zoo.tiny_config(model_type, initializer_range=0.2)).eval()
    model.add_classification_head("sst", num_labels=3)
    for name in names:
        model.add_adapter(name, config=adapter_config)
    zoo._nonzero_biases(model)
    train_loras(model)
    if dtype is not None:
        model = model.to(dtype)
    model.save_pretrained(out)
    return out


def max_differences(src, dst, adapter, atol):
    exported, info = transformers.AutoModelForSequenceClassification.from_pretrained(dst, output_loading_info=True)
    assert info["missing_keys"] == [] and info["unexpected_keys"] == [], info
    config = json.loads((dst / "config.json").read_text())
    assert not {"adapters", "prediction_heads"} & set(config)
    flex = adapters.AutoAdapterModel.from_pretrained(src).eval()
    flex.set_active_adapters(adapter)
    inputs = fixed_inputs(exported.config, flex.config.prediction_heads["sst"])
    (logits_a, loss_a), (logits_b, loss_b) = model_outputs(flex, inputs), model_outputs(exported.eval(), inputs)
    torch.testing.assert_close(logits_b[0].float(), logits_a[0].float(), atol=atol, rtol=0)
    torch.testing.assert_close(loss_b.float(), loss_a.float(), atol=atol, rtol=0)
    unmerged = adapters.AutoAdapterModel.from_pretrained(src).eval()  # control: without the adapter they differ
    assert float((model_outputs(unmerged, inputs)[0][0].float() - logits_a[0].float()).abs().max()) > 10 * atol
    return (float((logits_a[0].float() - logits_b[0].float()).abs().max()), float((loss_a.float() - loss_b.float()).abs()))


@pytest.mark.parametrize("shape", sorted(MERGED))
def test_merged_adapters_give_the_adapters_models_outputs(shape, tmp_path):
    model_type, adapter_config, dtype = MERGED[shape]
    src = build(model_type, tmp_path / "src", adapter_config, dtype)
    export = validated(json.loads(run_cli("scan", src, "--format", "json").stdout))["exports"]["transformers"]
    assert export["verdict"] == "exportable" and export["adapter"] == "task", export
    assert any("the only adapter, 'task', is taken as the trained one" in note for note in export["notes"])
    result = run_cli("migrate", src, "--to", "transformers", "--out", tmp_path / "out", "--format", "json")
    assert result.returncode == 0, result.stderr
    written = json.loads(result.stdout)
    assert any(d["reason"].startswith("merged into") for d in written["dropped"])
    differences = max_differences(src, tmp_path / "out", "task", 1e-2 if dtype is torch.bfloat16 else ATOL)
    print(f"{shape}: max |dlogits| {differences[0]:.3g}, |dloss| {differences[1]:.3g}")  # the closing note's table


CAUSAL_LM = {  # shape -> (static class, adapter config)
    "llama-lora-attention-mlp": ("LlamaForCausalLM", adapters.LoRAConfig(
        r=4, alpha=8, attn_matrices=["q", "k", "v"], intermediate_lora=True, output_lora=True, init_weights="bert")),
    "gpt2-lora-fused-c_attn-q-v": ("GPT2LMHeadModel", adapters.LoRAConfig(r=4, alpha=8, init_weights="bert")),
    "gpt2-lora-fused-c_attn-k-mlp": ("GPT2LMHeadModel", adapters.LoRAConfig(
        r=2, alpha=8, attn_matrices=["k"], intermediate_lora=True, output_lora=True, init_weights="bert")),
    "gpt2-ia3": ("GPT2LMHeadModel", adapters.IA3Config()),
}


@pytest.mark.parametrize("shape", sorted(CAUSAL_LM))
def test_causal_lm_with_merged_adapters(shape, tmp_path):
    """Static class -> flex (headcheck migrate) -> an adapter with trained (random) weights -> exported back: the
    static class with the adapter merged (GPT-2's fused c_attn through adapters' merged-linear grouping, its Conv1D
    weights transposed) gives the adapters model's logits and loss."""
    class_name, adapter_config = CAUSAL_LM[shape]
    static = zoo.build_static(class_name, tmp_path / "static", initializer_range=0.2)
    assert run_cli("migrate", static, "--out", tmp_path / "flex").returncode == 0
    model = adapters.AutoAdapterModel.from_pretrained(tmp_path / "flex").eval()
    model.add_adapter("task", config=adapter_config)
    train_loras(model)
    model.save_pretrained(tmp_path / "src")
    result = run_cli("migrate", tmp_path / "src", "--to", "transformers", "--out", tmp_path / "out", "--format", "json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["architecture"] == class_name
    exported, info = getattr(transformers, class_name).from_pretrained(tmp_path / "out", output_loading_info=True)
    assert info["missing_keys"] == [] and info["unexpected_keys"] == [], info
    flex = adapters.AutoAdapterModel.from_pretrained(tmp_path / "src").eval()
    flex.set_active_adapters("task")
    head = next(iter(flex.config.prediction_heads.values()))
    inputs = fixed_inputs(exported.config, head)
    (logits_a, loss_a), (logits_b, loss_b) = model_outputs(flex, inputs), model_outputs(exported.eval(), inputs)
    torch.testing.assert_close(logits_b[0], logits_a[0], atol=ATOL, rtol=0)
    torch.testing.assert_close(loss_b, loss_a, atol=ATOL, rtol=0)
    unmerged = adapters.AutoAdapterModel.from_pretrained(tmp_path / "src").eval()
    assert float((model_outputs(unmerged, inputs)[0][0] - logits_a[0]).abs().max()) > 10 * ATOL
    print(f"{shape}: max |dlogits| {float((logits_a[0] - logits_b[0]).abs().max()):.3g}, "
          f"|dloss| {float((loss_a - loss_b).abs()):.3g}")


def test_adapter_folder_exports_onto_its_base_model(tmp_path):
    """save_adapter's folder (LoRA + flex head) and --base (a BertModel folder): the export is the base model with
    the LoRA merged and the head placed; without a base it is a usage error, and nothing is written."""
    torch.manual_seed(zoo.SEED)
    config = zoo.tiny_config("bert", initializer_range=0.2)
    base = transformers.BertModel(config).eval()
    zoo._nonzero_biases(base)
    base.save_pretrained(tmp_path / "base")
    model = adapters.AutoAdapterModel.from_pretrained(tmp_path / "base")
    model.add_classification_head("task", num_labels=3)
    model.add_adapter("task", config=adapters.LoRAConfig(r=4, alpha=8, output_lora=True, init_weights="bert"))
    zoo._nonzero_biases(model.heads)
    train_loras(model)
    model.save_adapter(str(tmp_path / "folder"), "task", use_safetensors=True)
    export = validated(json.loads(run_cli("scan", tmp_path / "folder", "--format", "json").stdout))["exports"]
    assert export["transformers"]["verdict"] == "exportable" and export["transformers"]["adapter"] == "task"
    by_name = run_cli("migrate", tmp_path / "folder", "--to", "transformers", "--out", tmp_path / "by-name")
    assert by_name.returncode == 0, by_name.stderr  # adapter_config.json's model_name is the base's local folder
    import shutil

    shutil.copytree(tmp_path / "folder", tmp_path / "hub-named")
    adapter_config = json.loads((tmp_path / "hub-named" / "adapter_config.json").read_text())
    (tmp_path / "hub-named" / "adapter_config.json").write_text(json.dumps({**adapter_config, "model_name": "org/base"}))
    no_base = run_cli("migrate", tmp_path / "hub-named", "--to", "transformers", "--out", tmp_path / "none",
                      env={"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "empty-cache")})
    # model_name is a Hub id, not in the cache (tests/test_hub_base.py: a Hub base found)
    assert no_base.returncode == 2 and "base model org/base: no config.json in the local cache" in no_base.stderr
    assert not (tmp_path / "none").exists()
    done = run_cli("migrate", tmp_path / "folder", "--to", "transformers", "--base", tmp_path / "base",
                   "--out", tmp_path / "out", "--verify", "--format", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["comparison"]["ok"]
    exported, info = transformers.BertForSequenceClassification.from_pretrained(tmp_path / "out",
                                                                               output_loading_info=True)
    assert info["missing_keys"] == [] and info["unexpected_keys"] == [], info
    original = adapters.AutoAdapterModel.from_pretrained(tmp_path / "base").eval()
    original.load_adapter(str(tmp_path / "folder"), use_safetensors=True)
    original.set_active_adapters("task")
    inputs = fixed_inputs(exported.config, original.config.prediction_heads["task"])
    (logits_a, loss_a), (logits_b, loss_b) = model_outputs(original, inputs), model_outputs(exported.eval(), inputs)
    torch.testing.assert_close(logits_b[0], logits_a[0], atol=ATOL, rtol=0)
    torch.testing.assert_close(loss_b, loss_a, atol=ATOL, rtol=0)
    print(f"bert-adapter-folder-lora --base: max |dlogits| {float((logits_a[0] - logits_b[0]).abs().max()):.3g}, "
          f"|dloss| {float((loss_a - loss_b).abs()):.3g}")


@pytest.mark.parametrize("shape", sorted(REFUSED))
def test_adapters_not_merged_exit_1_and_write_nothing(shape, tmp_path):
    model_type, adapter_config = REFUSED[shape]
    src = build(model_type, tmp_path / "src", adapter_config)
    result = run_cli("migrate", src, "--to", "transformers", "--out", tmp_path / "out")
    assert result.returncode == 1, result.stderr
    assert "HC145" in result.stderr and "nothing written" in result.stderr
    assert not (tmp_path / "out").exists()


def test_several_adapters_need_adapter(tmp_path):
    src = build("bert", tmp_path / "src", adapters.LoRAConfig(r=2, alpha=4, init_weights="bert"),
                names=("first", "second"))
    result = run_cli("migrate", src, "--to", "transformers", "--out", tmp_path / "out")
    assert result.returncode == 4 and "first, second" in result.stderr and not (tmp_path / "out").exists()
    chosen = run_cli("migrate", src, "--to", "transformers", "--adapter", "second", "--out", tmp_path / "out",
                     "--verify")
    assert chosen.returncode == 0, chosen.stderr
    assert "verify: max |logits diff|" in chosen.stdout
    max_differences(src, tmp_path / "out", "second", ATOL)


HIDE_NUMPY = '''import sys


class _Absent:
    """numpy and the heavy stack cannot be imported: headcheck's core install."""

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in ("numpy", "torch", "transformers", "adapters"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, _Absent())
'''


def test_core_install_exports_heads_and_names_the_extra_a_merge_needs(tmp_path):
    """Without numpy (and torch): a head-only export is written; a merge is refused before writing, in one line
    naming the extra (exit 4)."""
    (tmp_path / "core").mkdir()
    (tmp_path / "core" / "sitecustomize.py").write_text(HIDE_NUMPY)
    env = {"PYTHONPATH": str(tmp_path / "core")}
    head_only = zoo.build_flex("bert", tmp_path / "head", {"sst": {"type": "classification", "num_labels": 2}})
    done = run_cli("migrate", head_only, "--to", "transformers", "--out", tmp_path / "a", env=env)
    assert done.returncode == 0, done.stderr
    merged = build("bert", tmp_path / "lora", adapters.LoRAConfig(r=2, alpha=4, init_weights="bert"))
    refused = run_cli("migrate", merged, "--to", "transformers", "--out", tmp_path / "b", env=env)
    assert refused.returncode == 4 and not (tmp_path / "b").exists()
    assert refused.stderr.strip().splitlines() == [
        "headcheck: merging an adapter into the base weights needs numpy: pip install 'headcheck[export]'"]


BREAK_NUMPY = '''import importlib.abc, importlib.machinery, sys


class _Broken(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """numpy is found but its import fails (a broken install): found by the plan, failing on the import thread."""

    def find_spec(self, name, path=None, target=None):
        return importlib.machinery.ModuleSpec(name, self) if name == "numpy" else None

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        raise ImportError("numpy is broken")


sys.meta_path.insert(0, _Broken())
'''


def test_a_numpy_that_fails_to_import_is_one_line_and_writes_nothing(tmp_path):
    """numpy is imported on a thread of its own while the copy runs (merge.numpy_meanwhile): when that import fails,
    the thread prints nothing, the merge says it in one line (exit 4), and the output never appears."""
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "sitecustomize.py").write_text(BREAK_NUMPY)
    merged = build("bert", tmp_path / "lora", adapters.LoRAConfig(r=2, alpha=4, init_weights="bert"))
    refused = run_cli("migrate", merged, "--to", "transformers", "--out", tmp_path / "out",
                      env={"PYTHONPATH": str(tmp_path / "broken")})
    assert refused.returncode == 4 and not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.*"))
    assert refused.stderr.strip().splitlines() == [
        "headcheck: merging an adapter into the base weights needs numpy: pip install 'headcheck[export]'"]


def build_deberta(out, adapter_config, in_proj_bias: float = 0.0):
    """DebertaAdapterModel with a classification head of DebertaForSequenceClassification's shape (gelu, the pooler
    as layer 1) and an adapter on the fused in_proj. adapters gives that bias-free projection a bias (zero, and
    frozen with the base); `in_proj_bias` sets it as a full fine-tune would have moved it."""
    torch.manual_seed(zoo.SEED)
    model = adapters.DebertaAdapterModel(zoo.tiny_config("deberta", initializer_range=0.2)).eval()
    model.add_classification_head("sst", num_labels=3, activation_function="gelu")
    model.add_adapter("task", config=adapter_config)
    zoo._nonzero_biases(model)
    train_loras(model)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("in_proj.bias"):
                param.fill_(in_proj_bias)
    model.save_pretrained(out)
    return out


@pytest.mark.parametrize("matrices", [["q", "k", "v"], ["k"]])
def test_deberta_fused_in_proj_lora_is_merged_and_its_zero_bias_left_out(matrices, tmp_path):
    src = build_deberta(tmp_path / "src", adapters.LoRAConfig(r=4, alpha=8, attn_matrices=matrices,
                                                              init_weights="bert"))
    result = run_cli("migrate", src, "--to", "transformers", "--out", tmp_path / "out", "--format", "json")
    assert result.returncode == 0, result.stderr
    written = json.loads(result.stdout)
    assert written["architecture"] == "DebertaForSequenceClassification"
    reasons = {d["tensor"]: d["reason"] for d in written["dropped"]}
    assert reasons["deberta.encoder.layer.1.attention.self.in_proj.bias"].startswith("zero in the flex model")
    differences = max_differences(src, tmp_path / "out", "task", ATOL)
    print(f"deberta-lora-in_proj-{''.join(matrices)}: max |dlogits| {differences[0]:.3g}, |dloss| {differences[1]:.3g}")


def test_deberta_non_zero_in_proj_bias_is_refused_with_hc148(tmp_path):
    """DebertaForSequenceClassification's in_proj has no bias: a trained one cannot be left out (exit 1, HC148,
    nothing written). The scan reads headers only; migrate reads the bias."""
    src = build_deberta(tmp_path / "src", adapters.LoRAConfig(r=4, alpha=8, init_weights="bert"), in_proj_bias=0.1)
    result = run_cli("migrate", src, "--to", "transformers", "--out", tmp_path / "out")
    assert result.returncode == 1, result.stderr
    assert "HC148" in result.stderr and "in_proj.bias holds non-zero values" in result.stderr
    assert "nothing written" in result.stderr and not (tmp_path / "out").exists()


def test_vera_without_its_shared_matrices_is_refused(tmp_path):
    """VeRA's frozen random A and B are saved once per model (shared_parameters); without them adapters draws new
    ones at load time, so no file holds the trained update: HC145, exit 1, nothing written."""
    from safetensors.torch import load_file, save_file

    src = build("bert", tmp_path / "src", adapters.VeraConfig(r=4, alpha=8, vera_b=0.3))
    tensors = load_file(src / "model.safetensors")
    assert {"bert.shared_parameters.task.lora_A", "bert.shared_parameters.task.lora_B"} <= set(tensors)
    save_file({k: v for k, v in tensors.items() if ".shared_parameters." not in k}, src / "model.safetensors",
              metadata={"format": "pt"})
    result = run_cli("migrate", src, "--to", "transformers", "--out", tmp_path / "out")
    assert result.returncode == 1, result.stderr
    assert "HC145" in result.stderr and "without its shared matrices" in result.stderr
    assert "nothing written" in result.stderr and not (tmp_path / "out").exists()


# (IA)^3 and VeRA in the families whose LoRA the fixtures prove (tests/fixtures/exports: distilbert-, electra-,
# bart- and t5-lora-*): the same plain linear layers. shape -> (model_type, flex heads)
IA3_FAMILIES = {
    "distilbert-ia3-tagging": ("distilbert", {"ner": {"type": "tagging", "num_labels": 3}}),
    "electra-ia3-tagging": ("electra", {"ner": {"type": "tagging", "num_labels": 3}}),
    "bart-ia3-classification": ("bart", {"sst": {"type": "classification", "num_labels": 3}}),
    "t5-ia3-seq2seq-lm": ("t5", {"gen": {"type": "seq2seq_lm"}}),
}


@pytest.mark.parametrize("method", ["ia3", "vera"])
@pytest.mark.parametrize("shape", sorted(IA3_FAMILIES))
def test_ia3_and_vera_are_merged_in_the_other_lora_families(shape, method, tmp_path):
    model_type, heads = IA3_FAMILIES[shape]
    head = next(iter(heads))
    torch.manual_seed(zoo.SEED)
    model = adapters.AutoAdapterModel.from_config(zoo.tiny_config(model_type)).eval()
    zoo._add_heads(model, heads)
    model.add_adapter("task", config=adapters.IA3Config() if method == "ia3" else adapters.VeraConfig(vera_b=0.3))
    zoo._nonzero_biases(model)
    # (IA)^3 vectors start at one: moved, or a merge that does nothing would pass; every weight moved too (BART's
    # tiny init leaves the adapter's effect near the tolerance otherwise)
    with torch.no_grad():
        for name, param in model.named_parameters():
            param.add_(torch.randn_like(param) * (0.5 if ".loras." in name else 0.05))
    model.save_pretrained(tmp_path / "src")
    result = run_cli("migrate", tmp_path / "src", "--to", "transformers", "--out", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    architecture = json.loads((tmp_path / "out" / "config.json").read_text())["architectures"][0]
    exported, info = getattr(transformers, architecture).from_pretrained(tmp_path / "out", output_loading_info=True)
    assert info["missing_keys"] == [] and info["unexpected_keys"] == [], info
    flex = adapters.AutoAdapterModel.from_pretrained(tmp_path / "src").eval()
    flex.active_head = head
    inputs = fixed_inputs(exported.config, flex.config.prediction_heads[head])
    unmerged = model_outputs(flex, inputs)
    flex.set_active_adapters("task")
    (logits_a, loss_a), (logits_b, loss_b) = model_outputs(flex, inputs), model_outputs(exported.eval(), inputs)
    torch.testing.assert_close(logits_b[0], logits_a[0], atol=ATOL, rtol=0)
    torch.testing.assert_close(loss_b, loss_a, atol=ATOL, rtol=0)
    assert float((unmerged[0][0] - logits_a[0]).abs().max()) > 10 * ATOL  # the adapter counts


def test_vera_on_layers_its_shared_matrices_do_not_fit_is_refused(tmp_path):
    """Llama's grouped k/v projections (fewer outputs than q) cannot use the one pair of shared matrices VeRA draws
    (adapters itself fails: mat1 and mat2 shapes cannot be multiplied): HC145, exit 1, nothing written."""
    static = zoo.build_static("LlamaForCausalLM", tmp_path / "static")
    assert run_cli("migrate", static, "--out", tmp_path / "flex").returncode == 0
    model = adapters.AutoAdapterModel.from_pretrained(tmp_path / "flex")
    model.add_adapter("task", config=adapters.VeraConfig(vera_b=0.3))
    model.save_pretrained(tmp_path / "src")
    result = run_cli("migrate", tmp_path / "src", "--to", "transformers", "--out", tmp_path / "out")
    assert result.returncode == 1, result.stderr
    assert "HC145" in result.stderr and "do not fit" in result.stderr and "v_proj" in result.stderr
    assert not (tmp_path / "out").exists()


def test_verify_catches_a_merged_weight_off_by_a_little(tmp_path):
    """compare_export's tolerance (atol + rtol * the largest output, as into flex) still refuses one merged weight
    changed by 1e-3: the export computes something else."""
    from safetensors.torch import load_file, save_file

    from headcheck.migration.verify import compare_export

    src = build("bert", tmp_path / "src", adapters.LoRAConfig(r=2, alpha=4, init_weights="bert"))
    assert run_cli("migrate", src, "--to", "transformers", "--out", tmp_path / "out").returncode == 0
    faithful = compare_export(src, tmp_path / "out", adapter="task")
    assert faithful.ok and faithful.tolerance < 1e-4, faithful
    tensors = load_file(tmp_path / "out" / "model.safetensors")
    tensors["bert.encoder.layer.0.attention.self.query.weight"] += 1e-3
    save_file(tensors, tmp_path / "out" / "model.safetensors", metadata={"format": "pt"})
    altered = compare_export(src, tmp_path / "out", adapter="task")
    assert not altered.ok and altered.max_logits_diff > altered.tolerance, altered
    print(f"faithful {faithful.max_logits_diff:.3g}, altered {altered.max_logits_diff:.3g}, "
          f"tolerance {altered.tolerance:.3g}")
