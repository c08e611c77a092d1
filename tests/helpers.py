"""Shared test helpers: scan in-process and validate every JSON report against the shipped schema."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import venv
from importlib import resources
from pathlib import Path

import jsonschema

from headcheck.judge.engine import scan_path

REPO = Path(__file__).resolve().parent.parent
CHECKPOINTS = REPO / "tests" / "fixtures" / "checkpoints"
REPORT_SCHEMA = json.loads((resources.files("headcheck") / "schemas" / "report.schema.json").read_text())
_validator = jsonschema.Draft202012Validator(REPORT_SCHEMA)


def validated(report_json: dict) -> dict:
    _validator.validate(report_json)
    # DESIGN.md: the plan is present exactly when the verdict is convertible.
    assert (report_json["verdict"] == "convertible") == (report_json["plan"] is not None), report_json
    return report_json


def scan(path: Path, **kwargs) -> dict:
    """Scan and return the JSON report (validated), the form other tools consume."""
    return validated(json.loads(json.dumps(scan_path(Path(path), **kwargs).to_dict())))


def rules_of(report: dict) -> set[str]:
    return {f["rule"] for f in report["findings"]}


def run_cli(*args: str, env: dict[str, str] | None = None, **kwargs) -> subprocess.CompletedProcess:
    """`python -m headcheck ...` in a subprocess, importing headcheck from this checkout."""
    full_env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}  # colour only when a test asks
    full_env.update(env or {})
    full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), full_env.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-m", "headcheck", *map(str, args)], cwd=REPO, env=full_env,
                          capture_output="stdout" not in kwargs, text=True, timeout=120, **kwargs)


_NO_HEAVY_STACK = '''import sys


class _Absent:
    """torch, transformers and adapters cannot be imported: headcheck's core install."""

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in ("torch", "transformers", "adapters"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, _Absent())
'''


def without_heavy_stack(folder: Path) -> dict[str, str]:
    """run_cli's env for a Python where torch, transformers and adapters are not installed (a sitecustomize in
    `folder` hides them), cheaper than a virtual environment without them."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(_NO_HEAVY_STACK)
    env = {"PYTHONPATH": str(folder)}
    hidden = subprocess.run([sys.executable, "-c", "import torch"], env={**os.environ, **env}, capture_output=True,
                            text=True)
    assert "No module named 'torch'" in hidden.stderr, hidden.stderr  # else the tests using it prove nothing
    return env


def adapter_folder_with_bin_head(folder: Path) -> Path:
    """The adapter-static-head fixture as save_adapter writes it without safetensors: the head a torch.save
    pytorch_model_head.bin (random weights, so that a renamed or reordered tensor shows)."""
    import torch
    from safetensors.torch import load_file

    shutil.copytree(CHECKPOINTS / "adapter-static-head", folder)
    head = folder / "model_head.safetensors"
    generator = torch.Generator().manual_seed(0)
    torch.save({name: torch.randn(t.shape, generator=generator) for name, t in load_file(head).items()},
               folder / "pytorch_model_head.bin")
    head.unlink()
    return folder


def under_a_pty(*args) -> bytes:
    """Run the installed console script on a fresh pseudo-terminal (no window size set, as in many CI consoles)."""
    import pty
    import select

    master, slave = pty.openpty()
    process = subprocess.Popen([str(Path(sys.executable).parent / "headcheck"), *map(str, args)], cwd=REPO, stdin=slave, stdout=slave, stderr=slave,
                               close_fds=True)
    os.close(slave)
    out = b""
    while select.select([master], [], [], 60)[0]:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    assert process.wait(timeout=60) == 0, out[-2000:]
    return out


# Virtual environments with other releases than the main test environment's (tests/test_hub_versions.py,
# tests/test_export_versions.py): made once and cached under $XDG_CACHE_HOME/headcheck/test-venvs, keyed by the
# Python version and the requirements.
VENV_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "headcheck" / "test-venvs"
PIP_TIMEOUT = 900


def pip(python: Path, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([str(python), "-m", "pip", "--disable-pip-version-check", "--no-input", *args],
                            capture_output=True, text=True, timeout=PIP_TIMEOUT)
    assert result.returncode == 0, f"pip {' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def cached_venv(name: str, requirements: list[str]) -> Path:
    """A virtual environment with `requirements`, made once (under a lock: xdist workers share the cache)."""
    key = hashlib.sha256(json.dumps([sys.version, requirements]).encode()).hexdigest()[:12]
    root = VENV_CACHE / f"{name}-{key}"
    python = root / "bin" / "python"
    VENV_CACHE.mkdir(parents=True, exist_ok=True)
    with open(VENV_CACHE / f"{name}-{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (root / ".complete").exists():
            venv.create(root, with_pip=True, clear=True)
            pip(python, "install", "--quiet", *requirements)
            (root / ".complete").write_text("\n".join(requirements) + "\n")
    return python


def installed(python: Path) -> dict[str, str]:
    """Distribution name (normalised) -> version, of what `python`'s environment has installed."""
    listing = json.loads(pip(python, "list", "--format", "json").stdout)
    return {entry["name"].lower().replace("_", "-"): entry["version"] for entry in listing}


def train_loras(model, scale: float = 0.5):
    """Give every LoRA parameter a random offset, as training would (adapters starts B at zero, so an untrained
    LoRA merges to nothing and a lost merge would go unnoticed)."""
    import torch

    with torch.no_grad():
        for name, param in model.named_parameters():
            if ".loras." in name:
                param.add_(torch.randn_like(param) * scale)
    return model
