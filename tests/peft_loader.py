"""Load PEFT adapters onto their base with plain transformers and PEFT and compare them with what the adapters model
computed.

    python tests/peft_loader.py JOBS.json RESULT.json     # a batch, the result written to RESULT.json

Runs in any environment with torch, transformers (4.x or 5.x) and peft, without adapters or headcheck:
tests/test_peft_versions.py runs it once per environment with every job in one process (importing torch,
transformers and peft costs seconds). JOBS.json is a list of {"id", "dir": the PEFT adapter folder, "base": the base
model folder, "auto_class": e.g. "AutoModelForSequenceClassification", "num_labels": int or null, "expected":
<case>.expected.json (tests/fixtures/peft)}. For each, as PEFT users load an adapter:

    model = getattr(transformers, auto_class).from_pretrained(base, num_labels=num_labels)  # num_labels if given
    model = PeftModel.from_pretrained(model, dir).eval()

then the expected file's inputs are run and every recorded output compared (max |Δ|), and what PEFT holds is checked
against the adapter file: the keys of `get_peft_model_state_dict(model)` must be those of adapter_model.safetensors
(`missing`: PEFT holds, the file lacks; `unexpected`: the file has, PEFT does not hold), with the file's values
(`not_loaded`: keys whose tensor differs).
RESULT.json: {"versions": {...}, "results": {id: {"peft_type", "task_type", "class", "missing", "unexpected",
"not_loaded", "shapes" (the file's keys and shapes), "fields", "max_logits_diff", "loss_diff"} or {"error",
"traceback"}}}; a difference that cannot be measured (a field missing, another shape, NaN) is reported as inf. One
job's error does not stop the batch.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import peft
import torch
import transformers
from peft import PeftModel, get_peft_model_state_dict
from safetensors.torch import load_file

from export_loader import compared, quiet, run_each, tensor  # tests/export_loader.py, beside this file


def run(job: dict) -> dict:
    folder = Path(job["dir"])
    expected = json.loads(Path(job["expected"]).read_text())
    kwargs = {"num_labels": job["num_labels"]} if job["num_labels"] else {}
    base = getattr(transformers, job["auto_class"]).from_pretrained(job["base"], **kwargs)
    model = PeftModel.from_pretrained(base, folder).eval()
    held = get_peft_model_state_dict(model)
    saved = load_file(folder / "adapter_model.safetensors")
    config = model.peft_config["default"]
    inputs = {name: tensor(record) for name, record in expected["inputs"].items()}
    with torch.no_grad():
        output = model(**inputs)
    return {
        "peft_type": str(config.peft_type.value), "task_type": config.task_type,
        "class": type(model.get_base_model()).__name__,
        "missing": sorted(set(held) - set(saved)), "unexpected": sorted(set(saved) - set(held)),
        "not_loaded": sorted(key for key in set(held) & set(saved) if not torch.equal(held[key], saved[key])),
        "shapes": {key: list(value.shape) for key, value in sorted(saved.items())},
        **compared(output, expected),
    }


def main(jobs_file: str, result_file: str) -> int:
    quiet()
    results = run_each(json.loads(Path(jobs_file).read_text()), run)
    versions = {"python": sys.version.split()[0], "torch": torch.__version__, "transformers": transformers.__version__,
                "peft": peft.__version__}
    Path(result_file).write_text(json.dumps({"versions": versions, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
