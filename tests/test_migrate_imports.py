"""`headcheck migrate` of safetensors checkpoints imports only what it uses (its imports are most of what it costs
beyond the copy itself: benchmarks/, issue 18 point 6). A subprocess migrates a static checkpoint (rewritten), a
sharded one, and a flex one (a checked copy) and lists the modules it imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from helpers import CHECKPOINTS, REPO

# top-level module -> what would import it on the migrate path, and why it must not
NOT_IMPORTED = {
    "torch": "the heavy stack: only --verify loads models",
    "transformers": "the heavy stack: only --verify loads models",
    "adapters": "the heavy stack: only --verify loads models",
    "numpy": "merging adapters (--to transformers) only",
    "huggingface_hub": "a Hub source only",
    "jsonschema": "rule data validated once per machine (read/schema_check.py stamps)",
    "concurrent": "the writer and the byte check run plain threads (migration/threads.py)",
    "logging": "imported by concurrent.futures",
    "pickletools": "the .bin reader and writer, imported on use",
    "tarfile": "the .bin reader (torch's legacy tar format), imported on use",
    "packaging": "version comparisons of configs that name adapters or XModelWithHeads",
    "difflib": "close names for a missing path",
}
# headcheck's own modules a flex migrate leaves alone (the export planners and their merge arithmetic)
NOT_IMPORTED_OWN = ("headcheck.migration.export_plan", "headcheck.migration.peft_plan", "headcheck.migration.merge",
                    "headcheck.migration.peft_tensors")

SCRIPT = r"""
import contextlib, io, json, sys

from headcheck.cli.main import main

codes = []
for args in json.loads(sys.argv[1]):
    sys.argv = ["headcheck", "migrate", *args]
    code = 0
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            main()
    except SystemExit as exc:
        code = exc.code
    codes.append(code)
print(json.dumps({"codes": codes, "modules": sorted({name.split(".")[0] for name in sys.modules}),
                  "own": sorted(name for name in sys.modules if name.startswith("headcheck."))}))
"""


def _migrate_in_one_process(root: Path, env: dict[str, str]) -> dict:
    flex = root / "flex"
    runs = [[str(CHECKPOINTS / "bert-seq-cls"), "--out", str(flex)],
            [str(CHECKPOINTS / "sharded"), "--out", str(root / "sharded")],
            [str(flex), "--out", str(root / "copy")]]
    proc = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(runs)], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["codes"] == [0, 0, 0], proc.stderr
    for name in ("flex", "sharded", "copy"):  # the migrations did happen
        assert any(p.suffix == ".safetensors" for p in (root / name).iterdir()), name
    return out


def test_migrate_imports_only_what_it_uses(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSTARTUP")}
    env.update(PYTHONPATH=str(REPO), XDG_CACHE_HOME=str(tmp_path / "cache"))
    # the first run on a machine validates the rule data it reads and stamps it (read/schema_check.py): the
    # second is every later one
    _migrate_in_one_process(tmp_path / "first", env)
    out = _migrate_in_one_process(tmp_path / "second", env)
    imported = {name: why for name, why in NOT_IMPORTED.items() if name in out["modules"]}
    assert not imported, f"imported by a local safetensors migrate: {imported} (all: {out['modules']})"
    own = [name for name in NOT_IMPORTED_OWN if name in out["own"]]
    assert not own, f"a flex migrate imported the export planners: {own}"
