"""Load exports with plain transformers and compare them with what the adapters model computed.

    python tests/export_loader.py JOBS.json RESULT.json     # a batch, the result written to RESULT.json
    python tests/export_loader.py EXPORT_DIR EXPECTED.json  # one export, the result printed as JSON

Runs in any environment with torch and transformers (4.x or 5.x), without adapters or headcheck:
tests/test_export_versions.py runs it once per environment with every case in one process (importing torch and
transformers costs seconds). JOBS.json is a list of {"id": ..., "dir": export folder, "expected": <case>.expected.json
(tests/fixtures/exports)}. For each, the class config.json's `architectures[0]` names is taken from transformers and
loaded with `from_pretrained(dir, output_loading_info=True)`, run on the expected file's inputs, and compared.
RESULT.json: {"versions": {...}, "results": {id: {"architecture", "loading_info", "fields", "max_logits_diff",
"loss_diff"} or {"error": ...}}}; a difference that cannot be measured (a field missing, another shape, NaN) is
reported as inf.
"""

from __future__ import annotations

import json
import logging
import math
import sys
import traceback
import warnings
from pathlib import Path

import torch
import transformers

DTYPES = {"int64": torch.long, "float32": torch.float32, "float64": torch.float64}


def tensor(record: dict) -> torch.Tensor:
    return torch.tensor(record["data"], dtype=DTYPES[record["dtype"]])


def difference(got, want: torch.Tensor) -> float:
    if not isinstance(got, torch.Tensor) or tuple(got.shape) != tuple(want.shape):
        return math.inf
    diff = float((got.detach().float() - want.float()).abs().max()) if want.numel() else 0.0
    return math.inf if math.isnan(diff) else diff


def plain_info(info: dict) -> dict[str, list[str]]:
    """output_loading_info's sets and lists (4.x and 5.x name them alike, 5.x may add keys), as sorted strings."""
    return {key: sorted(map(str, value)) for key, value in info.items() if isinstance(value, (set, list, tuple))}


def run(job: dict) -> dict:
    folder = Path(job["dir"])
    expected = json.loads(Path(job["expected"]).read_text())
    architecture = json.loads((folder / "config.json").read_text())["architectures"][0]
    model, info = getattr(transformers, architecture).from_pretrained(folder, output_loading_info=True)
    model.eval()
    inputs = {name: tensor(record) for name, record in expected["inputs"].items()}
    with torch.no_grad():
        output = model(**inputs)
    return {"architecture": architecture, "class": type(model).__name__, "loading_info": plain_info(info),
            **compared(output, expected)}


def compared(output, expected: dict) -> dict:
    """Each recorded output's max |Δ| ("fields"), the loss's and the largest of the others'."""
    fields = {name: difference(getattr(output, name, None), tensor(record))
              for name, record in expected["outputs"].items()}
    return {"fields": fields, "loss_diff": fields.get("loss", math.inf),
            "max_logits_diff": max((d for name, d in fields.items() if name != "loss"), default=math.inf)}


def quiet() -> None:
    """One thread, and no warnings or progress bars in the log."""
    torch.set_num_threads(1)
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()  # 5.x shows one while loading weights
    logging.getLogger("transformers").setLevel(logging.ERROR)
    warnings.simplefilter("ignore")


def run_each(jobs: list[dict], run) -> dict[str, dict]:
    """run(job) for each job, by id; a job that raises gets its error and traceback instead."""
    results = {}
    for job in jobs:
        try:
            results[job["id"]] = run(job)
        except Exception as error:  # one broken export must not hide the others' figures
            results[job["id"]] = {"error": f"{type(error).__name__}: {error}",
                                  "traceback": traceback.format_exc()[-3000:]}
    return results


def main(first: str, second: str) -> int:
    quiet()
    single = Path(first).is_dir()
    jobs = [{"id": Path(first).name, "dir": first, "expected": second}] if single else json.loads(Path(first).read_text())
    results = run_each(jobs, run)
    versions = {"python": sys.version.split()[0], "torch": torch.__version__, "transformers": transformers.__version__}
    text = json.dumps({"versions": versions, "results": results}, indent=1)
    if single:
        print(text)
    else:
        Path(second).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
