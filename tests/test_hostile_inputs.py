"""Malformed input, round 2 (issue 21, classes 1-4), through the console script: every case of
tests/hostile/inputs.py is scanned (text and JSON) and migrated. Unreadable input ends with exit 2, one line
naming the file, no traceback and nothing written; a lone surrogate in a label scans and migrates as its
clean fixture does. HF cache layout symlinks, which point out of the folder at real files, stay accepted."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from helpers import CHECKPOINTS, REPO, validated
from hostile import inputs

CASES = inputs.cases()
DAC_CAPS = ("dac_override", "dac_read_search")  # what lets root read a mode-000 file or list a mode-000 folder


@functools.lru_cache(maxsize=1)
def _unprivileged_prefix() -> tuple[tuple[str, ...] | None, str]:
    """A command prefix under which file modes bind (root's DAC capabilities dropped), or None and why not."""
    if os.geteuid() != 0:
        return (), ""
    candidates = []
    if setpriv := shutil.which("setpriv"):
        candidates.append((setpriv, "--bounding-set=" + ",".join(f"-{cap}" for cap in DAC_CAPS)))
    if capsh := shutil.which("capsh"):
        drop = ",".join(f"cap_{cap}" for cap in DAC_CAPS)
        candidates.append((capsh, f"--drop={drop}", "--", "-c", 'exec "$0" "$@"'))
    with tempfile.TemporaryDirectory() as probe:
        secret = Path(probe, "unreadable")  # root owns it: mode 000 binds root once the capabilities are gone
        secret.write_text("x")
        secret.chmod(0)
        for prefix in candidates:
            done = subprocess.run([*prefix, sys.executable, "-c", f"open({str(secret)!r})"], capture_output=True)
            if done.returncode != 0 and b"PermissionError" in done.stderr:
                return prefix, ""
    return None, "running as root and neither setpriv nor capsh could drop CAP_DAC_OVERRIDE here"


def _headcheck(*args, prefix: tuple[str, ...] = (), env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, **(env or {}),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    env.pop("NO_COLOR", None)
    # a FIFO read would block forever: the timeout turns that into a failure, not a hung suite
    done = subprocess.run([*prefix, sys.executable, "-m", "headcheck", *map(str, args)], cwd=REPO, env=env,
                          capture_output=True, timeout=60)
    try:  # output is UTF-8 text, whatever the input held (a lone surrogate must not leak out as a raw byte)
        return subprocess.CompletedProcess(done.args, done.returncode, done.stdout.decode(), done.stderr.decode())
    except UnicodeDecodeError as exc:
        raise AssertionError(f"{args}: output is not UTF-8 ({exc}): {done.stdout[-500:]!r} {done.stderr[-500:]!r}")


def _tree(folder: Path) -> dict[str, str]:
    """Every entry under FOLDER (not following symlinks) and what it is: to show nothing was written."""
    found = {}
    for path in sorted(folder.rglob("*")):
        kind = "link" if path.is_symlink() else "dir" if path.is_dir() else "file" if path.is_file() else "other"
        found[str(path.relative_to(folder))] = (
            hashlib.sha256(path.read_bytes()).hexdigest() if kind == "file" else kind)
    return found


def _run_case(case: inputs.Case, tmp_path: Path):
    prefix = ()
    if case.unprivileged:
        prefix, why_not = _unprivileged_prefix()
        if prefix is None:
            pytest.skip(why_not)
    work = tmp_path / "in"
    work.mkdir()
    target = case.build(work)
    out = tmp_path / "out"
    try:
        before = _tree(tmp_path)
        text = _headcheck("scan", target, prefix=prefix)
        as_json = _headcheck("scan", target, "--format", "json", prefix=prefix)
        migrated = _headcheck("migrate", target, "--out", out, prefix=prefix)
        left = _tree(tmp_path) if not out.exists() else None
    finally:  # modes back, so that pytest can clean up (entries of a folder first reachable once it is)
        for path in (work, *work.rglob("*")):
            if not path.is_symlink() and (path.is_dir() or path.is_file()):
                path.chmod(0o755 if path.is_dir() else 0o644)
    return before, left, text, as_json, migrated, out


def _check(case: inputs.Case, tmp_path: Path) -> None:
    """Scan (text, JSON) and migrate CASE: an allowed exit code, no traceback, one line naming the file for
    unreadable input, a JSON document on stdout, and nothing written unless migrate succeeded."""
    before, left, text, as_json, migrated, out = _run_case(case, tmp_path)
    for name, done in (("scan", text), ("scan --format json", as_json), ("migrate", migrated)):
        shown = f"{name}: exit {done.returncode}\n{done.stdout[-1500:]}\n{done.stderr[-2500:]}"
        assert "Traceback" not in done.stdout + done.stderr, shown
        assert done.returncode in case.codes, shown
        if done.returncode == inputs.UNREADABLE:
            assert len(done.stderr.strip().splitlines()) == 1 and case.named in done.stderr, shown
    if as_json.returncode == inputs.UNREADABLE:
        record = json.loads(as_json.stdout)
        assert record["exit_code"] == inputs.UNREADABLE and case.named in record["error"]
    else:
        validated(json.loads(as_json.stdout))
    if migrated.returncode != 0:
        assert not out.exists() and left == before, "migrate wrote something although it refused"
    else:
        assert _headcheck("scan", out).returncode == text.returncode


def _ids(case: inputs.Case) -> str:
    return case.id


@pytest.mark.parametrize("case", inputs.tracebacks(), ids=_ids)
def test_class1_tracebacks(case, tmp_path):
    """Lone surrogates in labels, mode-000 files, folders the user cannot list or enter."""
    _check(case, tmp_path)


@pytest.mark.parametrize("case", inputs.not_regular(), ids=_ids)
def test_class2_not_a_regular_file(case, tmp_path):
    """A folder, FIFO, character device, dangling symlink or symlink loop under a name loaders read."""
    _check(case, tmp_path)


@pytest.mark.parametrize("case", inputs.wrong_shape(), ids=_ids)
def test_class3_json_of_the_wrong_shape(case, tmp_path):
    """Top-level arrays, strings, numbers and null; wrong-typed, infinite or negative fields."""
    _check(case, tmp_path)


@pytest.mark.parametrize("case", inputs.shard_indexes(), ids=_ids)
def test_class4_shard_indexes(case, tmp_path):
    """Indexes transformers cannot use, or that disagree with their shards."""
    _check(case, tmp_path)


def test_every_class_has_cases():
    assert {case.klass for case in CASES} == {1, 2, 3, 4}
    assert len({case.id for case in CASES}) == len(CASES)


def test_the_lone_surrogate_survives_migrate(tmp_path):
    """transformers reads a lone surrogate in a label and writes it back escaped; so does migrate."""
    folder = inputs._surrogate_label(tmp_path)
    done = _headcheck("migrate", folder, "--out", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    assert "\udc80" in json.loads((tmp_path / "out" / "config.json").read_text())["id2label"].values()


@pytest.mark.parametrize("fmt", ["text", "json", "sarif", "github"])
def test_a_lone_surrogate_never_crashes_a_strict_terminal(fmt, tmp_path):
    """Where stdout encodes strictly (a UTF-8 locale other than C), the name is printed escaped, not a crash."""
    folder = inputs._surrogate_head_label(tmp_path)
    head = json.loads((folder / "head_config.json").read_text())
    (folder / "head_config.json").write_text(json.dumps({**head, "name": "\udc80"}))  # shown in findings
    done = _headcheck("scan", folder, "--format", fmt, "--summary", tmp_path / "summary.md",
                      env={"PYTHONIOENCODING": "utf-8:strict"})
    assert done.returncode in (0, 1) and "Traceback" not in done.stderr, done.stderr
    (tmp_path / "summary.md").read_text(encoding="utf-8")
    if fmt in ("text", "json"):  # both show the head's name (SARIF and annotations only the findings)
        assert "\\udc80" in done.stdout


def _hf_cache_snapshot(tmp_path: Path, fixture: str) -> Path:
    """FIXTURE laid out as huggingface_hub's cache stores it: snapshots/<rev>/<file> -> ../../blobs/<sha256>."""
    repo = tmp_path / "models--org--name"
    snapshot = repo / "snapshots" / ("0" * 40)
    (repo / "blobs").mkdir(parents=True)
    snapshot.mkdir(parents=True)
    for file in sorted((CHECKPOINTS / fixture).iterdir()):
        digest = hashlib.sha256(file.read_bytes()).hexdigest()
        shutil.copyfile(file, repo / "blobs" / digest)
        (snapshot / file.name).symlink_to(Path("..", "..", "blobs", digest))
    return snapshot


@pytest.mark.parametrize("fixture", ["bert-seq-cls", "sharded", "adapter-static-head", "bert-seq-cls-bin"])
def test_hf_cache_symlinks_stay_accepted(fixture, tmp_path):
    snapshot = _hf_cache_snapshot(tmp_path, fixture)
    clean = _headcheck("scan", CHECKPOINTS / fixture, "--format", "json")
    cached = _headcheck("scan", snapshot, "--format", "json")
    assert cached.returncode == clean.returncode, cached.stderr
    assert json.loads(cached.stdout)["verdict"] == json.loads(clean.stdout)["verdict"]
    migrated = _headcheck("migrate", snapshot, "--out", tmp_path / "out")
    assert migrated.returncode == 0, migrated.stderr


def test_symlinks_to_real_files_outside_the_folder_stay_accepted(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(CHECKPOINTS / "bert-seq-cls", elsewhere)
    folder = tmp_path / "ckpt"
    folder.mkdir()
    for file in elsewhere.iterdir():
        (folder / file.name).symlink_to(file.resolve())  # absolute, out of the folder
    done = _headcheck("scan", folder)
    assert done.returncode == 0, done.stderr
