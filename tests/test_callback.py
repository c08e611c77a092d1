"""HeadcheckCallback: tiny BERTs trained for a few steps with transformers' Trainer and adapters' AdapterTrainer,
saving every step. A good head logs its verdict at every checkpoint; a head broken during training (label count
mismatch) stops training with the rule code before the next save; with push_to_hub the upload order is measured
with the Hub calls replaced by recorders (no network)."""

from __future__ import annotations

import fnmatch
import json
import logging
import os
import subprocess
import sys
from concurrent.futures import Future
from pathlib import Path
from types import SimpleNamespace

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("accelerate", reason="transformers' Trainer needs accelerate>=0.26")
adapters = pytest.importorskip("adapters")

from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainerCallback, TrainingArguments  # noqa: E402
from transformers.utils import logging as transformers_logging  # noqa: E402

from headcheck.integrations.transformers import HeadcheckCallback, HeadcheckFailed  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
HEAD = "sst"  # the AdapterTrainer's adapter and head name: it saves both into checkpoint-N/sst/
KINDS = ["trainer", "adapter-trainer"]
SUBFOLDER = {"trainer": "", "adapter-trainer": f"/{HEAD}"}
GOOD_VERDICT = {"trainer": "convertible", "adapter-trainer": "already-flex"}
BROKEN_RULE = {"trainer": "HC102", "adapter-trainer": "HC110"}  # label count vs rows: config.json / head_config.json


def tiny_config() -> BertConfig:
    return BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                      intermediate_size=37, max_position_embeddings=64, num_labels=3)


class Examples(torch.utils.data.Dataset):
    def __init__(self, n: int = 8):
        generator = torch.Generator().manual_seed(0)
        self.input_ids = torch.randint(0, 100, (n, 8), generator=generator)
        self.labels = torch.randint(0, 3, (n,), generator=generator)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict:
        return {"input_ids": self.input_ids[i], "labels": self.labels[i]}


class BreakHeadAt(TrainerCallback):
    """At the end of STEP (before that step's save) the head's config claims 5 labels; the weights keep 3 rows."""

    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.global_step == self.step:
            if hasattr(model, "heads"):  # adapters flex model: head_config.json gets num_labels 5
                model.heads[HEAD].config["num_labels"] = 5
            else:  # transformers model: config.json gets 5 entries in id2label
                model.config.num_labels = 5


def make_trainer(kind: str, out: Path, callbacks: list, steps: int, **arguments) -> Trainer:
    args = TrainingArguments(str(out), max_steps=steps, save_strategy="steps", save_steps=1,
                             per_device_train_batch_size=4, report_to=[], use_cpu=True, disable_tqdm=True,
                             logging_strategy="no", **arguments)
    torch.manual_seed(0)
    if kind == "trainer":
        return Trainer(model=BertForSequenceClassification(tiny_config()), args=args, train_dataset=Examples(),
                       callbacks=callbacks)
    model = adapters.BertAdapterModel(tiny_config())
    model.add_adapter(HEAD)
    model.add_classification_head(HEAD, num_labels=3)
    model.train_adapter(HEAD)
    return adapters.AdapterTrainer(model=model, args=args, train_dataset=Examples(), callbacks=callbacks)


def checkpoints(out: Path) -> list[str]:
    return sorted((p.name for p in out.glob("checkpoint-*")), key=lambda name: int(name.split("-")[1]))


@pytest.fixture
def records():
    """What HeadcheckCallback logs through the Trainer's logger (transformers' loggers do not propagate)."""
    collected: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record):
            collected.append(record)

    root = transformers_logging.get_logger("transformers")
    handler = Collect(level=logging.DEBUG)
    verbosity = transformers_logging.get_verbosity()
    transformers_logging.set_verbosity_info()
    root.addHandler(handler)
    yield collected
    root.removeHandler(handler)
    transformers_logging.set_verbosity(verbosity)


def headcheck_lines(records, level: int | None = None) -> list[str]:
    return [r.getMessage() for r in records if r.getMessage().startswith("headcheck:")
            and r.name == "transformers.trainer" and (level is None or r.levelno == level)]


@pytest.mark.parametrize("kind", KINDS)
def test_good_head_logs_its_verdict_at_every_save(tmp_path, kind, records):
    callback = HeadcheckCallback()
    trainer = make_trainer(kind, tmp_path / "out", [callback], steps=3)
    trainer.train()

    assert checkpoints(tmp_path / "out") == ["checkpoint-1", "checkpoint-2", "checkpoint-3"]
    sub, verdict = SUBFOLDER[kind], GOOD_VERDICT[kind]
    lines = headcheck_lines(records, logging.INFO)
    for step in (1, 2, 3):
        assert any(line.startswith(f"headcheck: checkpoint-{step}{sub}: {verdict} (") and line.endswith(
            "no findings") for line in lines), lines
    assert headcheck_lines(records, logging.WARNING) == headcheck_lines(records, logging.ERROR) == []
    assert [Path(folder).name for folder in callback.reports] == ["checkpoint-1", "checkpoint-2", "checkpoint-3"]
    for reports in callback.reports.values():
        assert [r.verdict.value for r in reports] == [verdict]


@pytest.mark.parametrize("kind", KINDS)
def test_broken_head_stops_training_before_the_next_save(tmp_path, kind, records):
    out = tmp_path / "out"
    trainer = make_trainer(kind, out, [BreakHeadAt(2), HeadcheckCallback(fail_on="error")], steps=4)
    with pytest.raises(HeadcheckFailed) as failed:
        trainer.train()

    sub, rule = SUBFOLDER[kind], BROKEN_RULE[kind]
    message = str(failed.value)
    assert message.startswith(f"headcheck: checkpoint-2{sub}: not-convertible: {rule} "), message
    assert "training stopped at step 2" in message
    assert "rows" in message  # the finding's own message: declared labels vs the output layer's rows
    assert checkpoints(out) == ["checkpoint-1", "checkpoint-2"]  # no checkpoint-3: stopped before the next save
    assert trainer.state.global_step == 2
    assert failed.value.checkpoint == os.path.join(str(out), "checkpoint-2")
    assert [r.verdict.value for r in failed.value.reports] == ["not-convertible"]
    assert failed.value.problems[0].startswith(f"checkpoint-2{sub}: not-convertible: {rule} ")
    # checkpoint-1 (before the break) was judged good; the error names the rule, logged at ERROR
    assert any(line.startswith(f"headcheck: checkpoint-1{sub}: {GOOD_VERDICT[kind]} (")
               for line in headcheck_lines(records, logging.INFO))
    errors = headcheck_lines(records, logging.ERROR)
    assert any(line.startswith(f"headcheck: checkpoint-2{sub}: {rule} error (") for line in errors), errors


def test_fail_on_none_only_logs(tmp_path, records):
    out = tmp_path / "out"
    trainer = make_trainer("trainer", out, [BreakHeadAt(1), HeadcheckCallback(fail_on=None)], steps=3)
    trainer.train()

    assert checkpoints(out) == ["checkpoint-1", "checkpoint-2", "checkpoint-3"]
    errors = headcheck_lines(records, logging.ERROR)
    assert [line.split(":")[1].strip() for line in errors if " HC102 error " in line] == [
        "checkpoint-1", "checkpoint-2", "checkpoint-3"]


def _record_hub(monkeypatch) -> list[tuple]:
    """Replace the Trainer's two Hub calls (test only): create_repo answers, upload_folder records what it is
    given when it is called, in order with the callback's checks."""
    events: list[tuple] = []

    def upload_folder(*, folder_path, path_in_repo=None, ignore_patterns=None, **kwargs):
        root = Path(folder_path)
        files = {}
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            rel = path.relative_to(root).as_posix()
            if any(fnmatch.fnmatch(rel, pattern) for pattern in ignore_patterns or ()):
                continue
            files[rel] = json.loads(path.read_text()) if rel.endswith("config.json") else None
        events.append(("upload", root.name, path_in_repo, files))
        done: Future = Future()
        done.set_result(None)
        return done

    monkeypatch.setattr(transformers.trainer, "create_repo", lambda *a, **k: SimpleNamespace(repo_id="local/tiny"))
    monkeypatch.setattr(transformers.trainer, "upload_folder", upload_folder)
    return events


class RecordingCallback(HeadcheckCallback):
    def __init__(self, events, **options):
        super().__init__(**options)
        self.events = events

    def on_save(self, args, state, control, **kwargs):
        self.events.append(("check", f"checkpoint-{state.global_step}"))
        return super().on_save(args, state, control, **kwargs)


def _labels(files: dict, kind: str, folder: str = "") -> int | None:
    """The label count the broken file claims, in an upload's snapshot (None: the file was not uploaded)."""
    if kind == "trainer":
        config = files.get(f"{folder}config.json")
        return None if config is None else len(config["id2label"])
    config = files.get(f"{folder}{HEAD}/head_config.json")
    return None if config is None else config["config"]["num_labels"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("strategy", ["every_save", "checkpoint", "all_checkpoints"])
def test_push_starts_before_on_save(tmp_path, monkeypatch, records, kind, strategy):
    """on_save runs after Trainer._save_checkpoint, which hands the checkpoint to upload_folder first: the broken
    checkpoint-2 was already given to the upload when the check refused it; checkpoint-3 never exists."""
    events = _record_hub(monkeypatch)
    out = tmp_path / "out"
    trainer = make_trainer(kind, out, [BreakHeadAt(2), RecordingCallback(events)], steps=4, push_to_hub=True,
                           hub_model_id="local/tiny", hub_strategy=strategy)
    with pytest.raises(HeadcheckFailed) as failed:
        trainer.train()

    order = [event[:3] for event in events]
    in_repo = {"checkpoint": "last-checkpoint", "all_checkpoints": "checkpoint-{}"}
    per_save = [("upload", "out", None)] + ([("upload", "checkpoint-{}", in_repo[strategy])]
                                            if strategy in in_repo else [])
    expected = [tuple(part.format(step) if part else part for part in e)
                for step in (1, 2) for e in [*per_save, ("check", "checkpoint-{}")]]
    assert order == expected
    assert checkpoints(out) == ["checkpoint-1", "checkpoint-2"]
    assert "Hub upload for step 2 (push_to_hub, hub_strategy=" in str(failed.value)
    assert any("hub_strategy='end'" in line for line in headcheck_lines(records, logging.WARNING))

    # what the upload started before the check was given: the step-2 uploads hold the broken head or not
    uploads_2 = [e[3] for e in events[len(per_save) + 1:] if e[0] == "upload"]
    root_upload = uploads_2[0]
    if kind == "trainer":  # the output_dir upload carries config.json + model.safetensors copied from checkpoint-2
        assert _labels(root_upload, kind) == 5 and "model.safetensors" in root_upload
    else:  # AdapterTrainer writes no top-level model files: the output_dir upload has no adapter or head
        assert _labels(root_upload, kind) is None and not any(HEAD in f for f in root_upload)
    if strategy != "every_save":  # the whole checkpoint folder, broken head included
        assert _labels(uploads_2[1], kind) == 5


@pytest.mark.parametrize("kind", KINDS)
def test_hub_strategy_end_pushes_nothing_during_training(tmp_path, monkeypatch, records, kind):
    events = _record_hub(monkeypatch)
    trainer = make_trainer(kind, tmp_path / "out", [BreakHeadAt(2), RecordingCallback(events)], steps=4,
                           push_to_hub=True, hub_model_id="local/tiny", hub_strategy="end")
    with pytest.raises(HeadcheckFailed) as failed:
        trainer.train()  # a script's trainer.push_to_hub() after this line is never reached
    assert events == [("check", "checkpoint-1"), ("check", "checkpoint-2")]
    assert "upload" not in str(failed.value)
    assert headcheck_lines(records, logging.WARNING) == []


def test_save_model_and_push_to_hub_upload_without_a_callback_between(tmp_path, monkeypatch, records):
    """With push_to_hub=True, trainer.save_model() and trainer.push_to_hub() each save and upload in one call:
    no on_save runs in between, so what they upload is not a checked checkpoint."""
    events = _record_hub(monkeypatch)
    trainer = make_trainer("trainer", tmp_path / "out", [RecordingCallback(events)], steps=2, push_to_hub=True,
                           hub_model_id="local/tiny", hub_strategy="end")
    trainer.train()
    assert [e[:3] for e in events] == [("check", "checkpoint-1"), ("check", "checkpoint-2")]
    trainer.save_model()
    assert [e[:3] for e in events[2:]] == [("upload", "out", None)]
    trainer.push_to_hub()
    assert [e[:3] for e in events[3:]] == [("upload", "out", None)]


@pytest.mark.parametrize("kind", KINDS)
def test_check_a_final_save(tmp_path, records, kind):
    """The README's recipe for the final upload: save_model without push_to_hub, check() the folder, upload it.
    check(output_dir) judges what save_model wrote, not the checkpoint-N folders (checked when saved) again."""
    out = tmp_path / "out"
    callback = HeadcheckCallback()
    trainer = make_trainer(kind, out, [callback], steps=2)
    trainer.train()
    trainer.save_model()
    reports = callback.check(trainer.args.output_dir)

    expected = {"trainer": [str(out)], "adapter-trainer": [str(out / HEAD)]}[kind]
    assert [r.source for r in reports] == expected
    assert [r.verdict.value for r in reports] == [GOOD_VERDICT[kind]]
    assert len(callback.reports) == 3  # checkpoint-1, checkpoint-2, out


def _saved_model(folder: Path) -> Path:
    torch.manual_seed(0)
    BertForSequenceClassification(tiny_config()).save_pretrained(folder)
    return folder


def test_check_thresholds_and_unjudgeable_folders(tmp_path, records):
    """check() on folders written without a Trainer: fail_on is the lowest failing severity; a folder that
    cannot be read or holds nothing to judge fails unless fail_on is None."""
    never_trained = _saved_model(tmp_path / "final")  # no forward pass with labels: HC117 (info)
    assert [r.verdict.value for r in HeadcheckCallback(fail_on="warning").check(never_trained)] == ["convertible"]
    with pytest.raises(HeadcheckFailed, match=r"^headcheck: final: convertible: HC117 "):
        HeadcheckCallback(fail_on="info").check(never_trained)

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(HeadcheckFailed, match="empty: nothing headcheck can judge"):
        HeadcheckCallback().check(empty)
    assert HeadcheckCallback(fail_on=None).check(empty) == ()

    truncated = _saved_model(tmp_path / "truncated")
    weights = truncated / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(HeadcheckFailed, match=r"truncated: cannot be read: model\.safetensors"):
        HeadcheckCallback().check(truncated)

    adapter_fusion_only = tmp_path / "fusion-run" / "checkpoint-1"  # sub-folders nothing can judge are skipped
    (adapter_fusion_only / "a,b").mkdir(parents=True)
    (adapter_fusion_only / "a,b" / "adapter_fusion_config.json").write_text('{"key": true, "query": true}')
    _saved_model(adapter_fusion_only)
    assert [r.verdict.value for r in HeadcheckCallback().check(adapter_fusion_only)] == ["convertible"]

    with pytest.raises(ValueError, match="fail_on"):
        HeadcheckCallback(fail_on="errors")


def test_importing_headcheck_does_not_import_transformers():
    code = (
        "import sys\n"
        "import headcheck, headcheck.integrations\n"
        "assert 'transformers' not in sys.modules and 'torch' not in sys.modules, sorted(sys.modules)\n"
        "from headcheck.integrations.transformers import HeadcheckCallback\n"
        "import transformers\n"
        "assert issubclass(HeadcheckCallback, transformers.TrainerCallback)\n"
        "for name in [m for m in sys.modules if m.split('.')[0] in ('transformers', 'headcheck')]:\n"
        "    del sys.modules[name]\n"
        "sys.modules['transformers'] = None  # as if transformers were not installed\n"
        "try:\n"
        "    import headcheck.integrations.transformers\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ("headcheck.integrations.transformers needs transformers (pip install "
                                   "transformers); `import headcheck` alone does not")


@pytest.mark.parametrize("module, planted", [
    ("judge/engine.py", "from ..integrations import transformers as _upward"),
    ("model.py", "from .integrations import transformers as _upward"),
    ("cli/main.py", "from ..integrations import transformers as _sideways"),
    ("integrations/transformers.py", "import click as _terminal"),
])
def test_integrations_is_a_top_layer(tmp_path, module, planted):
    """integrations sits beside cli: it may import the layers below, none of them (nor cli) imports it, and it
    does not print through click. A copy of the package with one planted import breaks a contract."""
    import shutil

    from test_layers import PACKAGE, lint_imports

    shutil.copytree(PACKAGE, tmp_path / "headcheck", ignore=shutil.ignore_patterns("__pycache__"))
    target = tmp_path / "headcheck" / module
    target.write_text(target.read_text() + f"\n{planted}\n")
    result = lint_imports(tmp_path)
    assert result.returncode != 0 and "BROKEN" in result.stdout, result.stdout
