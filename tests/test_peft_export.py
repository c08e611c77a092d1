"""`migrate --to peft` beyond the fixture cases (issue 19): the settings that change what adapter_config.json must say.

Each variant is an adapter folder written by adapters 1.3.0 on a tiny seeded base. The reference is what adapters
itself computes from the folder (`load_adapter` onto the base, as a user of the folder would); the export is loaded
with PEFT (`PeftModel.from_pretrained` onto the plain task model) in the same process, and logits and loss must agree.
The cross-release proof of the fixture cases (transformers 4.57 and 5.24) is tests/test_peft_versions.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
adapters = pytest.importorskip("adapters")
peft = pytest.importorskip("peft")
transformers = pytest.importorskip("transformers")

from adapters import IA3Config, LoRAConfig  # noqa: E402
from safetensors import safe_open  # noqa: E402

from helpers import run_cli, train_loras  # noqa: E402
from zoo import tiny_config  # noqa: E402

ATOL = 1e-5
NAME = "task"


def _base(tmp: Path, static_class: str, model_type: str, **config) -> Path:
    torch.manual_seed(0)
    model = getattr(transformers, static_class)(tiny_config(model_type, **config))
    folder = tmp / "base"
    model.save_pretrained(folder)
    return folder


def _inputs(vocab: int = 99, labels: str | None = None, num_labels: int = 2) -> dict:
    gen = torch.Generator().manual_seed(1)
    ids = torch.randint(5, vocab, (2, 7), generator=gen)
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    if labels == "sequence":
        inputs["labels"] = torch.tensor([0, 1])
    elif labels == "multi":
        inputs["labels"] = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    elif labels == "tokens":
        inputs["labels"] = torch.randint(0, num_labels, (2, 7), generator=gen)
    elif labels == "lm":
        inputs["labels"] = ids
    return inputs


def _adapter_folder(tmp: Path, base: Path, adapter_config, add_head=None, causal_lm: bool = False) -> Path:
    if causal_lm:
        model = transformers.AutoModelForCausalLM.from_pretrained(base)
        adapters.init(model)
    else:
        model = adapters.AutoAdapterModel.from_pretrained(base)
    model.add_adapter(NAME, adapter_config)
    if add_head is not None:
        add_head(model)
    model.set_active_adapters(NAME)
    train_loras(model)
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.startswith("heads."):
                param.add_(torch.randn(param.shape, generator=gen) * 0.2)
    folder = tmp / "adapter"
    model.save_adapter(folder, NAME, with_head=add_head is not None)
    return folder


def _reference(folder: Path, base: Path, inputs: dict, causal_lm: bool = False):
    """What adapters computes from the adapter folder on its base."""
    if causal_lm:
        model = transformers.AutoModelForCausalLM.from_pretrained(base)
        adapters.init(model)
    else:
        model = adapters.AutoAdapterModel.from_pretrained(base)
    model.load_adapter(str(folder), set_active=True)
    with torch.no_grad():
        return model.eval()(**inputs)


def _exported(folder: Path, base: Path, out: Path) -> dict:
    done = run_cli("migrate", folder, "--to", "peft", "--out", out, "--base", base, "--format", "json")
    assert done.returncode == 0, done.stderr
    return json.loads((out / "adapter_config.json").read_text())


def _peft_outputs(out: Path, base: Path, auto_class: str, inputs: dict, **settings):
    model = getattr(transformers, auto_class).from_pretrained(base, **settings)
    model = peft.PeftModel.from_pretrained(model, out).eval()
    with safe_open(out / "adapter_model.safetensors", "pt") as f:
        assert set(peft.get_peft_model_state_dict(model)) == set(f.keys())  # nothing missing, nothing unexpected
    with torch.no_grad():
        return model(**inputs)


def _assert_same(got, want, adapter_off=None) -> dict:
    diffs = {field: float((getattr(got, field) - getattr(want, field)).abs().max()) for field in ("logits", "loss")}
    assert diffs["logits"] <= ATOL and diffs["loss"] <= ATOL, diffs
    print(diffs)
    return diffs


def test_bert_output_lora_is_named_in_full_where_a_suffix_would_also_adapt_attention_output(tmp_path):
    """adapters' output_lora on BERT wraps layer.N.output.dense; PEFT's suffix `output.dense` would also match
    attention.output.dense, so target_modules names every adapted layer in full."""
    base = _base(tmp_path, "BertModel", "bert")
    folder = _adapter_folder(tmp_path, base, LoRAConfig(r=4, alpha=8, output_lora=True),
                             lambda m: m.add_classification_head(NAME, num_labels=2))
    inputs = _inputs(labels="sequence")
    config = _exported(folder, base, tmp_path / "out")
    assert "bert.encoder.layer.0.output.dense" in config["target_modules"]
    assert not any(m.endswith("attention.output.dense") for m in config["target_modules"])
    assert config["layers_to_transform"] is None
    got = _peft_outputs(tmp_path / "out", base, "AutoModelForSequenceClassification", inputs, num_labels=2)
    _assert_same(got, _reference(folder, base, inputs))


def test_leave_out_becomes_layers_to_transform(tmp_path):
    base = _base(tmp_path, "BertModel", "bert", num_hidden_layers=3)
    folder = _adapter_folder(tmp_path, base, LoRAConfig(r=4, alpha=4, leave_out=[1]),
                             lambda m: m.add_tagging_head(NAME, num_labels=3))
    inputs = _inputs(labels="tokens", num_labels=3)
    config = _exported(folder, base, tmp_path / "out")
    assert config["target_modules"] == ["attention.self.query", "attention.self.value"]
    assert config["layers_to_transform"] == [0, 2]
    got = _peft_outputs(tmp_path / "out", base, "AutoModelForTokenClassification", inputs, num_labels=3)
    _assert_same(got, _reference(folder, base, inputs))


def test_gpt2_fused_and_plain_layers_get_their_own_ranks(tmp_path):
    """c_attn (q and v: rank 2r, alpha 2*alpha through rank_pattern / alpha_pattern) beside c_fc (rank r)."""
    base = _base(tmp_path, "GPT2LMHeadModel", "gpt2")
    folder = _adapter_folder(tmp_path, base, LoRAConfig(r=4, alpha=8, intermediate_lora=True), causal_lm=True)
    inputs = _inputs(labels="lm")
    config = _exported(folder, base, tmp_path / "out")
    assert (config["r"], config["lora_alpha"]) == (4, 8)
    assert config["rank_pattern"] == {"c_attn": 8} and config["alpha_pattern"] == {"c_attn": 16}
    got = _peft_outputs(tmp_path / "out", base, "AutoModelForCausalLM", inputs)
    _assert_same(got, _reference(folder, base, inputs, causal_lm=True))


def test_ia3_alpha_is_folded_into_the_vector(tmp_path):
    """adapters multiplies (IA)^3's vector by alpha; PEFT has no such factor: the written vector holds alpha * l."""
    base = _base(tmp_path, "RobertaModel", "roberta")
    folder = _adapter_folder(tmp_path, base, IA3Config(alpha=2.5),
                             lambda m: m.add_classification_head(NAME, num_labels=2))
    inputs = _inputs(labels="sequence")
    config = _exported(folder, base, tmp_path / "out")
    assert config["peft_type"] == "IA3" and config["feedforward_modules"] == []
    got = _peft_outputs(tmp_path / "out", base, "AutoModelForSequenceClassification", inputs, num_labels=2)
    _assert_same(got, _reference(folder, base, inputs))


def test_a_lora_written_before_adapters_1_1_is_exported_with_scaling_1(tmp_path):
    """adapters < 1.1.0 computed LoRA with scaling 1; adapters 1.1+ loads such a folder with alpha = r (the
    reference here), and the export writes lora_alpha = r."""
    base = _base(tmp_path, "BertModel", "bert")
    folder = _adapter_folder(tmp_path, base, LoRAConfig(r=4, alpha=16),
                             lambda m: m.add_classification_head(NAME, num_labels=2))
    config_file = folder / "adapter_config.json"
    written = json.loads(config_file.read_text())
    written["version"] = "adapters.1.0.1"
    config_file.write_text(json.dumps(written))
    inputs = _inputs(labels="sequence")
    config = _exported(folder, base, tmp_path / "out")
    assert (config["r"], config["lora_alpha"]) == (4, 4)
    scan = json.loads(run_cli("scan", folder, "--format", "json").stdout)
    assert any("scaling 1" in note for note in scan["exports"]["peft"]["notes"])
    got = _peft_outputs(tmp_path / "out", base, "AutoModelForSequenceClassification", inputs, num_labels=2)
    _assert_same(got, _reference(folder, base, inputs))


def test_multi_label_head_keeps_its_loss_when_loaded_as_the_note_says(tmp_path):
    base = _base(tmp_path, "BertModel", "bert")
    folder = _adapter_folder(tmp_path, base, LoRAConfig(r=4, alpha=8),
                             lambda m: m.add_classification_head(NAME, num_labels=3, multilabel=True))
    inputs = _inputs(labels="multi")
    _exported(folder, base, tmp_path / "out")
    scan = json.loads(run_cli("scan", folder, "--format", "json").stdout)
    load = scan["exports"]["peft"]["notes"][0]
    assert "num_labels=3" in load and "problem_type='multi_label_classification'" in load, load
    got = _peft_outputs(tmp_path / "out", base, "AutoModelForSequenceClassification", inputs, num_labels=3,
                        problem_type="multi_label_classification")
    _assert_same(got, _reference(folder, base, inputs))


def test_a_base_of_another_size_is_one_line_and_writes_nothing(tmp_path):
    base = _base(tmp_path, "BertModel", "bert")
    folder = _adapter_folder(tmp_path, base, LoRAConfig(r=4, alpha=8),
                             lambda m: m.add_classification_head(NAME, num_labels=2))
    torch.manual_seed(0)
    other = tmp_path / "other"
    transformers.BertModel(tiny_config("bert", hidden_size=48, intermediate_size=40)).save_pretrained(other)
    done = run_cli("migrate", folder, "--to", "peft", "--out", tmp_path / "out", "--base", other)
    assert done.returncode == 2, done.stderr
    assert "does not fit the adapter" in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("case", ["native", "full-model", "no-adapter"])
def test_exports_peft_verdicts_beside_the_adapter_folder(tmp_path, case):
    """A PEFT adapter is native; a full model carrying an adapter is not-applicable, with the note that
    `--to transformers` merges it; a checkpoint without an adapter is not-applicable without one."""
    base = _base(tmp_path, "BertModel", "bert")
    if case == "native":
        model = transformers.BertForSequenceClassification.from_pretrained(base)
        peft.get_peft_model(model, peft.LoraConfig(task_type="SEQ_CLS", target_modules=["query"])).save_pretrained(
            tmp_path / "ckpt")
    else:
        model = adapters.BertAdapterModel.from_pretrained(base)
        model.add_classification_head(NAME, num_labels=2)
        if case == "full-model":
            model.add_adapter(NAME, LoRAConfig(r=4, alpha=8))
        model.save_pretrained(tmp_path / "ckpt")
    export = json.loads(run_cli("scan", tmp_path / "ckpt", "--format", "json").stdout)["exports"]["peft"]
    want = {"native": "native", "full-model": "not-applicable", "no-adapter": "not-applicable"}[case]
    assert export["verdict"] == want
    assert any("--to transformers" in note for note in export["notes"]) == (case == "full-model")


PEFT_FIXTURES = Path(__file__).parent / "fixtures" / "peft"


def test_dry_run_shows_the_whole_adapter_config_and_the_computed_tensors(tmp_path):
    case = PEFT_FIXTURES / "gpt2-lora-cattn"
    args = ("migrate", case, "--to", "peft", "--base", f"{case}.base", "--out", tmp_path / "out", "--dry-run")
    text = run_cli(*args)
    assert text.returncode == 0, text.stderr
    assert '"peft_type": "LORA"' in text.stdout and '"fan_in_fan_out": true' in text.stdout
    assert "compute base_model.model.transformer.h.0.attn.c_attn.lora_B.weight [96, 16]" in text.stdout
    plan = json.loads(run_cli(*args, "--format", "json").stdout)
    assert plan["to"] == "peft" and plan["architecture"] == "GPT2LMHeadModel" and len(plan["computed"]) == 2
    assert not (tmp_path / "out").exists()


def test_verify_is_refused_before_anything_is_written(tmp_path):
    case = PEFT_FIXTURES / "bert-lora-seqcls"
    done = run_cli("migrate", case, "--to", "peft", "--base", f"{case}.base", "--out", tmp_path / "out", "--verify")
    assert done.returncode == 4 and "PEFT exports are proven" in done.stderr, done.stderr
    assert not (tmp_path / "out").exists()


def test_python_api_writes_the_peft_export(tmp_path):
    import headcheck

    case = PEFT_FIXTURES / "xlmr-lora-tagging"
    result = headcheck.migrate(case, tmp_path / "out", to="peft", base=f"{case}.base")
    assert result.migration.target == "peft" and result.rescan.export("peft").verdict.value == "native"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["adapter_config.json", "adapter_model.safetensors"]


def test_any_adapter_settings_get_a_verdict_from_both_export_judges(tmp_path_factory):
    """adapter_config.json's `config` is user data: whatever JSON its keys hold, scan answers with an export verdict
    for each target (found: an `architecture` or `attn_matrices` holding a list or an object made the judges raise)."""
    import shutil

    from hypothesis import HealthCheck, given, settings, strategies as st

    from headcheck.judge.engine import scan_path

    folder = tmp_path_factory.mktemp("fuzzed") / "adapter"
    shutil.copytree(PEFT_FIXTURES / "bert-lora-seqcls", folder)
    original = json.loads((folder / "adapter_config.json").read_text())
    scalars = st.none() | st.booleans() | st.integers(-3, 40) | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8)
    values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4),
                                                                                               inner, max_size=3),
                          max_leaves=6)
    keys = st.sampled_from(["architecture", "r", "alpha", "dropout", "attn_matrices", "composition_mode",
                            "use_gating", "use_dora", "vera_d", "vera_b", "leave_out", "n_up_projection"])

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.dictionaries(keys, values, min_size=1, max_size=4))
    def check(changes):
        config = {**original, "config": {**original["config"], **changes}}
        (folder / "adapter_config.json").write_text(json.dumps(config))
        report = scan_path(folder)
        assert {e.target for e in report.exports} == {"transformers", "peft"}

    check()


def test_an_adapter_folder_saved_as_bin_gives_the_same_peft_tensors(tmp_path):
    """Older adapters releases save pytorch_adapter.bin / pytorch_model_head.bin: read without unpickling, the
    same tensors land in adapter_model.safetensors, and the .bin files are superseded (not copied)."""
    import shutil

    from safetensors.torch import load_file

    case = PEFT_FIXTURES / "bert-lora-seqcls"
    folder = tmp_path / "bin"
    shutil.copytree(case, folder)
    for safetensors_name, bin_name in (("adapter.safetensors", "pytorch_adapter.bin"),
                                       ("model_head.safetensors", "pytorch_model_head.bin")):
        torch.save(load_file(folder / safetensors_name), folder / bin_name)
        (folder / safetensors_name).unlink()
    for source, out in ((folder, tmp_path / "from-bin"), (case, tmp_path / "from-safetensors")):
        done = run_cli("migrate", source, "--to", "peft", "--base", f"{case}.base", "--out", out)
        assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "from-bin").iterdir()) == ["adapter_config.json",
                                                                          "adapter_model.safetensors"]
    from_bin = load_file(tmp_path / "from-bin" / "adapter_model.safetensors")
    from_safetensors = load_file(tmp_path / "from-safetensors" / "adapter_model.safetensors")
    assert from_bin.keys() == from_safetensors.keys()
    assert all(torch.equal(from_bin[k], from_safetensors[k]) for k in from_bin)
