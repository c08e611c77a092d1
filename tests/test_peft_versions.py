"""adapters adapter folders exported as PEFT adapters (issue 19) load with `PeftModel.from_pretrained` onto their plain
base and compute the adapters model's logits and loss, under transformers 4.57 and 5.24.

The fixtures (tests/fixtures/peft, written by make_peft.py with adapters 1.3.0) are adapter folders with the base
they were trained on and the outputs the adapters model computed. tests/peft_loader.py loads a PEFT folder as PEFT
users do (`getattr(transformers, auto_class).from_pretrained(base, num_labels=N)`, then `PeftModel.from_pretrained`)
in the main environment (transformers 4.57, peft 0.21.2) and in the cached virtual environment of
tests/test_export_versions.py (torch 2.13.0, transformers 5.24.0, peft 0.21.2: the same requirements, so the same
venv), every job of an environment in ONE child process, once per test session (shared by the xdist workers).

* `test_counterpart_*`: the control that proves the harness now: tests/peft_counterparts.py writes each case's PEFT
  folder without headcheck (PEFT's own get_peft_model and save_pretrained, the tensors copied by an explicit
  mapping); it must load with the file's keys exactly what PEFT holds and equal outputs under both releases, and a
  counterpart with one adapter tensor changed, or with one left out of the file, must fail.
* `test_export_*`: what `headcheck migrate CASE --to peft --base CASE.base --out DIR` writes, held to the same
  figures and to the counterpart's key names and shapes. `test_refused_*`: every refused method exits 1, names its
  rule and writes nothing. Both skipped, with the reason, in a checkout whose migrate has no `--to peft`; they run by
  themselves once it exists.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

import pytest

from helpers import REPO, run_cli

pytest.importorskip("peft")  # the main environment's loader needs it (the 'test' extra)
# the venv and the batch runner, migrate run for each case, the generator check
from test_export_versions import ENVIRONMENTS, _load_all, _shared, assert_regenerated, migrate_each  # noqa: E402

FIXTURES = REPO / "tests" / "fixtures" / "peft"
LOADER = REPO / "tests" / "peft_loader.py"
CASES = sorted(p.name.removesuffix(".peft.json") for p in FIXTURES.glob("*.peft.json"))
REFUSED = json.loads((FIXTURES / "refused.json").read_text())
REFUSED_BASE = FIXTURES / "bert-lora-seqcls.base"  # the tiny BertModel the refused adapters were trained on
NOT_AVAILABLE = "migrate --to peft is not available in this checkout"
DROPPED = "dropped-lora-b"  # bert-lora-seqcls's counterpart with one lora_B left out of its file
DROPPED_KEY = "base_model.model.bert.encoder.layer.1.attention.self.value.lora_B.weight"


def spec(case: str) -> dict:
    return json.loads((FIXTURES / f"{case}.peft.json").read_text())


def test_every_case_has_a_fixture():
    """The shapes issue 19's acceptance names, each an adapter folder beside its base, with the adapters outputs."""
    shapes = {(spec(case)["family"], spec(case)["method"], spec(case)["task_type"], spec(case)["head"] is not None)
              for case in CASES}
    assert shapes >= {("bert", "lora", "SEQ_CLS", True), ("gpt2", "lora", "CAUSAL_LM", False),
                      ("llama", "lora", "CAUSAL_LM", False), ("xlm-roberta", "lora", "TOKEN_CLS", True),
                      ("roberta", "ia3", "TOKEN_CLS", True)}, shapes
    for case in CASES:
        wanted = spec(case)
        adapter_config = json.loads((FIXTURES / wanted["source"] / "adapter_config.json").read_text())
        assert adapter_config["model_name"] == wanted["base"] and adapter_config["version"] == "adapters.1.3.0", case
        assert (FIXTURES / wanted["base"] / "config.json").is_file(), case
        assert (FIXTURES / wanted["source"] / "head_config.json").is_file() == (wanted["head"] is not None), case
        expected = json.loads((FIXTURES / f"{case}.expected.json").read_text())
        assert set(expected["outputs"]) == {"logits", "loss"}, case
        assert expected["adapter_effect"] > 100 * wanted["atol"], case  # leaving the adapter out is far off
        assert wanted["migrate_args"] == ["--to", "peft"] and wanted["atol"] == 1e-5, case
    assert REFUSED == {"seq_bn": "HC149", "vera": "HC149", "prefix": "HC150", "prompt": "HC151",
                       "gated-lora": "HC152", "dora": "HC153", "fusion": "HC154"}
    for name in REFUSED:
        assert any((FIXTURES / "refused" / name).glob("adapter*config.json")), name


# --- running the loader ---------------------------------------------------------------------------------------------

def _job(job_id: str, folder: Path, case: str) -> dict:
    wanted = spec(case)
    return {"id": job_id, "dir": str(folder), "base": str(FIXTURES / wanted["base"]),
            "auto_class": wanted["auto_class"], "num_labels": wanted["num_labels"],
            "expected": str(FIXTURES / f"{case}.expected.json")}


def _check(result: dict, case: str, environment: str) -> None:
    """PEFT loads the folder with its file's keys exactly what it holds, and it computes the adapters outputs."""
    assert "error" not in result, f"{case} under {environment}: {result.get('traceback') or result['error']}"
    wanted = spec(case)
    assert (result["peft_type"], result["task_type"]) == (wanted["method"].upper(), wanted["task_type"]), result
    assert not result["missing"] and not result["unexpected"] and not result["not_loaded"], \
        {key: result[key] for key in ("missing", "unexpected", "not_loaded")}
    figures = f"{case} under transformers {environment}: max |Δlogits| {result['max_logits_diff']:.3g}, " \
              f"|Δloss| {result['loss_diff']:.3g}, atol {wanted['atol']}"
    print(figures)
    assert result["max_logits_diff"] <= wanted["atol"] and result["loss_diff"] <= wanted["atol"], figures


# --- the harness's control: PEFT counterparts written without headcheck ---------------------------------------------

@pytest.fixture(scope="module")
def counterparts(tmp_path_factory):
    def compute(folder: Path) -> dict:
        from peft_counterparts import build_counterpart

        jobs = [_job(case, build_counterpart(case, folder / case), case) for case in CASES]
        jobs += [_job(f"altered-{case}", build_counterpart(case, folder / f"altered-{case}", alter=True), case)
                 for case in CASES]
        jobs.append(_job(DROPPED, build_counterpart("bert-lora-seqcls", folder / DROPPED, drop=DROPPED_KEY),
                         "bert-lora-seqcls"))
        return _load_all(folder, jobs, LOADER)

    return _shared(tmp_path_factory, "peft-counterparts", compute)


@pytest.mark.parametrize("environment", ENVIRONMENTS)
@pytest.mark.parametrize("case", CASES)
def test_counterpart_loads_with_the_adapters_outputs(counterparts, case, environment):
    _check(counterparts[environment]["results"][case], case, environment)
    assert counterparts[environment]["versions"]["peft"] == "0.21.2"


@pytest.mark.parametrize("environment", ENVIRONMENTS)
@pytest.mark.parametrize("case", CASES)
def test_counterpart_with_an_altered_tensor_fails_the_comparison(counterparts, case, environment):
    """One adapter tensor with 0.01 noise added: the same comparison catches it, far outside the tolerance."""
    result = counterparts[environment]["results"][f"altered-{case}"]
    with pytest.raises(AssertionError, match=re.escape("max |Δlogits|")):
        _check(result, case, environment)
    assert result["max_logits_diff"] > 10 * spec(case)["atol"], result
    assert not result["missing"] and not result["unexpected"]  # it failed on the numbers alone


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_counterpart_with_a_tensor_left_out_fails_the_key_check(counterparts, environment):
    """A file without one lora_B that its config targets: PEFT loads it anyway (it keeps its zero initialisation and
    warns), the key check names it. (A modules_to_save tensor left out PEFT refuses by itself: a KeyError.)"""
    result = counterparts[environment]["results"][DROPPED]
    assert result["missing"] == [DROPPED_KEY] and not result["unexpected"], result
    with pytest.raises(AssertionError, match="missing"):
        _check(result, "bert-lora-seqcls", environment)
    assert result["max_logits_diff"] > 10 * spec("bert-lora-seqcls")["atol"], result


# --- the exports headcheck writes ---------------------------------------------------------------------------------

def has_peft_target(help_text: str) -> bool:
    """Whether migrate's --to choices, as click prints them, include peft."""
    choices = re.search(r"^\s*--to\s+\[([^\]]*)\]", help_text, re.M)
    return choices is not None and "peft" in choices.group(1).split("|")


@functools.cache
def migrate_to_peft_available() -> bool:
    help_text = run_cli("migrate", "--help")
    assert help_text.returncode == 0, help_text.stderr
    return has_peft_target(help_text.stdout)


def test_the_peft_tests_turn_on_when_migrate_has_to_peft():
    assert has_peft_target("Options:\n  --to [flex|transformers|peft]   Layout to write.\n")
    assert not has_peft_target("Options:\n  --to [flex|transformers]  transformers: out (exports.peft says).\n")
    assert not has_peft_target("  --to [flex|transformers|peft-like]\n  --top [peft]\n")


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    if not migrate_to_peft_available():
        pytest.skip(NOT_AVAILABLE)

    def compute(folder: Path) -> dict:
        migrations = migrate_each(folder, {case: [FIXTURES / spec(case)["source"], *spec(case)["migrate_args"],
                                                  "--base", FIXTURES / spec(case)["base"]] for case in CASES},
                                  "adapter_config.json")
        jobs = [_job(case, folder / case, case) for case in CASES if migrations[case]["returncode"] == 0]
        return {"migrations": migrations, **_load_all(folder, jobs, LOADER)}

    return _shared(tmp_path_factory, "peft-exports", compute)


@pytest.mark.parametrize("case", CASES)
def test_export_is_written_as_a_peft_adapter(exports, case):
    """adapter_config.json in PEFT's schema, with adapters' scaling: alpha / r (GPT-2's fused q and v: rank 2r)."""
    migration = exports["migrations"][case]
    assert migration["returncode"] == 0, migration["output"]
    config, wanted = migration["config"], spec(case)
    adapter_config = json.loads((FIXTURES / wanted["source"] / "adapter_config.json").read_text())["config"]
    assert (config["peft_type"], config["task_type"]) == (wanted["method"].upper(), wanted["task_type"]), config
    if wanted["method"] == "lora":
        assert config["lora_alpha"] / config["r"] == adapter_config["alpha"] / adapter_config["r"], config
        assert not config.get("use_rslora") and not config.get("use_dora"), config
    else:  # adapters' (IA)³ scales outputs: none of PEFT's input-scaling feedforward modules
        assert not config["feedforward_modules"], config


@pytest.mark.parametrize("environment", ENVIRONMENTS)
@pytest.mark.parametrize("case", CASES)
def test_export_loads_with_the_adapters_outputs(exports, counterparts, case, environment):
    assert exports["migrations"][case]["returncode"] == 0, exports["migrations"][case]["output"]
    result = exports[environment]["results"][case]
    _check(result, case, environment)
    # PEFT's key names and shapes, as its own save_pretrained writes them for the same adapter
    assert result["shapes"] == counterparts[environment]["results"][case]["shapes"]


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_refused_method_exits_1_names_its_rule_and_writes_nothing(tmp_path, name):
    if not migrate_to_peft_available():
        pytest.skip(NOT_AVAILABLE)
    out = tmp_path / "out"
    done = run_cli("migrate", FIXTURES / "refused" / name, "--to", "peft", "--base", REFUSED_BASE, "--out", out)
    assert done.returncode == 1, done.stdout + done.stderr
    assert REFUSED[name] in done.stdout + done.stderr, done.stdout + done.stderr
    assert not out.exists()


# --- the fixtures are what their generator writes ------------------------------------------------------------------

@pytest.mark.slow
def test_the_peft_fixtures_are_what_make_peft_writes(tmp_path):
    assert_regenerated(FIXTURES, FIXTURES / "make_peft.py", tmp_path)
