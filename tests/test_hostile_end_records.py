"""Zips whose end records were edited in place (issue 21, class 6): migrate refuses whatever scan refuses, through
the same reading (migration.prepare builds the facts scan builds), writes nothing then, and a ZIP64 file whose two
end records disagree, which torch reads by the ZIP64 one, is not clean (HC134)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from headcheck.errors import InputError
from headcheck.migration.run import prepare
from helpers import CHECKPOINTS
from hostile import capped_headcheck, end_records, scanned_in_batches
from test_hostile_pickles import ROLES
from test_hostile_zips import decoy


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, tuple[Path, str]]:
    root = tmp_path_factory.mktemp("end-records")
    cases = {}
    for role, (fixture, file) in ROLES.items():
        for name, data in end_records.cases(decoy(fixture, file)).items():
            folder = root / f"{name}--{role}"
            shutil.copytree(CHECKPOINTS / fixture, folder)
            (folder / file).write_bytes(data)
            cases[folder.name] = (folder, file)
    return cases


@pytest.fixture(scope="module")
def scanned(corpus) -> dict[str, dict]:
    records = {}
    for _, done in scanned_in_batches([corpus[n][0] for n in sorted(corpus)], "json", codes=(0, 1, 2)):
        records.update((Path(r["source"]).name, r) for r in map(json.loads, done.stdout.splitlines()))
    assert set(records) == set(corpus)
    return records


def test_scan_refuses_or_warns(corpus, scanned):
    for name, record in scanned.items():
        folder, file = corpus[name]
        if "error" in record:
            assert record["exit_code"] == 2 and record["error"].startswith(f"{folder / file}: "), (name, record)
        else:  # only the plain record of a ZIP64 file was edited: torch and Python's zipfile read the ZIP64 one
            assert name.startswith("zip64--end--"), (name, record)
            saturated = name.split("--")[3] == "ones"  # all ones: "see the ZIP64 record", as the format has it
            assert ("HC134" in {f["rule"] for f in record["findings"]}) != saturated, (name, record["findings"])


def test_migrate_prepares_from_the_facts_scan_refuses(corpus, scanned):
    # in process, every case of every role: prepare (migrate's only reading before it writes) refuses alike
    for name, record in scanned.items():
        if "error" in record:
            with pytest.raises(InputError) as excinfo:
                prepare(corpus[name][0])
            assert str(excinfo.value) == record["error"], name


def test_migrate_refuses_through_the_console_script(corpus, scanned, tmp_path):
    for name in sorted(n for n in corpus if n.endswith("--model-bin")):
        out = tmp_path / name
        done = capped_headcheck("migrate", corpus[name][0], "--out", out, timeout=120)
        assert "Traceback" not in done.stderr, (name, done.stderr[-3000:])
        if "error" in scanned[name]:
            assert done.returncode == 2 and not out.exists(), (name, done.returncode, done.stdout)
            assert scanned[name]["error"] in done.stderr, (name, done.stderr)
        else:
            assert done.returncode == 0 and out.exists(), (name, done.stderr)
