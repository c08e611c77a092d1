"""Exports load under transformers 4.57 and 5.24 and give the adapters model's logits and loss (issue 18).

Every case of tests/fixtures/exports (written by adapters 1.3.0 on transformers 4.57, with the outputs adapters
computed) is loaded with plain transformers by tests/export_loader.py: in the main test environment (4.57) and in a
virtual environment with torch 2.13.0, transformers 5.24.0 and peft 0.21.2, made once and cached under
$XDG_CACHE_HOME/headcheck/test-venvs (helpers.cached_venv, as tests/test_hub_versions.py's). Each environment loads
every case in ONE child process; the batches run once per test session, shared by the xdist workers.

* `test_export_*`: what `headcheck migrate CASE --to transformers --out DIR` writes. Skipped, with the reason, in
  a checkout whose migrate has no `--to`; it runs by itself once the command exists.
* `test_static_counterpart_*`: the control that proves the harness now: tests/export_counterparts.py writes each
  case's static transformers checkpoint without headcheck (adapters' own merge, the head renames of adapters'
  STATIC_TO_FLEX_HEAD_MAP read backwards); it must load with no missing or unexpected keys and equal outputs under
  both releases, and a checkpoint with one weight changed (and an (IA)³ merge that leaves the bias unscaled, as
  adapters' merge_adapter does) must fail the same comparison.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import REPO, cached_venv, installed, run_cli

transformers = pytest.importorskip("transformers")  # the main environment's 4.57: how it reads an export's config

FIXTURES = REPO / "tests" / "fixtures" / "exports"
LOADER = REPO / "tests" / "export_loader.py"
TRANSFORMERS_5 = {"torch": "2.13.0", "transformers": "5.24.0", "peft": "0.21.2"}
REQUIREMENTS = [f"{name}=={version}" for name, version in TRANSFORMERS_5.items()]
ENVIRONMENTS = ("4.57", "5.24")
CASES = sorted(p.name.removesuffix(".export.json") for p in FIXTURES.glob("*.export.json"))
ADAPTERS_CONFIG_KEYS = ("adapters", "prediction_heads", "custom_heads")
LOADER_TIMEOUT = 600
NOT_AVAILABLE = "migrate --to transformers is not available in this checkout"
# controls: (job id, case whose expected outputs it is compared with)
ALTERED = {"altered-bert-seqcls-fresh": ("bert-seqcls-fresh", "classifier.weight"),
           "altered-llama-lora-causal-lm": ("llama-lora-causal-lm", "model.layers.1.self_attn.v_proj.weight")}
IA3_UNSCALED_BIAS = "ia3-bias-unscaled"


def spec(case: str) -> dict:
    return json.loads((FIXTURES / f"{case}.export.json").read_text())


def test_every_exportable_shape_has_a_fixture():
    """The shapes issue 18's acceptance names, each with its adapters outputs and export expectations."""
    architectures = {spec(case)["architecture"] for case in CASES}
    assert {"BertForSequenceClassification", "BertForTokenClassification", "BertForQuestionAnswering",
            "BertForMultipleChoice", "BertForMaskedLM", "RobertaForSequenceClassification",
            "XLMRobertaForSequenceClassification", "GPT2LMHeadModel", "LlamaForCausalLM",
            "XLMRobertaForTokenClassification", "RobertaForTokenClassification", "DistilBertForSequenceClassification",
            "DistilBertForTokenClassification", "ElectraForSequenceClassification", "BartForSequenceClassification",
            "BartForQuestionAnswering", "BartForConditionalGeneration", "T5ForConditionalGeneration",
            "T5ForQuestionAnswering", "BeitForImageClassification", "ViTForImageClassification",
            "DebertaForSequenceClassification", "DebertaForTokenClassification"} <= architectures
    # LoRA merged in every family adapters wraps with plain linear layers, and the fused ones
    merged_families = {spec(case)["source"].split("-")[0] for case in CASES if spec(case)["merged"]}
    assert {"bert", "xlmr", "roberta", "gpt2", "llama", "deberta", "distilbert", "electra", "bart", "t5"} <= \
        merged_families, merged_families
    problems = {spec(case)["config"].get("problem_type") for case in CASES}
    assert {"regression", "multi_label_classification"} <= problems
    assert any(spec(case)["base"] for case in CASES)  # an adapter folder and its base
    for case in CASES:
        expected = json.loads((FIXTURES / f"{case}.expected.json").read_text())
        assert (FIXTURES / spec(case)["source"]).is_dir() and "loss" in expected["outputs"], case
        assert spec(case)["atol"] == (1e-4 if spec(case)["merged"] else 1e-5), case
        if spec(case)["adapter"]:  # leaving the adapter out would be far outside the tolerance
            assert expected["adapter_effect"] > 100 * spec(case)["atol"], case


# --- running the loader once per environment and session ---------------------------------------------------------------

def _shared(tmp_path_factory, name: str, compute) -> dict:
    """compute(folder) once per test session, whichever xdist worker asks first; the others read its result."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # shared by the workers of this session
    result = root / f"{name}.json"
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not result.exists():
            result.write_text(json.dumps(compute(root / name)))
    return json.loads(result.read_text())


def _python5() -> Path:
    python = cached_venv("transformers-5", REQUIREMENTS)
    versions = installed(python)
    # torch's CPU build says 2.13.0+cpu
    assert {name: versions.get(name, "").split("+")[0] for name in TRANSFORMERS_5} == TRANSFORMERS_5, versions
    assert "adapters" not in versions and "headcheck" not in versions  # plain transformers, as serving stacks load
    return python


def _load_all(folder: Path, jobs: list[dict], loader: Path = LOADER) -> dict[str, dict]:
    """The loader in each environment, every job in one child process per environment (tests/test_peft_versions.py
    runs its own loader this way)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "jobs.json").write_text(json.dumps(jobs))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTEST_XDIST_WORKER")}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    pythons = {"4.57": Path(sys.executable), "5.24": _python5()}
    children = {}
    try:
        for environment, python in pythons.items():  # side by side
            out, log = folder / f"results-{environment}.json", folder / f"loader-{environment}.log"
            with open(log, "w") as stderr:  # a file, not a pipe: nothing blocks while the other child is waited for
                children[environment] = (out, log, subprocess.Popen(
                    [str(python), str(loader), str(folder / "jobs.json"), str(out)], env=env, cwd=folder,
                    stdout=stderr, stderr=subprocess.STDOUT))
        for out, log, child in children.values():
            child.wait(timeout=LOADER_TIMEOUT)
    finally:
        for _, _, child in children.values():
            child.kill()
    runs = {}
    for environment, (out, log, child) in children.items():
        assert child.returncode == 0, log.read_text()[-4000:]
        runs[environment] = json.loads(out.read_text())
        version = runs[environment]["versions"]["transformers"]
        assert version.startswith("4.57.") if environment == "4.57" else version == "5.24.0", version
    return runs


def _job(job_id: str, folder: Path, case: str) -> dict:
    return {"id": job_id, "dir": str(folder), "expected": str(FIXTURES / f"{case}.expected.json")}


def _check(result: dict, case: str, environment: str) -> None:
    """The export loads as its config says, with nothing missing or left over, and computes the adapters outputs."""
    assert "error" not in result, f"{case} under {environment}: {result.get('traceback') or result['error']}"
    wanted = spec(case)
    assert result["architecture"] == result["class"] == wanted["architecture"], result
    assert all(not keys for keys in result["loading_info"].values()), result["loading_info"]
    figures = f"{case} under transformers {environment}: max |Δlogits| {result['max_logits_diff']:.3g}, " \
              f"|Δloss| {result['loss_diff']:.3g}, atol {wanted['atol']}"
    assert result["max_logits_diff"] <= wanted["atol"] and result["loss_diff"] <= wanted["atol"], figures


# --- the harness's control: static counterparts written without headcheck -------------------------------------------

@pytest.fixture(scope="module")
def counterparts(tmp_path_factory):
    def compute(folder: Path) -> dict:
        from export_counterparts import build_counterpart

        jobs = [_job(case, build_counterpart(case, folder / case), case) for case in CASES]
        for job_id, (case, tensor) in ALTERED.items():
            jobs.append(_job(job_id, build_counterpart(case, folder / job_id, alter=tensor), case))
        # adapters' merge_adapter alone: (IA)³ scales the output, bias included, merge_adapter the weight only
        jobs.append(_job(IA3_UNSCALED_BIAS, build_counterpart("roberta-ia3-tagging", folder / IA3_UNSCALED_BIAS,
                                                              scale_bias=False), "roberta-ia3-tagging"))
        return _load_all(folder, jobs)

    return _shared(tmp_path_factory, "export-counterparts", compute)


@pytest.mark.parametrize("environment", ENVIRONMENTS)
@pytest.mark.parametrize("case", CASES)
def test_static_counterpart_loads_with_the_adapters_outputs(counterparts, case, environment):
    _check(counterparts[environment]["results"][case], case, environment)


@pytest.mark.parametrize("environment", ENVIRONMENTS)
@pytest.mark.parametrize("job_id", [*ALTERED, IA3_UNSCALED_BIAS])
def test_static_counterpart_with_a_wrong_weight_fails_the_comparison(counterparts, job_id, environment):
    """The same comparison catches one changed weight (0.01 added) and an (IA)³ bias left unscaled."""
    result = counterparts[environment]["results"][job_id]
    case = ALTERED[job_id][0] if job_id in ALTERED else "roberta-ia3-tagging"
    with pytest.raises(AssertionError, match=re.escape("max |Δlogits|")):
        _check(result, case, environment)
    assert result["max_logits_diff"] > 10 * spec(case)["atol"], result  # far outside, not at the edge
    assert all(not keys for keys in result["loading_info"].values())  # it failed on the numbers alone


# --- the exports headcheck writes ---------------------------------------------------------------------------------

def has_to_option(help_text: str) -> bool:
    return re.search(r"^\s*--to(?![\w-])", help_text, re.M) is not None


def migrate_to_available() -> bool:
    """Whether this checkout's `headcheck migrate` has the --to option."""
    help_text = run_cli("migrate", "--help")
    assert help_text.returncode == 0, help_text.stderr
    return has_to_option(help_text.stdout)


def test_the_export_tests_turn_on_when_migrate_has_to():
    """The skip above reads the help as click prints it: an option line starting with --to, nothing else."""
    assert has_to_option("Options:\n  --out PATH  Folder.\n  --to [flex|transformers]  Layout to write.\n")
    assert has_to_option("  --to TEXT\n")
    assert not has_to_option("Options:\n  --out PATH  Write to --to later.\n  --top INTEGER\n  --to-flex\n")


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    if not migrate_to_available():
        pytest.skip(NOT_AVAILABLE)

    def compute(folder: Path) -> dict:
        migrations = migrate_each(folder, {case: [
            FIXTURES / spec(case)["source"], *spec(case)["migrate_args"],
            *(["--base", FIXTURES / spec(case)["base"]] if spec(case)["base"] else [])] for case in CASES},
            "config.json")
        jobs = [_job(case, folder / case, case) for case in CASES if migrations[case]["returncode"] == 0]
        return {"migrations": migrations, **_load_all(folder, jobs)}

    return _shared(tmp_path_factory, "exports", compute)


def migrate_each(folder: Path, commands: dict[str, list], written: str) -> dict[str, dict]:
    """`headcheck migrate ARGS --out folder/CASE` for each case: its return code, the output's tail and, when it
    succeeded, the JSON file `written` it wrote ("config")."""
    migrations = {}
    for case, args in commands.items():
        done = run_cli("migrate", *args, "--out", folder / case)
        migrations[case] = {"returncode": done.returncode, "output": (done.stdout + done.stderr)[-3000:]}
        if done.returncode == 0:
            migrations[case]["config"] = json.loads((folder / case / written).read_text())
    return migrations


@pytest.mark.parametrize("case", CASES)
def test_export_is_written_as_a_plain_transformers_checkpoint(exports, case):
    migration = exports["migrations"][case]
    assert migration["returncode"] == 0, migration["output"]
    config, wanted = migration["config"], spec(case)
    assert config["architectures"] == [wanted["architecture"]], config["architectures"]
    assert not [key for key in config if key in ADAPTERS_CONFIG_KEYS], sorted(config)
    for key, value in wanted["config"].items():
        # the number of labels is what transformers reads from config.json: the label map's size, or its default
        # when the map is left out (transformers writes none for its default 2 labels)
        found = transformers.PretrainedConfig(**config).num_labels if key == "num_labels" else config.get(key)
        assert found == value, (key, found, value)


@pytest.mark.parametrize("environment", ENVIRONMENTS)
@pytest.mark.parametrize("case", CASES)
def test_export_loads_with_the_adapters_outputs(exports, case, environment):
    assert exports["migrations"][case]["returncode"] == 0, exports["migrations"][case]["output"]
    _check(exports[environment]["results"][case], case, environment)


# --- the fixtures are what their generator writes ------------------------------------------------------------------

@pytest.mark.slow
def test_the_export_fixtures_are_what_make_exports_writes(tmp_path):
    assert_regenerated(FIXTURES, FIXTURES / "make_exports.py", tmp_path)


def assert_regenerated(fixtures: Path, generator: Path, out: Path) -> None:
    """The generator run again writes the committed checkpoints byte for byte; the recorded outputs equal up to float
    rounding (1e-6: another CPU's kernels may differ in the last bits, a changed weight moves them by 1e-2)."""
    done = subprocess.run([sys.executable, str(generator), "--out", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    committed = sorted(p.relative_to(fixtures) for p in fixtures.rglob("*")
                       if p.is_file() and p.name not in (generator.name, "README.md") and "__pycache__" not in p.parts)
    written = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    assert written == committed
    for name in committed:
        if name.name.endswith(".expected.json"):
            old, new = (json.loads((root / name).read_text()) for root in (fixtures, out))
            assert new["inputs"] == old["inputs"] and new["outputs"].keys() == old["outputs"].keys(), name
            for field, record in old["outputs"].items():
                assert _close(new["outputs"][field]["data"], record["data"], 1e-6), (name, field)
        else:
            assert (out / name).read_bytes() == (fixtures / name).read_bytes(), name


def _close(a, b, atol: float) -> bool:
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y, atol) for x, y in zip(a, b))
    return isinstance(a, float) and isinstance(b, float) and abs(a - b) <= atol
