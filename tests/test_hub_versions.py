"""headcheck next to today's stacks: the Hub tests under every huggingface_hub major, and an install next to
transformers 5 that changes nothing.

The main test environment has huggingface_hub 0.x (the verify extra pins transformers 4.57, which needs it).
The newest 1.x and 2.x each get a virtual environment made once and cached under
$XDG_CACHE_HOME/headcheck/test-venvs (keyed by its requirements; helpers.cached_venv); tests/test_hub.py then runs inside it
against this checkout, and so do tests/test_hub_pr.py (commits and pull requests) and tests/test_hub_base.py (Hub base models). The transformers 5 environment is made fresh each run: the point is what the
install changes.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tomllib
import venv

import pytest

from helpers import REPO, cached_venv, installed, pip

HUB_MAJORS = {"1.x": "1.33.0", "2.x": "2.4.0"}  # the newest release of each major on the package index
TRANSFORMERS_5 = "transformers==5.24.0"
# what the Hub tests need besides headcheck's own dependencies (torch is optional there; numpy is the export extra,
# which an adapter folder's export onto a Hub base model merges its LoRA with: tests/test_hub_base.py)
HUB_TEST_REQUIREMENTS = ["pytest>=8", "pytest-httpserver>=1.0", "numpy>=1.24"]


def core_requirements(hub_pin: str) -> list[str]:
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    return [hub_pin if re.match(r"huggingface[-_]hub\b", req, re.I) else req for req in declared]


@pytest.mark.parametrize("major", sorted(HUB_MAJORS))
def test_hub_tests_pass_under_huggingface_hub(major):
    version = HUB_MAJORS[major]
    python = cached_venv(f"hub-{version}", [*core_requirements(f"huggingface_hub=={version}"), *HUB_TEST_REQUIREMENTS])
    assert installed(python)["huggingface-hub"] == version
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("PYTEST_XDIST_WORKER", None)
    result = subprocess.run([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_hub.py",
                             "tests/test_hub_pr.py", "tests/test_hub_base.py"],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=1200)
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else result.stderr[-2000:]
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    passed = int(re.search(r"(\d+) passed", summary).group(1))
    skipped = re.findall(r"SKIPPED \[\d+\] (.*)", result.stdout)
    # only the cases that need the heavy stack (a real torch.save file, the transformers zoo, loading a pull request
    # with adapters) may skip here
    assert all("torch" in reason or "adapters" in reason for reason in skipped), skipped
    # test_hub.py's 37 without torch, test_hub_pr.py's 14 without adapters, test_hub_base.py's 14 without adapters
    assert passed >= 58, summary


def test_install_next_to_transformers_5_changes_nothing(tmp_path):
    root = tmp_path / "venv"
    venv.create(root, with_pip=True)
    python = root / "bin" / "python"
    pip(python, "install", "--quiet", TRANSFORMERS_5)
    before = installed(python)
    pip(python, "install", "--quiet", str(REPO))
    after = installed(python)
    changed = {name: (version, after.get(name)) for name, version in before.items() if after.get(name) != version}
    assert changed == {}, f"installing headcheck changed installed packages: {changed}"
    assert "headcheck" in after
    pip(python, "check")
    probe = subprocess.run([str(python), "-c", "import transformers, huggingface_hub; "
                            "print(transformers.__version__, huggingface_hub.__version__)"],
                           capture_output=True, text=True, check=True)
    transformers_version, hub_version = probe.stdout.split()
    assert transformers_version == "5.24.0" and int(hub_version.split(".")[0]) >= 1
    scan = subprocess.run([str(root / "bin" / "headcheck"), "scan", "examples/tiny-multilabel-bert", "--format", "json"],
                          cwd=REPO, capture_output=True, text=True)
    assert scan.returncode == 0, scan.stderr
    assert json.loads(scan.stdout)["verdict"] == "convertible"
    # --verify needs adapters' stack: here it says so in one line, with the way out, and writes nothing
    verify = subprocess.run([str(root / "bin" / "headcheck"), "migrate", "examples/tiny-multilabel-bert",
                             "--out", str(tmp_path / "out"), "--verify"], cwd=REPO, capture_output=True, text=True)
    assert verify.returncode == 4, verify.stderr
    message = verify.stderr.strip().splitlines()
    assert len(message) == 1 and "transformers 5.24.0 is installed" in message[0], message
    assert "tool environment" in message[0] and not (tmp_path / "out").exists()
