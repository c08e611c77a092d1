"""Issue 14 ("the first hour of a new user"): each point as a new user meets it, through the console script."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from headcheck.read.safetensors_header import read_safetensors_index
from helpers import CHECKPOINTS, REPO, under_a_pty

SCRIPT = Path(sys.executable).parent / "headcheck"


def headcheck(*args, cwd: Path = REPO) -> subprocess.CompletedProcess:
    """The installed console script, as users run it."""
    assert SCRIPT.exists(), f"the console script is not installed next to {sys.executable}"
    return subprocess.run([str(SCRIPT), *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("fixture", ["adapter-static-head", "bert-seq-cls", "sharded", "roberta-multilabel"])
def test_2_the_reported_plan_is_what_migrate_writes(tmp_path, fixture):
    scan = headcheck("scan", CHECKPOINTS / fixture, "--format", "json")
    report = json.loads(scan.stdout)
    done = headcheck("migrate", CHECKPOINTS / fixture, "--out", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    written = set()
    for weights in (tmp_path / "out").glob("*.safetensors"):
        written |= set(read_safetensors_index(weights, weights.name)[0])
    planned = {rename["target"] for rename in report["plan"]["renames"]}
    assert planned and planned <= written, (planned, written)


def test_2_adapter_static_head_plan_uses_the_adapter_name():
    report = json.loads(headcheck("scan", CHECKPOINTS / "adapter-static-head", "--format", "json").stdout)
    adapter_name = json.loads((CHECKPOINTS / "adapter-static-head" / "adapter_config.json").read_text())["name"]
    assert report["plan"]["head_name"] == adapter_name != "default"
    assert all(r["target"].startswith(f"heads.{adapter_name}.") for r in report["plan"]["renames"])


def test_3_an_already_flex_checkpoint_is_a_checked_copy(tmp_path):
    done = headcheck("migrate", CHECKPOINTS / "adapter-flex-head", "--out", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    assert "already flex: a checked copy, nothing rewritten" in done.stdout
    assert "copied as they are and rescanned" in " ".join(headcheck("migrate", "--help").stdout.split())


def test_4_a_lone_weights_file_is_judged_with_the_config_beside_it(tmp_path):
    beside = headcheck("scan", CHECKPOINTS / "bert-seq-cls" / "model.safetensors", "--format", "json")
    assert beside.returncode == 0, beside.stderr
    assert json.loads(beside.stdout)["verdict"] == "convertible"
    lone = tmp_path / "model.safetensors"
    shutil.copy(CHECKPOINTS / "bert-seq-cls" / "model.safetensors", lone)
    alone = headcheck("scan", lone)
    assert alone.returncode == 3
    assert "weights alone cannot be judged" in alone.stderr and "HC106" not in alone.stdout + alone.stderr


def test_9_an_unnamespaced_hub_id_gets_a_hint(tmp_path):
    done = headcheck("scan", "bert-base-uncased", cwd=tmp_path)
    assert done.returncode == 2
    assert "org/name" in done.stderr and "google-bert/bert-base-uncased" in done.stderr
    assert done.stderr.count("bert-base-uncased: ") == 1


def test_13_wording_is_singular_for_one():
    done = headcheck("scan", CHECKPOINTS / "bert-regression-2").stdout + headcheck(
        "scan", REPO / "tests" / "fixtures" / "writers" / "transformers-5.24.0" / "bert-seqcls-regression").stdout
    assert "1 labels" not in done and "1 output rows" not in done
    assert "1 label" in done and "1 output row" in done


def test_14_head_type_ignored_when_the_config_decides():
    done = headcheck("scan", CHECKPOINTS / "bert-seq-cls", "--head-type", "tagging")
    assert "--head-type tagging ignored" in done.stderr


def test_14_hook_install_outside_a_repository_is_a_usage_error(tmp_path):
    done = headcheck("hook", "install", cwd=tmp_path)
    assert done.returncode == 4 and "not a git repository" in done.stderr


def test_15_force_refuses_a_file_and_says_what_it_replaces(tmp_path):
    a_file = tmp_path / "out.txt"
    a_file.write_text("precious")
    refused = headcheck("migrate", CHECKPOINTS / "bert-seq-cls", "--out", a_file, "--force")
    assert refused.returncode == 4 and "is a file" in refused.stderr
    assert a_file.read_text() == "precious"
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "old.txt").write_text("old")
    replaced = headcheck("migrate", CHECKPOINTS / "bert-seq-cls", "--out", folder, "--force")
    assert replaced.returncode == 0, replaced.stderr
    assert "replaced the previous" in replaced.stdout and "1 entries" in replaced.stdout
    assert not (folder / "old.txt").exists()


def test_6_migrate_shows_progress_on_a_terminal_and_not_on_a_pipe(tmp_path):
    shown = under_a_pty("migrate", CHECKPOINTS / "sharded", "--out", tmp_path / "out")
    assert b"writing" in shown and b"\r" in shown
    piped = headcheck("migrate", CHECKPOINTS / "sharded", "--out", tmp_path / "again")
    assert piped.returncode == 0 and "writing" not in piped.stderr


def test_6_bulk_scans_show_progress_on_a_terminal_and_not_on_a_pipe():
    targets = [CHECKPOINTS / "sharded", CHECKPOINTS / "bert-seq-cls", CHECKPOINTS / "roberta-multilabel"]
    shown = under_a_pty("scan", *targets, "--jobs", "2")
    assert b"scanning" in shown
    piped = headcheck("scan", *targets, "--jobs", "2")
    assert "scanning" not in piped.stderr


@pytest.mark.parametrize("targets", [["missing-folder/"], ["missing-folder/", str(CHECKPOINTS / "bert-seq-cls")]])
def test_7_an_unreadable_target_in_every_machine_format(tmp_path, targets):
    """One contract whatever the number of targets: JSON error records, a failed SARIF execution, annotations."""
    as_json = headcheck("scan", *targets, "--format", "json", cwd=REPO)
    records = [json.loads(line) for line in as_json.stdout.splitlines() if line.startswith("{")]
    errors = [r for r in records if "error" in r]
    assert as_json.returncode == 2 and len(errors) == 1 and errors[0]["exit_code"] == 2
    assert errors[0]["source"] == "missing-folder/" and errors[0]["error"].count("missing-folder") == 1
    as_sarif = headcheck("scan", *targets, "--format", "sarif", cwd=REPO)
    run = json.loads(as_sarif.stdout)["runs"][0]
    notifications = run["invocations"][0]["toolExecutionNotifications"]
    assert run["invocations"][0]["executionSuccessful"] is False and "missing-folder" in notifications[0]["message"]["text"]
    sarif_schema = json.loads((REPO / "tests" / "data" / "sarif-2.1.0.schema.json").read_text())
    import jsonschema

    jsonschema.Draft7Validator(sarif_schema).validate(json.loads(as_sarif.stdout))
    as_github = headcheck("scan", *targets, "--format", "github", cwd=REPO)
    assert "::error title=headcheck::missing-folder: no such file or directory" in as_github.stdout


@pytest.mark.parametrize("fixture", ["truncated-header", "invalid-config", "shard-missing", "lfs-pointer-weights"])
def test_8_error_lines_name_the_checkpoint_and_the_file_once(fixture):
    for targets in ([CHECKPOINTS / fixture], [CHECKPOINTS / fixture, CHECKPOINTS / "bert-seq-cls"]):
        done = headcheck("scan", *targets)
        line = next(line for line in (done.stdout + done.stderr).splitlines() if "error:" in line)
        assert line.count(fixture) == 1, line
        assert f"{fixture}/" in line  # folder/file: ...


def test_8_a_missing_target_is_named_once():
    done = headcheck("scan", "nope/", "elsewhere/")
    lines = [line for line in done.stdout.splitlines() if "error" in line]
    assert lines and all(line.count("nope") + line.count("elsewhere") == 1 for line in lines), lines


def test_13_help_and_rule_text_read_well_on_a_terminal():
    top = headcheck("--help").stdout
    commands = top.split("Commands:")[1]
    assert "..." not in commands  # command summaries are not cut
    listing = headcheck("rule").stdout.splitlines()
    assert max(map(len, listing)) <= 100
    explained = headcheck("rule", "HC103").stdout
    assert "##" not in explained and "`" not in explained
    assert "What it checks" in explained and "How to fix" in explained
    assert headcheck("rule", "--markdown").stdout.startswith("# headcheck rules")


def test_11_verify_output_is_clean_and_in_order(tmp_path):
    zoo = pytest.importorskip("zoo")
    src = zoo.build_static("BertForSequenceClassification", tmp_path / "src", num_labels=3)
    done = headcheck("migrate", src, "--out", tmp_path / "out", "--verify")
    assert done.returncode == 0, done.stderr
    assert "TRAIN" not in done.stdout + done.stderr and "none are activated" not in done.stdout + done.stderr
    lines = done.stdout.splitlines()
    verify = next(i for i, line in enumerate(lines) if line.startswith("verify:"))
    wrote = next(i for i, line in enumerate(lines) if line.startswith("wrote "))
    assert verify < wrote  # the check runs before the output is renamed into place


def test_11_a_usage_error_with_verify_does_not_load_torch(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("x")
    code = ("import sys; from headcheck.cli.main import main; sys.argv = ['headcheck', 'migrate', sys.argv[1], "
            "'--out', sys.argv[2], '--verify']\ntry:\n    main()\nexcept SystemExit as exc:\n    print(exc.code)\n"
            "print('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code, str(CHECKPOINTS / "bert-seq-cls"), str(tmp_path / "out")],
                          capture_output=True, text=True, cwd=REPO)
    assert done.stdout.split() == ["4", "False"], done.stdout + done.stderr


def test_12_dry_run_shows_every_key_it_sets_and_says_it_is_partial(tmp_path):
    done = headcheck("migrate", CHECKPOINTS / "bert-seq-cls", "--out", tmp_path / "out", "--dry-run")
    assert '"adapters"' in done.stdout and '"prediction_heads"' in done.stdout
    assert "other keys kept as they were" in done.stdout
    real = headcheck("migrate", CHECKPOINTS / "bert-seq-cls", "--out", tmp_path / "out")
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    original = json.loads((CHECKPOINTS / "bert-seq-cls" / "config.json").read_text())
    changed = {key for key in config if config[key] != original.get(key)}
    assert real.returncode == 0 and all(f'"{key}"' in done.stdout for key in changed), changed


def test_16_quiet_json_and_a_plan_summary(tmp_path):
    assert headcheck("scan", CHECKPOINTS / "bert-seq-cls", "--quiet").stdout.strip().endswith(": convertible")
    summary = headcheck("migrate", CHECKPOINTS / "sharded", "--out", tmp_path / "a")
    assert len(summary.stdout.splitlines()) <= 4 and "tensors renamed" in summary.stdout
    verbose = headcheck("migrate", CHECKPOINTS / "sharded", "--out", tmp_path / "b", "--verbose")
    assert "rename classifier.weight -> heads.default.1.weight" in verbose.stdout
    quiet = headcheck("migrate", CHECKPOINTS / "sharded", "--out", tmp_path / "c", "--quiet")
    assert quiet.returncode == 0 and quiet.stdout == ""
    as_json = json.loads(headcheck("migrate", CHECKPOINTS / "sharded", "--out", tmp_path / "d", "--format", "json").stdout)
    assert as_json["out"] == str((tmp_path / "d").resolve()) and as_json["tensors_checked"] == 25
    assert any(r["source"] == "classifier.weight" and r["target"] == "heads.default.1.weight" for r in as_json["renames"])


def test_17_18_readme_installs_what_exists_and_documents_what_is_there():
    readme = (REPO / "README.md").read_text()
    tags = subprocess.run(["git", "tag", "-l"], cwd=REPO, capture_output=True, text=True).stdout.split()
    for line in readme.splitlines():
        if "pip install headcheck" in line or "pip install 'headcheck[" in line:
            pytest.fail(f"installs a package the index does not have: {line}")
        if line.strip().startswith("rev: v"):
            assert line.split()[1] in tags, f"the pre-commit snippet names a tag the repository lacks: {line}"
    assert "pre-commit try-repo" in readme and "CUDA" in readme
    from headcheck.model import Layout

    for layout in Layout:
        assert f"`{layout.value}`" in readme, layout
    for option in ("--head-type", "--quiet", "--verbose", "--format text|json"):
        assert option in readme.split("## Usage")[1].split("##")[0], option


def test_5_a_config_file_alone_is_not_clean():
    done = headcheck("scan", CHECKPOINTS / "bert-seq-cls" / "config.json", "--format", "json")
    report = json.loads(done.stdout)
    assert done.returncode == 1 and report["verdict"] == "not-convertible"
    assert any(f["rule"] == "HC128" and f["severity"] == "error" for f in report["findings"])
    assert headcheck("scan", CHECKPOINTS / "bert-seq-cls").returncode == 0  # the folder is fine


@pytest.mark.parametrize("fixture", ["bert-seq-cls", "adapter-static-head", "adapter-flex-head"])
def test_5_a_folder_without_its_weights_is_not_clean(tmp_path, fixture):
    folder = tmp_path / fixture
    shutil.copytree(CHECKPOINTS / fixture, folder, ignore=shutil.ignore_patterns("*.safetensors", "*.bin"))
    done = headcheck("scan", folder, "--format", "json")
    report = json.loads(done.stdout)
    assert done.returncode == 1 and report["verdict"] == "not-convertible"
    assert any(f["rule"] == "HC115" and f["severity"] == "error" for f in report["findings"])


def test_5_a_peft_adapter_is_not_clean_for_adapters():
    done = headcheck("scan", CHECKPOINTS / "peft-seq-cls", "--format", "json")
    report = json.loads(done.stdout)
    assert done.returncode == 1 and report["verdict"] == "not-convertible"
    assert any(f["rule"] == "HC118" and f["severity"] == "error" for f in report["findings"])


def _checkpoint_folders() -> list[Path]:
    roots = [CHECKPOINTS, CHECKPOINTS.parent / "writers"]
    return sorted(p for root in roots for p in root.iterdir() if p.is_dir()
                  for p in ([p] if (p / "config.json").exists() or (p / "adapter_config.json").exists() else
                            [q for q in p.iterdir() if q.is_dir()]))


def test_5_every_not_convertible_fixture_has_an_error_level_reason():
    """The invariant over every checkpoint the suite ships (home-made and written by each library version)."""
    from headcheck import InputError, NothingScannedError, scan

    judged = 0
    for folder in _checkpoint_folders():
        try:
            report = scan(str(folder)).to_dict()
        except (InputError, NothingScannedError):
            continue
        judged += 1
        if report["verdict"] == "not-convertible":
            assert any(f["severity"] == "error" for f in report["findings"]), (folder, report["findings"])
    assert judged > 80


def test_10_problem_type_unrecorded_says_why_it_fires(tmp_path):
    """HC117 is kept (a multi-label model trained with its loss outside forward converts with the wrong loss), and
    only where the config lacks what a forward pass with labels records; its message says so."""
    folder = tmp_path / "never-trained"
    shutil.copytree(CHECKPOINTS / "bert-seq-cls", folder)
    config = json.loads((folder / "config.json").read_text())
    config.pop("problem_type", None)
    (folder / "config.json").write_text(json.dumps(config))
    report = json.loads(headcheck("scan", folder, "--format", "json").stdout)
    hc117 = [f for f in report["findings"] if f["rule"] == "HC117"]
    assert len(hc117) == 1 and "no forward pass with labels set it" in hc117[0]["message"]
    recorded = json.loads(headcheck("scan", CHECKPOINTS / "bert-seq-cls", "--format", "json").stdout)
    assert "problem_type" in json.loads((CHECKPOINTS / "bert-seq-cls" / "config.json").read_text())
    assert not [f for f in recorded["findings"] if f["rule"] == "HC117"]
