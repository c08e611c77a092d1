"""git-LFS pointers per the spec, decided as git-lfs decides: checked against `git lfs pointer --check` itself
on generated pointers and near-pointers, and through the CLI for files that are, or merely look like, one."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from headcheck.read.lfs import MAX_POINTER_BYTES, MalformedPointer, Pointer, parse_pointer
from helpers import CHECKPOINTS, REPO

OID = hashlib.sha256(b"x").hexdigest()
V1 = "https://git-lfs.github.com/spec/v1"
CANONICAL = f"version {V1}\noid sha256:{OID}\nsize 12345\n"


def classify(data: bytes) -> str:
    try:
        return "pointer" if parse_pointer(data) is not None else "content"
    except MalformedPointer:
        return "malformed"


@pytest.mark.parametrize("text,size", [
    (CANONICAL, 12345),
    (CANONICAL.rstrip("\n"), 12345),  # no final newline
    (CANONICAL.replace("\n", "\r\n"), 12345),
    ("  \n" + CANONICAL + "\n\n", 12345),
    (CANONICAL.replace("https://git-lfs.github.com/spec/v1", "https://hawser.github.com/spec/v1"), 12345),
    (f"version {V1}\next-0-foo sha256:{OID}\noid sha256:{OID}\nsize 1\n", 1),
    (f"version {V1}\noid sha256:{OID}\nsize +7\n", 7),  # Go's ParseInt takes a sign
    (f"version {V1}\noid sha256:{OID}\nsize 9223372036854775807\n", 2**63 - 1),
])
def test_pointers_git_lfs_accepts(text, size):
    assert parse_pointer(text.encode()) == Pointer(OID, size)


@pytest.mark.parametrize("text", [
    CANONICAL.replace(OID, OID.upper()),
    CANONICAL.replace(OID, OID[:-1]),
    CANONICAL.replace(OID, OID + "0"),
    CANONICAL.replace("sha256", "sha1"),
    CANONICAL.replace("size 12345", "size -1"),
    CANONICAL.replace("size 12345", "size 0x10"),
    CANONICAL.replace("size 12345", "size 9223372036854775808"),
    CANONICAL.replace("size 12345", "size  12345"),
    CANONICAL.replace("\nsize 12345", ""),
    f"version {V1}\nsize 1\noid sha256:{OID}\n",  # out of order
    f"version {V1}\noid sha256:{OID}\noid sha256:{OID}\nsize 1\n",
    f"version {V1}\nfoo bar\noid sha256:{OID}\nsize 1\n",  # unknown key
    f"version {V1}\next-0-foo bar\noid sha256:{OID}\nsize 1\n",  # extension without an oid
    f"version {V1}\next-0-a sha256:{OID}\next-0-b sha256:{OID}\noid sha256:{OID}\nsize 1\n",  # same priority
    f"version {V1}/\noid sha256:{OID}\nsize 1\n",
    f"version {V1}\roid sha256:{OID}\nsize 1\n",
    CANONICAL + "extra line\n",
])
def test_near_pointers_are_malformed(text):
    with pytest.raises(MalformedPointer):
        parse_pointer(text.encode())


def test_content_is_not_a_pointer():
    assert parse_pointer(b"") is None  # git-lfs' empty pointer: left to the format readers
    assert parse_pointer(b'{"version": "https://git-lfs.github.com/spec/v1"}') is None
    assert parse_pointer(CANONICAL.encode() + b" " * MAX_POINTER_BYTES) is None  # too big to be one


# ------------------------------------------------------------------------------------ git-lfs as the oracle

_line_key = st.sampled_from(["version", "oid", "size", "ext-0-a", "ext-1-b", "ext-x-c", "foo", "Oid", ""])
_line_value = st.sampled_from([V1, "https://hawser.github.com/spec/v1", "http://git-media.io/v/2", V1 + "/",
                               f"sha256:{OID}", f"sha256:{OID.upper()}", f"sha256:{OID[:-1]}", f"sha1:{OID}",
                               "12", "+3", "-1", "007", "9223372036854775808", "1 2", "", "x"])
_separator = st.sampled_from(["\n", "\r\n", "\n\n", "\r", " \n"])


@st.composite
def pointerish(draw) -> bytes:
    lines = draw(st.lists(st.tuples(_line_key, st.sampled_from([" ", "  ", "\t"]), _line_value), min_size=1, max_size=5))
    if draw(st.booleans()):  # mostly well-formed starts, so the interesting cases are near the real thing
        lines[0] = ("version", " ", V1)
    text = "".join(key + space + value + draw(_separator) for key, space, value in lines)
    return (draw(st.sampled_from(["", " ", "\n"])) + text).encode()


@pytest.fixture(scope="module")
def git_lfs():
    if shutil.which("git-lfs") is None:
        pytest.skip("git-lfs is not installed (.ci/run installs it); the oracle comparison needs it")
    return shutil.which("git")


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pointerish())
def test_pointers_are_what_git_lfs_says_they_are(git_lfs, tmp_path, data):
    candidate = tmp_path / "candidate"
    candidate.write_bytes(data)
    checked = subprocess.run([git_lfs, "lfs", "pointer", "--check", "--file", str(candidate)], capture_output=True,
                             cwd=tmp_path)
    assert checked.returncode in (0, 1), checked.stderr
    assert (classify(data) == "pointer") == (checked.returncode == 0), data


@given(st.binary(max_size=MAX_POINTER_BYTES + 8))
def test_any_bytes_give_a_pointer_none_or_malformed(data):
    assert classify(data) in ("pointer", "content", "malformed")


# ------------------------------------------------------------------------------------------- through the CLI

def _scan(folder):
    return subprocess.run([sys.executable, "-m", "headcheck", "scan", str(folder), "--format", "json"],
                          capture_output=True, text=True, cwd=REPO, timeout=60)


@pytest.mark.parametrize("file", ["model.safetensors", "config.json"])
def test_a_pointer_in_place_of_a_file_says_git_lfs_pull(tmp_path, file):
    folder = tmp_path / "m"
    shutil.copytree(CHECKPOINTS / "bert-seq-cls", folder)
    (folder / file).write_text(CANONICAL)
    done = _scan(folder)
    assert done.returncode == 2
    assert json.loads(done.stdout)["error"].count("git lfs pull") == 1


def test_a_file_that_merely_looks_like_a_pointer_is_named_as_such(tmp_path):
    folder = tmp_path / "m"
    shutil.copytree(CHECKPOINTS / "bert-seq-cls", folder)
    (folder / "model.safetensors").write_text(CANONICAL.replace(OID, OID.upper()))
    done = _scan(folder)
    assert done.returncode == 2
    error = json.loads(done.stdout)["error"]
    assert "model.safetensors: starts like a git-LFS pointer but is not a valid one" in error
    assert "git lfs pull" not in error
