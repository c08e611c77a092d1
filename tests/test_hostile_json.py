"""Hostile JSON and text in checkpoint files (issue 11, JSON class): any bytes give a document or
headcheck's own InputError — never a traceback, a hang, or a value the checkpoint's own loader reads differently."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from headcheck.errors import InputError, NothingScannedError
from headcheck.read.json_text import parse_json
from fuzz import TARGETS as FUZZ_TARGETS
from helpers import CHECKPOINTS, REPO

GOOD = (CHECKPOINTS / "bert-seq-cls" / "config.json").read_bytes()

HOSTILE = {
    "deep-nesting": (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    "deep-objects": (b'{"a":' * 50_000 + b"1" + b"}" * 50_000, "nested too deeply"),
    "huge-integer": (b'{"num_labels": ' + b"9" * 100_000 + b"}", "unreadable JSON value"),
    "nan": (b'{"num_labels": NaN}', "NaN is not a JSON value"),
    "infinity": (b'{"x": -Infinity}', "-Infinity is not a JSON value"),
    "duplicate-key": (b'{"num_labels": 2, "num_labels": 3}', "appears twice"),
    "bom": (b"\xef\xbb\xbf" + GOOD, "byte-order mark"),
    "utf-16": ("\ufeff{}".encode("utf-16-le"), "UTF-16"),
    "invalid-utf8": (b'{"a": "\xff\xfe\xfd"}', "not UTF-8"),
    "lone-surrogate-key": (b'{"\\ud800": 1, "\\ud800": 2}', "appears twice"),
    "truncated": (GOOD[: len(GOOD) // 2], "invalid JSON"),
    "empty": (b"", "invalid JSON"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_json_is_one_clear_error(case):
    raw, needle = HOSTILE[case]
    with pytest.raises(InputError, match=needle) as raised:
        parse_json(raw, "config.json")
    message = str(raised.value)
    assert message.startswith("config.json: ") and "\n" not in message and len(message) < 300
    message.encode("utf-8")  # printable: no lone surrogates reach the terminal


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_config_through_the_cli(tmp_path, case):
    folder = tmp_path / "ckpt"
    shutil.copytree(CHECKPOINTS / "bert-seq-cls", folder)
    (folder / "config.json").write_bytes(HOSTILE[case][0])
    for fmt in ("text", "json"):
        done = subprocess.run([sys.executable, "-m", "headcheck", "scan", str(folder), "--format", fmt],
                              capture_output=True, timeout=60, env={**os.environ, "PYTHONPATH": str(REPO)})
        assert done.returncode == 2, done.stderr
        assert b"Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


@given(st.binary(max_size=2048))
@settings(max_examples=300, deadline=None)
def test_any_bytes_give_a_document_or_input_error(raw):
    try:
        parse_json(raw, "config.json")
    except InputError:
        pass


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=10),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
                    max_leaves=30))
@settings(max_examples=200, deadline=None)
def test_valid_json_reads_as_the_standard_library_reads_it(value):
    raw = json.dumps(value).encode()
    assert parse_json(raw, "config.json") == json.loads(raw)


def test_a_fifo_or_a_folder_named_like_a_config_never_blocks(tmp_path):
    folder = tmp_path / "ckpt"
    shutil.copytree(CHECKPOINTS / "bert-seq-cls", folder)
    (folder / "config.json").unlink()
    os.mkfifo(folder / "config.json")
    (folder / "adapter_config.json").mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for target in (folder, folder / "config.json"):
        done = subprocess.run([sys.executable, "-m", "headcheck", "scan", str(target)], capture_output=True,
                              text=True, timeout=30, env=env)
        assert done.returncode in (1, 2, 3), done.stdout + done.stderr  # never 0: the config was not read
        assert "Traceback" not in done.stderr


def test_a_symlink_loop_is_an_input_error(tmp_path):
    folder = tmp_path / "ckpt"
    folder.mkdir()
    (folder / "config.json").symlink_to(folder / "config.json")
    done = subprocess.run([sys.executable, "-m", "headcheck", "scan", str(folder / "config.json")], capture_output=True,
                          text=True, timeout=30, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 2 and "Traceback" not in done.stderr


def test_the_fuzz_targets_stay_runnable():
    """tests/fuzz.py (atheris) feeds these functions; each takes any bytes to a result or InputError."""
    from fuzz import TARGETS

    samples = [b"", b"{}", GOOD, b"\x80\x02}q\x00.", b"version https://git-lfs.github.com/spec/v1\n",
               b"---\nlicense: mit\n---\n", b"refs/heads/main 0123 refs/heads/main 4567\n"]
    for name, target in TARGETS.items():
        for sample in samples:
            try:
                target(sample)
            except InputError:
                pass


@pytest.mark.parametrize("name", sorted(FUZZ_TARGETS))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=st.binary(max_size=1024))
def test_every_parser_takes_any_bytes_to_a_result_or_its_own_error(name, raw):
    """The fuzz targets under hypothesis too, so every run of the suite feeds each parser random input."""
    try:
        FUZZ_TARGETS[name](raw)
    except (InputError, NothingScannedError):
        pass
