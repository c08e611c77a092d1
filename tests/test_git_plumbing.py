"""The parsers of git's own output and of the pre-push hook's stdin: any input gives a result or headcheck's own
error, and names that are hostile to line-based parsing (newlines, tabs, spaces, non-UTF-8) come back intact."""

from __future__ import annotations

import os

from hypothesis import given
from hypothesis import strategies as st

from headcheck.errors import InputError
from headcheck.hooks.push import PushedRef, parse_pre_push
from headcheck.hooks.repo import BLOB_MODES, TreeEntry, parse_ls_tree

SHA = st.text("0123456789abcdef", min_size=40, max_size=40)
PATH = st.binary(min_size=1, max_size=40).filter(lambda b: b"\0" not in b)
RECORD = st.tuples(st.sampled_from(sorted(BLOB_MODES) + ["120000", "160000", "040000"]),
                   st.sampled_from(["blob", "commit", "tree"]), SHA, PATH)


@given(st.lists(RECORD, max_size=8))
def test_ls_tree_records_round_trip(records):
    out = b"".join(f"{mode} {kind} {oid}\t".encode() + path + b"\0" for mode, kind, oid, path in records)
    assert parse_ls_tree(out) == [TreeEntry(mode, oid, os.fsdecode(path)) for mode, kind, oid, path in records
                                  if kind == "blob" and mode in BLOB_MODES]


@given(st.binary(max_size=300))
def test_any_ls_tree_output_gives_entries_or_input_error(out):
    try:
        entries = parse_ls_tree(out)
    except InputError as exc:
        assert "\n" not in str(exc)
    else:
        assert all(isinstance(e, TreeEntry) for e in entries)


@given(st.lists(st.tuples(st.text(min_size=1, max_size=20).filter(lambda t: t.strip() == t and "\n" not in t
                                                                   and "\r" not in t and t.isprintable()),
                          SHA, st.text("abcdefghijklmnopqrstuvwxyz/", min_size=1, max_size=20), SHA), max_size=5))
def test_pre_push_lines_round_trip(lines):
    text = "".join(f"{local} {sha} {remote} {remote_sha}\n" for local, sha, remote, remote_sha in lines)
    assert parse_pre_push(text) == tuple(PushedRef(*line) for line in lines)


@given(st.text(max_size=300))
def test_any_pre_push_stdin_gives_refs_or_input_error(text):
    try:
        refs = parse_pre_push(text)
    except InputError:
        return
    assert all(isinstance(r, PushedRef) for r in refs)
