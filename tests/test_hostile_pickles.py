"""Every hostile pickle, in every wrapper and every weight-file role a loader may pick up: headcheck never
runs it (the canary never appears), never crashes, and never calls the checkpoint clean."""

from __future__ import annotations

import json
import random
import shutil

import pytest

from fixtures import make_fixtures
from helpers import CHECKPOINTS
from hostile import capped_headcheck, scanned_in_batches
from hostile.pickles import payloads, wrappers

# (folder to start from, file the payload goes into): each file a loader reads as a pickle
ROLES = {
    "model-bin": ("bert-seq-cls-bin", "pytorch_model.bin"),
    "bin-beside-safetensors": ("bert-seq-cls", "pytorch_model.bin"),  # from_pretrained(use_safetensors=False)
    "adapter-bin": ("adapter-static-head", "pytorch_adapter.bin"),
    "head-bin": ("adapter-static-head", "pytorch_model_head.bin"),
}
@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    canary = root / "CANARY"
    make_zip = lambda payload: make_fixtures.torch_zip_bytes({}, data_pkl=payload)  # noqa: E731
    cases = {}
    for payload_name, payload in payloads(canary).items():
        for wrapper_name, wrap in wrappers(make_zip, make_fixtures._zip_bytes).items():
            for role, (fixture, file) in ROLES.items():
                folder = root / f"{payload_name}--{wrapper_name}--{role}"
                shutil.copytree(CHECKPOINTS / fixture, folder)
                (folder / file).write_bytes(wrap(payload))
                cases[folder.name] = folder
    return canary, cases


def test_the_corpus_is_large_and_covers_every_class(corpus):
    _, cases = corpus
    assert len(cases) >= 1000, len(cases)
    assert {name.split("--")[2] for name in cases} == set(ROLES)


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_no_payload_runs_and_none_is_clean(corpus, fmt):
    canary, cases = corpus
    for _, done in scanned_in_batches([cases[n] for n in sorted(cases)], fmt):
        if fmt == "json":
            for line in done.stdout.splitlines():
                record = json.loads(line)
                if "error" in record:
                    assert record["exit_code"] == 2
                    continue
                rules = {f["rule"] for f in record["findings"]}
                assert record["verdict"] not in ("convertible", "already-flex") and "HC001" in rules, record
        assert not canary.exists(), "a payload ran"
    assert not canary.exists()


def test_a_seeded_sample_is_never_migrated(corpus, tmp_path):
    canary, cases = corpus
    for i, name in enumerate(random.Random(20261202).sample(sorted(cases), 20)):
        out = tmp_path / f"out-{i}"
        done = capped_headcheck("migrate", cases[name], "--out", out, timeout=120)
        assert done.returncode in (1, 2), (name, done.returncode, done.stderr[-2000:])
        assert "Traceback" not in done.stderr, (name, done.stderr[-3000:])
        assert not out.exists() and not canary.exists(), name
