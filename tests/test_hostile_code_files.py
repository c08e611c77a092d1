"""Files beside the weights that load code (issue 21, class 7), through the console script: numpy object arrays
(HC135) and pipelines, tokenizers or processors from shipped code (HC136) are named, as warnings, in the text and
JSON reports; nothing is ever loaded (the canary never appears); the controls raise neither."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from helpers import CHECKPOINTS
from hostile import capped_headcheck, code_files

FIXTURE = "bert-seq-cls"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, dict[str, tuple[str | None, Path]]]:
    root = tmp_path_factory.mktemp("code-files")
    canary = root / "CANARY"
    folders = {}
    for name, (rule, files) in code_files.cases(canary, CHECKPOINTS / FIXTURE).items():
        folder = root / name
        shutil.copytree(CHECKPOINTS / FIXTURE, folder)
        for file, data in files.items():
            (folder / file).write_bytes(data)
        folders[name] = (rule, folder)
    return canary, folders


def test_numpy_agrees_on_what_needs_allow_pickle(tmp_path):
    np = pytest.importorskip("numpy")
    for name, (rule, files) in code_files.cases(tmp_path / "CANARY", CHECKPOINTS / FIXTURE).items():
        for file, data in files.items():
            # numpy calls any file without the magic "pickled data" unread; an LFS pointer is text, not a pickle
            if not file.endswith((".npy", ".npz")) or name == "npy-lfs-pointer":
                continue
            (tmp_path / file).write_bytes(data)
            try:
                loaded = np.load(tmp_path / file, allow_pickle=False)
                if hasattr(loaded, "files"):
                    [loaded[key] for key in loaded.files]
            except Exception as exc:  # numpy's refusal of pickles (ValueError), of headers it cannot parse (any error)
                needs_pickle = "allow_pickle" in str(exc)
            else:
                needs_pickle = False
            assert needs_pickle == (rule == "HC135"), (name, file)
    assert not (tmp_path / "CANARY").exists()


def test_scan_json_names_each_file(corpus):
    canary, folders = corpus
    names = sorted(folders)
    done = capped_headcheck("scan", *(folders[n][1] for n in names), "--format", "json", "--fail-on", "warning",
                            "--jobs", "2")
    assert "Traceback" not in done.stderr and done.returncode == 1, done.stderr[-2000:]
    records = {Path(r["source"]).name: r for r in map(json.loads, done.stdout.splitlines())}
    assert set(records) == set(names)
    for name, record in records.items():
        rule, _ = folders[name]
        files = set(code_files.cases(canary, CHECKPOINTS / FIXTURE)[name][1])
        found = [f for f in record["findings"] if f["rule"] in ("HC135", "HC136")]
        if rule is None:
            assert not found and record["verdict"] == "convertible", (name, record["findings"])
            continue
        assert [f["rule"] for f in found] == [rule], (name, record["findings"])
        assert found[0]["severity"] == "warning" and found[0]["file"] in files, (name, found)
        assert record["verdict"] == "convertible", (name, record)  # a warning: the weights convert as they are
    assert not canary.exists()


def test_scan_text_names_them_and_fails_on_warning(corpus):
    canary, folders = corpus
    for name, (rule, folder) in sorted(folders.items()):
        if rule is None:
            continue
        done = capped_headcheck("scan", folder, "--fail-on", "warning")
        assert done.returncode == 1 and rule in done.stdout and "Traceback" not in done.stderr, (name, done.stdout)
        assert capped_headcheck("scan", folder).returncode == 0, name  # a warning, under the default --fail-on
    assert not canary.exists()


def test_migrate_loads_none_of_them(corpus, tmp_path):
    canary, folders = corpus
    for name in ("npy-object", "npz-object-member", "tokenizer-config-auto-map", "config-custom-pipelines"):
        out = tmp_path / name
        done = capped_headcheck("migrate", folders[name][1], "--out", out, timeout=120)
        assert done.returncode == 0 and "Traceback" not in done.stderr, (name, done.stderr)
        assert "rescan: already-flex" in done.stdout, (name, done.stdout)
    assert not canary.exists()
