"""safetensors headers the format's reference reader refuses (issue 11, safetensors class): each is one line
naming the file and the problem, through the library and the CLI."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from headcheck.errors import InputError
from headcheck.read.safetensors_header import parse_header, read_safetensors_index
from helpers import REPO

GOOD = {"a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},
        "b": {"dtype": "F16", "shape": [4], "data_offsets": [16, 24]}}


def file_bytes(header, data_size: int = 24, raw_header: bytes | None = None) -> bytes:
    raw = raw_header if raw_header is not None else json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + bytes(data_size)


def with_entry(name: str, **changes) -> dict:
    return {**GOOD, name: {**GOOD[name], **changes}}


CASES = {
    "header-past-end": (struct.pack("<Q", 10_000) + b"{}", "past the end"),
    "header-over-100mb": (struct.pack("<Q", 100_000_001) + b"{}" + bytes(100), "past the end"),
    "not-utf8": (file_bytes(None, raw_header=b'{"\xff": 1}'), "not UTF-8"),
    "not-an-object": (file_bytes(None, raw_header=b"[1, 2]"), "not a JSON object"),
    "metadata-not-strings": (file_bytes({**GOOD, "__metadata__": {"format": 1}}), "__metadata__"),
    "gap-between-tensors": (file_bytes(with_entry("b", data_offsets=[17, 25]), 25), "gap or overlap"),
    "overlap": (file_bytes(with_entry("b", data_offsets=[8, 16], shape=[4]), 16), "gap or overlap"),
    "not-from-zero": (file_bytes({"a": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}}, 16), "expected 0"),
    "length-vs-shape": (file_bytes(with_entry("a", shape=[2, 3])), "does not fit"),
    "trailing-bytes": (file_bytes(GOOD, 32), "8 bytes after the last tensor"),
    "unknown-dtype": (file_bytes(with_entry("a", dtype="F128")), "unknown dtype"),
    "negative-shape": (file_bytes(with_entry("a", shape=[-2, -2])), "non-negative integers"),
    "bool-shape": (file_bytes(with_entry("b", shape=[True, 4])), "non-negative integers"),
    "float-shape": (file_bytes(with_entry("b", shape=[4.0])), "non-negative integers"),
    "string-shape": (file_bytes(with_entry("b", shape=["4"])), "non-negative integers"),
    "bool-offsets": (file_bytes(with_entry("a", data_offsets=[False, 16])), "not a byte range"),
    "duplicate-key": (file_bytes(None, raw_header=json.dumps(GOOD).encode()[:-1] + b', "a": '
                                 + json.dumps(GOOD["a"]).encode() + b"}"), "appears twice"),
    "entry-not-object": (file_bytes({**GOOD, "c": [1, 2]}), "bad entry"),
}


def test_the_good_file_reads(tmp_path):
    path = tmp_path / "model.safetensors"
    path.write_bytes(file_bytes(GOOD))
    tensors, _ = read_safetensors_index(path, path.name)
    assert sorted(tensors) == ["a", "b"]


@pytest.mark.parametrize("case", sorted(CASES))
def test_refused_with_one_line(tmp_path, case):
    raw, needle = CASES[case]
    path = tmp_path / "model.safetensors"
    path.write_bytes(raw)
    with pytest.raises(InputError, match=needle) as raised:
        read_safetensors_index(path, path.name)
    assert str(raised.value).startswith("model.safetensors: ") and "\n" not in str(raised.value)
    (tmp_path / "config.json").write_text('{"model_type": "bert", "architectures": ["BertForSequenceClassification"]}')
    done = subprocess.run([sys.executable, "-m", "headcheck", "scan", str(tmp_path)], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 2 and "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


@given(st.binary(max_size=512), st.integers(min_value=0, max_value=4096))
@settings(max_examples=300, deadline=None)
def test_any_header_bytes_give_tensors_or_input_error(raw, data_size):
    try:
        parse_header(raw, data_size, "model.safetensors")
    except InputError:
        pass


@given(st.dictionaries(st.text(max_size=8), st.fixed_dictionaries({
    "dtype": st.sampled_from(["F32", "F16", "I8", "BOOL", "X"]),
    "shape": st.lists(st.one_of(st.integers(-2, 5), st.booleans(), st.floats(0, 3)), max_size=3),
    "data_offsets": st.lists(st.integers(-1, 64), min_size=0, max_size=3)}), max_size=4),
    st.integers(0, 128))
@settings(max_examples=300, deadline=None)
def test_any_structured_header_gives_tensors_or_input_error(header, data_size):
    try:
        parse_header(json.dumps(header).encode(), data_size, "model.safetensors")
    except InputError:
        pass
