"""torch files a strict reader refuses (issue 21, class 5), through the console script: what torch.load refuses
is unreadable input (exit 2, one line naming the file, nothing written by migrate); what it reads anyway is a
checkpoint with an HC134 warning (exit 1 under --fail-on warning), never clean without a word."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest

from headcheck.errors import InputError
from headcheck.read.pickle_index import read_pickle_index
from helpers import CHECKPOINTS
from fixtures import make_fixtures
from hostile import capped_headcheck, scanned_in_batches, strict

FIXTURE, FILE = "bert-seq-cls-bin", "pytorch_model.bin"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("strict")
    tensors = {n: (i.dtype, i.shape) for n, i in read_pickle_index(CHECKPOINTS / FIXTURE / FILE, FILE).items()}
    folders = {}
    for name, data in strict.cases(tensors).items():
        folder = root / name
        shutil.copytree(CHECKPOINTS / FIXTURE, folder)
        (folder / FILE).write_bytes(data)
        folders[name] = folder
    return folders


def _torch_reads(data: bytes) -> bool:
    import torch

    try:
        torch.load(io.BytesIO(data), weights_only=True)
    except Exception:
        return False
    return True


def test_each_case_is_labelled_as_torch_reads_it():
    pytest.importorskip("torch")
    for name, data in strict.cases().items():
        assert _torch_reads(data) == (strict.CASES[name][0] == "reads"), name


def test_scan_json_refuses_what_torch_refuses_and_warns_on_the_rest(corpus):
    names = sorted(corpus)
    for batch, done in scanned_in_batches([corpus[n] for n in names], "json", codes=(0, 1, 2)):
        records = {Path(r["source"]).name: r for r in map(json.loads, done.stdout.splitlines())}
        assert set(records) == {folder.name for folder in batch}
        for name, record in records.items():
            if strict.CASES[name][0] == "refuses":
                assert record.get("exit_code") == 2, (name, record)
                assert record["error"].startswith(f"{corpus[name] / FILE}: ") and "\n" not in record["error"], record
                continue
            warnings = [f for f in record["findings"] if f["rule"] == "HC134"]
            assert record["verdict"] == "convertible", (name, record)
            assert bool(warnings) == (name != "legacy-clean"), (name, record)  # the control reads cleanly
            assert all(f["severity"] == "warning" and f["file"] == FILE for f in warnings), (name, record)


def test_scan_text_never_clean_under_fail_on_warning(corpus):
    folders = [corpus[n] for n in sorted(corpus) if n != "legacy-clean"]
    done = capped_headcheck("scan", *folders, "--fail-on", "warning", "--jobs", "2")
    assert "Traceback" not in done.stdout + done.stderr
    assert done.returncode in (1, 2)
    for name in sorted(corpus):
        if name != "legacy-clean" and strict.CASES[name][0] == "reads":
            assert f"HC134" in done.stdout, name


def test_migrate_writes_nothing_from_a_file_torch_refuses(corpus, tmp_path):
    # the acceptance's "writes nothing" holds for every unreadable case; a file torch reads is migrated
    for name, folder in sorted(corpus.items()):
        out = tmp_path / name
        done = capped_headcheck("migrate", folder, "--out", out, timeout=120)
        assert "Traceback" not in done.stderr, (name, done.stderr[-3000:])
        if strict.CASES[name][0] == "refuses":
            assert done.returncode == 2 and not out.exists(), (name, done.returncode, done.stderr)
            assert f"{folder / FILE}: " in done.stderr, (name, done.stderr)
        elif name.startswith("legacy-"):  # migrate reads no legacy storage (torch.save has not written them since 1.6)
            assert done.returncode == 2 and "re-save it to migrate" in done.stderr and not out.exists(), name
        else:  # torch reads it: the rewritten safetensors carry none of the irregular records
            assert done.returncode == 0 and "rescan: already-flex" in done.stdout, (name, done.stdout, done.stderr)


@pytest.mark.parametrize("name", [n for n, (torch_does, _) in strict.CASES.items() if torch_does == "refuses"])
def test_each_refusal_is_one_line_naming_the_file(name):
    with pytest.raises(InputError) as excinfo:
        read_pickle_index(io.BytesIO(strict.cases()[name]), FILE)
    message = str(excinfo.value)
    assert message.startswith(f"{FILE}: ") and "\n" not in message and len(message) < 400, message


@pytest.mark.parametrize("name", [n for n, (torch_does, _) in strict.CASES.items() if torch_does == "reads"])
def test_each_file_torch_reads_indexes_with_notes(name):
    index = read_pickle_index(io.BytesIO(strict.cases()[name]), FILE)
    assert {k: (v.dtype, v.shape) for k, v in index.items()} == strict.TENSORS
    assert bool(index.notes) == (name != "legacy-clean"), (name, index.notes)


def test_a_shard_torch_reads_anyway_is_named_in_its_warning(tmp_path):
    """Shards are read one by one and merged: each shard's notes reach the report, naming the shard."""
    tensors = {n: (i.dtype, i.shape) for n, i in read_pickle_index(CHECKPOINTS / FIXTURE / FILE, FILE).items()}
    names = sorted(tensors)
    first, second = {n: tensors[n] for n in names[:1]}, {n: tensors[n] for n in names[1:]}
    folder = tmp_path / "sharded"
    folder.mkdir()
    shutil.copy(CHECKPOINTS / FIXTURE / "config.json", folder)
    shards = {"pytorch_model-00001-of-00002.bin": first, "pytorch_model-00002-of-00002.bin": second}
    (folder / "pytorch_model-00001-of-00002.bin").write_bytes(make_fixtures.torch_zip_bytes(first))
    (folder / "pytorch_model-00002-of-00002.bin").write_bytes(strict.cases(second)["proto-twice-at-start"])
    index = {"metadata": {"total_size": 0}, "weight_map": {n: s for s, part in shards.items() for n in part}}
    (folder / "pytorch_model.bin.index.json").write_text(json.dumps(index))
    done = capped_headcheck("scan", folder, "--format", "json")
    warnings = [f for f in json.loads(done.stdout)["findings"] if f["rule"] == "HC134"]
    assert len(warnings) == 1 and "pytorch_model-00002-of-00002.bin" in warnings[0]["message"], warnings
