"""The wheel carries the rule data, schemas and console script, and works without the source tree."""

from __future__ import annotations

import configparser
import importlib.util
import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from filelock import FileLock

import headcheck

REPO = Path(__file__).resolve().parent.parent


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}
    env.update(PIP_NO_INPUT="1", PIP_DISABLE_PIP_VERSION_CHECK="1", **extra)
    return env


def _build_wheel(out: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "-w", str(out)]
    if importlib.util.find_spec("hatchling") is not None:
        cmd.append("--no-build-isolation")
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=out, env=_clean_env(), capture_output=True, text=True, timeout=600)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0 and "No matching distribution found for hatchling" in proc.stdout + proc.stderr:
        pytest.skip("hatchling is neither installed nor downloadable (offline?)")
    assert proc.returncode == 0, f"pip wheel failed:\n{proc.stdout}\n{proc.stderr}"
    wheels = list(out.glob("headcheck-*.whl"))
    assert len(wheels) == 1, wheels
    print(f"wheel built in {elapsed:.1f} s: {wheels[0].name}")
    return wheels[0]


@pytest.fixture(scope="session")
def wheel(tmp_path_factory) -> Path:
    """Build the wheel once per test run, shared by the xdist workers through a lock in the run's base temp dir.

    Without hatchling installed, pip fetches it into an isolated build environment.
    """
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return _build_wheel(tmp_path_factory.mktemp("wheel"))
    shared = tmp_path_factory.getbasetemp().parent / "headcheck-wheel"
    with FileLock(str(shared) + ".lock"):
        built = list(shared.glob("headcheck-*.whl"))
        if built:
            return built[0]
        shared.mkdir(exist_ok=True)
        return _build_wheel(shared)


@pytest.fixture(scope="module")
def names(wheel) -> set[str]:
    with zipfile.ZipFile(wheel) as zf:
        return set(zf.namelist())


def test_wheel_carries_rule_data_and_schemas(names):
    for required in (
        "headcheck/rules/rules.json",
        "headcheck/rules/head_layouts.json",
        "headcheck/rules/families.json",
        "headcheck/rules/flex_heads.json",
        "headcheck/schemas/report.schema.json",
        "headcheck/schemas/config.schema.json",
    ):
        assert required in names, f"{required} missing from the wheel"
    schemas = {n for n in names if n.startswith("headcheck/rules/schema/") and n.endswith(".schema.json")}
    assert {"rules", "head_layouts", "families", "flex_heads"} <= {Path(n).name.removesuffix(".schema.json") for n in schemas}
    # every file of rules/ is packaged, and nothing lands outside the package
    source_rules = {f"headcheck/rules/{p.relative_to(REPO / 'rules').as_posix()}" for p in (REPO / "rules").rglob("*")
                    if p.is_file()}
    assert source_rules <= names, sorted(source_rules - names)
    top_level = {n.split("/", 1)[0] for n in names}
    assert top_level == {"headcheck", f"headcheck-{headcheck.__version__}.dist-info"}, top_level


def test_wheel_carries_every_module(names):
    modules = {p.relative_to(REPO).as_posix() for p in (REPO / "headcheck").rglob("*.py") if "__pycache__" not in p.parts}
    assert modules <= names, sorted(modules - names)


def test_wheel_declares_the_console_script(wheel, names):
    dist_info = f"headcheck-{headcheck.__version__}.dist-info"
    with zipfile.ZipFile(wheel) as zf:
        entry_points = zf.read(f"{dist_info}/entry_points.txt").decode()
        metadata = zf.read(f"{dist_info}/METADATA").decode()
    parser = configparser.ConfigParser()
    parser.read_string(entry_points)
    assert parser["console_scripts"]["headcheck"].strip() == "headcheck.cli.main:main"
    assert f"Version: {headcheck.__version__}" in metadata.splitlines()


INSTALLED_CHECK = r"""
import json, sys
from pathlib import Path
import headcheck
from headcheck.judge import ruledata
from headcheck.judge.engine import scan_path
from importlib import resources

report = scan_path(Path(sys.argv[1]))
print(json.dumps({
    "module": headcheck.__file__,
    "rules_root": str(ruledata.rules_root()),
    "rules": len(ruledata.registry()),
    "layouts": len(ruledata.head_layouts()),
    "families": len(ruledata.families()["families"]),
    "report_schema": len((resources.files("headcheck") / "schemas" / "report.schema.json").read_text()),
    "head_type": report.head.type,
    "rules_found": sorted(f.rule for f in report.findings),
    "path": sys.path,
}))
"""


def test_extracted_wheel_works_without_the_source_tree(wheel, tmp_path):
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(site)
    work = tmp_path / "work"
    checkpoint = work / "ckpt"
    checkpoint.mkdir(parents=True)
    (checkpoint / "config.json").write_text(json.dumps({
        "architectures": ["BertForSequenceClassification"], "model_type": "bert", "hidden_size": 32,
        "id2label": {"0": "NEG", "1": "POS"}, "label2id": {"NEG": 0, "POS": 1},
    }))
    env = _clean_env(PYTHONPATH=str(site))
    proc = subprocess.run([sys.executable, "-c", INSTALLED_CHECK, str(checkpoint)], cwd=work, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    package = (site / "headcheck").resolve()
    assert Path(out["module"]).resolve().parent == package, out["path"]
    assert Path(out["rules_root"]).resolve() == package / "rules"
    # (an editable install may still list the checkout on sys.path; PYTHONPATH wins, as the two asserts above show)
    assert out["rules"] >= 20
    assert out["layouts"] == 82 and out["families"] >= 22 and out["report_schema"] > 0
    # config only: judged (head classified) from the packaged rule data, not convertible without weights
    assert out["head_type"] == "classification"
    assert "HC115" in out["rules_found"]

    # the console script's target, as `python -m headcheck`
    proc = subprocess.run([sys.executable, "-m", "headcheck", "rule", "HC101"], cwd=work, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "custom-head-weights" in proc.stdout

    # the project configuration, validated against the schema inside the wheel (a fresh cache: no stamp)
    (work / ".headcheck.toml").write_text('ignore = ["no-weights"]\n')
    cache = _clean_env(PYTHONPATH=str(site), XDG_CACHE_HOME=str(tmp_path / "cache"))
    proc = subprocess.run([sys.executable, "-m", "headcheck", "scan", "ckpt", "--format", "json"], cwd=work, env=cache,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert [f["ignored_by"] for f in json.loads(proc.stdout)["findings"] if f["rule"] == "HC115"] == [".headcheck.toml: ignore"]
    (work / ".headcheck.toml").write_text('ignore = ["HC115"]\nfail-on = "always"\n')
    proc = subprocess.run([sys.executable, "-m", "headcheck", "scan", "ckpt"], cwd=work, env=cache,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 4 and "config error: .headcheck.toml: fail-on: 'always' is not one of" in proc.stderr
