"""Seeded mutations of good checkpoints (issue 11): truncations at many offsets, byte flips and length-field
edits of every weight format and config. Each mutant is scanned in a capped child process: no traceback, no
hang, an exit code the contract allows, and a report only when the file still reads."""

from __future__ import annotations

import json
import random
import shutil
import struct

import pytest

from hostile import capped_headcheck, scanned_in_batches
from helpers import CHECKPOINTS

SEED = 20261202
FILES = [("bert-seq-cls", "model.safetensors"), ("bert-seq-cls-bin", "pytorch_model.bin"),
         ("bert-seq-cls", "config.json"), ("sharded", "model.safetensors.index.json"),
         ("adapter-static-head", "head_config.json"), ("adapter-flex-head", "model_head.safetensors")]
PER_FILE = 60  # mutants of each kind per file


def mutants(raw: bytes, rng: random.Random) -> dict[str, bytes]:
    out = {}
    for i in range(PER_FILE):
        cut = rng.randrange(len(raw))
        out[f"truncate-{cut}"] = raw[:cut]
        at = rng.randrange(len(raw))
        flipped = bytearray(raw)
        flipped[at] ^= 1 << rng.randrange(8)
        out[f"flip-{at}-{i}"] = bytes(flipped)
    for value in (0, 1, 7, len(raw), len(raw) - 8, 2 ** 31, 2 ** 63, 2 ** 64 - 1):  # the safetensors length field
        out[f"length-{value}"] = struct.pack("<Q", value) + raw[8:]
    return out


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("mutants")
    rng = random.Random(SEED)
    cases = []
    for fixture, name in FILES:
        raw = (CHECKPOINTS / fixture / name).read_bytes()
        for label, data in mutants(raw, rng).items():
            folder = root / f"{fixture}--{name}--{label}"
            shutil.copytree(CHECKPOINTS / fixture, folder)
            (folder / name).write_bytes(data)
            cases.append(folder)
    return cases


def test_mutants_never_crash_or_hang(corpus):
    assert len(corpus) >= 700
    for batch, done in scanned_in_batches(corpus, "json", size=150, codes=(0, 1, 2, 3)):
        records = [json.loads(line) for line in done.stdout.splitlines()]
        assert len(records) == len(batch)
        for record in records:
            if "error" in record:
                assert record["exit_code"] in (2, 3) and "\n" not in record["error"]
            else:
                assert record["verdict"] in ("convertible", "already-flex", "no-head", "ambiguous", "not-convertible")


def test_mutants_in_the_text_report_never_crash(corpus):
    assert list(scanned_in_batches(corpus, "text", size=150, codes=(0, 1, 2, 3)))


def test_a_seeded_sample_migrates_whole_or_not_at_all(corpus, tmp_path):
    """A mutant migrate accepts (a flipped bit inside tensor data is still a valid file) gives a complete, checked
    output; every other one leaves no --out behind."""
    for i, folder in enumerate(random.Random(SEED).sample(corpus, 30)):
        out = tmp_path / f"out-{i}"
        done = capped_headcheck("migrate", folder, "--out", out, timeout=120)
        assert "Traceback" not in done.stderr, (folder.name, done.stderr[-3000:])
        assert done.returncode in (0, 1, 2, 3), (folder.name, done.returncode, done.stderr[-2000:])
        if done.returncode == 0:
            assert "rescan: already-flex" in done.stdout, (folder.name, done.stdout)
        else:
            assert not out.exists(), folder.name
        assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == [], folder.name
