"""Hostile containers around the pickles headcheck reads: zips as torch's reader reads them, format dispatch
by first bytes, the legacy format's five pickles (issue 11, zip class). Every case in every weight-file role
is scanned in capped child processes: no traceback, never clean, the canary never appears. In-process tests
pin what must still read (ZIP64, comments, deflate, data descriptors) and that reads stay bounded; a
hypothesis property feeds arbitrary and mutated zips to the reader."""

from __future__ import annotations

import io
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import tracemalloc
import zipfile
import zlib
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fixtures import make_fixtures
from headcheck.errors import InputError, UnsafePickleError
from headcheck.read.pickle_index import read_pickle_index
from helpers import CHECKPOINTS, REPO
from hostile import capped_headcheck, scanned_in_batches, zips
from hostile.pickles import payloads
from test_hostile_pickles import ROLES

REL = "pytorch_model.bin"
PAYLOADS = ["os.system-p2", "exec-p4", "eval-p0", "popen-p1", "inst-p0"]  # one per protocol family and opcode
SIBLING = {"pytorch_model.bin": "model.safetensors", "pytorch_adapter.bin": "adapter.safetensors",
           "pytorch_model_head.bin": "model_head.safetensors"}


def _safetensors_tensors(path: Path) -> dict[str, tuple[str, tuple[int, ...]]]:
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    return {k: (v["dtype"], tuple(v["shape"])) for k, v in json.loads(raw[8:8 + n]).items() if k != "__metadata__"}


def decoy(fixture: str, file: str) -> bytes:
    """The role's clean torch zip: the fixture's own file, else the tensors of the safetensors beside it."""
    own = CHECKPOINTS / fixture / file
    if own.exists():
        return own.read_bytes()
    return make_fixtures.torch_zip_bytes(_safetensors_tensors(CHECKPOINTS / fixture / SIBLING[file]))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile-zips")
    canary = root / "CANARY"
    chosen = {name: payload for name, payload in payloads(canary).items() if name in PAYLOADS}
    assert len(chosen) == len(PAYLOADS)
    cases = {}
    for role, (fixture, file) in ROLES.items():
        for name, data in zips.cases(chosen, decoy(fixture, file)).items():
            folder = root / f"{name}--{role}"
            shutil.copytree(CHECKPOINTS / fixture, folder)
            (folder / file).write_bytes(data)
            cases[folder.name] = (folder, file)
    return canary, cases


def test_the_corpus_is_large_and_covers_every_class(corpus):
    _, cases = corpus
    assert len(cases) >= 1000, len(cases)
    per_class = Counter(name.split("--")[0] for name in cases)
    assert set(per_class) == set(zips.PAYLOAD_CLASSES) | set(zips.FIXED_CLASSES) | {"bomb"}, per_class
    assert {name.split("--")[3] for name in cases} == set(ROLES)
    assert all(count >= 4 * len(ROLES) for count in per_class.values()), per_class  # several variants each


def test_decoys_alone_scan_clean(tmp_path):
    # Control: what each case bends is clean on its own, so a refusal below is the hostile part's doing.
    folders = []
    for role, (fixture, file) in ROLES.items():
        for form, data in (("zip", decoy(fixture, file)),
                           ("zip64-records", zips.build(zips.members_of(decoy(fixture, file)), zip64=True))):
            folder = tmp_path / f"{role}-{form}"
            shutil.copytree(CHECKPOINTS / fixture, folder)
            (folder / file).write_bytes(data)
            folders.append(folder)
    done = subprocess.run([sys.executable, "-m", "headcheck", "scan", *map(str, folders), "--format", "json"],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stdout + done.stderr
    assert [json.loads(line)["verdict"] for line in done.stdout.splitlines()] == ["convertible"] * len(folders)


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_no_payload_runs_and_none_is_clean(corpus, fmt):
    canary, cases = corpus
    for batch, done in scanned_in_batches([cases[n][0] for n in sorted(cases)], fmt):
        if fmt == "json":
            records = {Path(r["source"]).name: r for r in map(json.loads, done.stdout.splitlines())}
            assert set(records) == {folder.name for folder in batch}
            for name, record in records.items():
                if "error" in record:  # one line, naming the file and the problem
                    assert record["exit_code"] == 2 and "\n" not in record["error"], (name, record)
                    assert record["error"].startswith(f"{cases[name][0] / cases[name][1]}: "), (name, record)
                    continue
                rules = {f["rule"] for f in record["findings"]}
                assert record["verdict"] not in ("convertible", "already-flex") and "HC001" in rules, (name, record)
        assert not canary.exists(), "a payload ran"
    assert not canary.exists()


def test_migrate_refuses_a_sample(corpus, tmp_path):
    canary, cases = corpus
    sample = random.Random(20261203).sample(sorted(cases), 20)
    for i, name in enumerate(sample):
        out = tmp_path / f"out-{i}"
        done = capped_headcheck("migrate", cases[name][0], "--out", out, timeout=120)
        assert done.returncode in (1, 2), (name, done.returncode, done.stderr[-2000:])
        assert "Traceback" not in done.stderr, (name, done.stderr[-3000:])
        assert not out.exists(), name
        assert not canary.exists(), "a payload ran"


# --- what must still read, and what each refusal says -----------------------------------------------------

TENSORS = {"w": ("F32", (4, 2)), "b": ("F16", (3,))}


def _good() -> list[zips.Member]:
    return zips.members_of(make_fixtures.torch_zip_bytes(TENSORS))


def _index(data: bytes) -> dict:
    return read_pickle_index(io.BytesIO(data), REL)


def _rewritten(**zip_kwargs) -> bytes:
    """The good checkpoint rewritten by Python's zipfile (its own choice of headers)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", **zip_kwargs.pop("zipfile", {})) as zf:
        for m in _good():
            with zf.open(zipfile.ZipInfo(m.name.decode(), date_time=make_fixtures.ZIP_DATE), "w",
                         **zip_kwargs) as fh:
                fh.write(m.data)
    return buf.getvalue()


class _Unseekable(io.RawIOBase):  # zipfile then writes data descriptors (flag bit 3, zeros in local headers)
    def __init__(self):
        self.buf = bytearray()

    def writable(self):
        return True

    def write(self, b):
        self.buf += b
        return len(b)


def _streamed() -> bytes:
    sink = _Unseekable()
    with zipfile.ZipFile(sink, "w") as zf:
        for m in _good():
            zf.writestr(zipfile.ZipInfo(m.name.decode(), date_time=make_fixtures.ZIP_DATE), m.data)
    return bytes(sink.buf)


READABLE = {
    "fixture-writer": lambda: make_fixtures.torch_zip_bytes(TENSORS),
    "zip64-end-records": lambda: zips.build(_good(), zip64=True),  # as torch >= 2.x always writes
    "zip64-data-pkl-force-zip64": lambda: _rewritten(force_zip64=True),
    "deflated": lambda: _rewritten(zipfile={"compression": zipfile.ZIP_DEFLATED}),
    "data-descriptors": _streamed,
    "comment": lambda: zips.build(_good(), comment=b"made by hand"),
    "utf8-flag": lambda: zips.build([zips.replace(m, flags=0x800) for m in _good()]),
}


@pytest.mark.parametrize("form", READABLE)
def test_legitimate_forms_still_read(form):
    data = READABLE[form]()
    if form == "zip64-data-pkl-force-zip64":  # the local header really carries ZIP64 sizes
        assert data[18:26] == b"\xff" * 8 and b"\x01\x00\x10\x00" in data[30:80]
    if form == "data-descriptors":
        assert data[6] & 0x8 and data[14:26] == bytes(12)
    index = _index(data)
    assert {k: (v.dtype, v.shape) for k, v in index.items()} == TENSORS
    assert index["w"].storage == "archive/data/1"  # keys follow the sorted names: b -> 0, w -> 1


# Each fixed case's refusal: one line, the file first, then the problem in words a reader can act on.
REFUSALS = {
    "case--storage-case": "differ only by case",
    "case--same-bytes-two-encodings": "differ only by case",
    "nul--data-pkl-cut-at-nul": "NUL byte",
    "flags--data-pkl-flag-0x0001": "encrypted or compressed",
    "flags--data-pkl-flag-0x2000": "encrypted or compressed",
    "flags--data-pkl-method-99": "method 99",
    "flags--bzip2-data-pkl": "method 12",
    "local-header--sizes-plus-one": "local header and the central directory disagree",
    "local-header--name-case": "local header and the central directory disagree",
    "local-header--sizes-zip64-extra-lies": "local header and the central directory disagree",
    "crc--data-pkl": "Bad CRC-32",
    "sizes--stored-csize-larger": "is stored but declares",
    "sizes--deflated-declares-more": "not the",
    "sizes--storage-short": "not the size the pickle gives it",
    "sizes--storage-missing": "missing from the zip",
    "overlap--storage-points-at-data-pkl": "overlaps",
    "overlap--data-pkl-into-next-entry": "overlaps",
    "overlap--hidden-first-entry": "before its first listed entry",
    "bomb--declares-2gib": "implausibly large",
    "bomb--zeros-declare-small": "Bad CRC-32",
    "end-records--lead-bytes": "end records do not match",
    "end-records--trailing-bytes": "end records do not match",
    "end-records--count-minus-one": "end records do not match",
    "zip64--locator-points-before": "end records do not match",
    "zip64--record-offset-lies": "end records do not match",
    "dispatch--plain-state-dict": "neither zip nor legacy",
    "dispatch--tar-of-zip-entries": "a tar archive",
    "dispatch--torchscript-clean": "TorchScript archive",
    "legacy--protocol-str": "protocol version is not 1001",
    "legacy--sys-info-list": "sys_info is not a dict",
    "legacy--keys-ints": "storage keys are not a list of strings",
    "legacy--zip-after-legacy": "polyglot",
    "legacy--tar-polyglot-clean": "a tar archive",
}


@pytest.mark.parametrize("case", REFUSALS)
def test_each_refusal_is_one_line_naming_file_and_problem(case):
    cls, variant = case.split("--")
    data = zips.FIXED_CLASSES[cls][variant](_good())
    with pytest.raises(InputError) as excinfo:
        _index(data)
    message = str(excinfo.value)
    assert not isinstance(excinfo.value, UnsafePickleError)
    assert message.startswith(f"{REL}: ") and "\n" not in message and len(message) < 400, message
    assert REFUSALS[case] in message, message


def test_every_fixed_case_is_refused_in_process():
    for cls, variants in zips.FIXED_CLASSES.items():
        for variant, make in variants.items():
            with pytest.raises(InputError, match=f"^{REL}: "):
                _index(make(_good()))


@pytest.mark.parametrize("where", ["object-cut-after-payload", "keys-cut-after-payload", "object-then-garbage",
                                   "storage-keys", "storage-keys-then-end"])
def test_a_payload_before_a_break_is_reported_unsafe(tmp_path, where):
    # A loader runs the payload's REDUCE before it reaches the break, so the file is unsafe, not merely truncated.
    payload = payloads(tmp_path / "CANARY")["os.system-p2"]
    with pytest.raises(UnsafePickleError) as excinfo:
        _index(zips.PAYLOAD_CLASSES["legacy"][where](_good(), payload))
    assert any(g.endswith(".system") for g in excinfo.value.globals_found)


def test_bombs_stay_small():
    # A deflated data.pkl declaring its pickle's size but inflating to 1 GiB more: zipfile's read() would ask
    # zlib for up to 1 GiB in one call; the reader asks for one byte past the declared size.
    d = _good()
    pickle_bytes = d[0].data
    lying = zips.build(zips._named(d, b"/data.pkl", **zips.vars_of(
        zips.bomb("x", pickle_bytes, size=len(pickle_bytes), crc=zlib.crc32(pickle_bytes)))))
    honest_64m = zips.FIXED_CLASSES["bomb"]["declares-64mib"](d)
    tracemalloc.start()
    try:
        assert set(_index(lying)) == set(TENSORS)  # torch reads these same first bytes and stops too
        peak_lying = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        with pytest.raises(InputError, match="Bad CRC-32"):
            _index(honest_64m)
        peak_64m = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak_lying < 16 << 20, peak_lying
    assert peak_64m < 3 * (64 << 20), peak_64m  # bounded by the declared size, itself capped


class _Counting(io.RawIOBase):
    """A seekable stream that counts the bytes read, as the Hub's ranged reads are counted."""

    def __init__(self, data: bytes):
        self.data, self.pos, self.read_bytes = data, 0, 0

    def readable(self):
        return True

    def seekable(self):
        return True

    def seek(self, offset, whence=io.SEEK_SET):
        self.pos = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: len(self.data)}[whence] + offset
        return self.pos

    def tell(self):
        return self.pos

    def readinto(self, buffer):
        chunk = self.data[self.pos:self.pos + len(buffer)]
        buffer[:len(chunk)] = chunk
        self.pos += len(chunk)
        self.read_bytes += len(chunk)
        return len(chunk)


def test_checks_read_only_the_directory_and_data_pkl():
    data = make_fixtures.torch_zip_bytes({"big": ("F32", (8 << 20,)), "small": ("F32", (3,))})  # a 32 MB storage
    stream = _Counting(data)
    index = read_pickle_index(io.BufferedReader(stream, 64 * 1024), REL)
    assert index["big"].span == (0, 32 << 20)
    assert stream.read_bytes < 400_000, stream.read_bytes  # tail, data.pkl's header block: no storage bytes


# --- property: any bytes in, a dict or an InputError out, quickly -------------------------------------------

GOOD = make_fixtures.torch_zip_bytes({"w": ("F32", (2, 2)), "b": ("I64", (3,))})
GOOD_FORMS = [GOOD, zips.build(zips.members_of(GOOD), zip64=True),
              zips.build([zips.deflated(m.name, m.data) for m in zips.members_of(GOOD)])]


def _length_fields(data: bytes) -> list[tuple[int, int]]:
    """(offset, width) of every size, count, offset and length field in the zip's headers and end records."""
    fields = []
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for info in zf.infolist():
            fields += [(info.header_offset + at, w) for at, w in ((14, 4), (18, 4), (22, 4), (26, 2), (28, 2))]
        at = zf.start_dir
        for _ in zf.infolist():
            n, e, c = struct.unpack("<3H", data[at + 28:at + 34])
            fields += [(at + off, w) for off, w in ((16, 4), (20, 4), (24, 4), (28, 2), (30, 2), (32, 2), (42, 4))]
            at += 46 + n + e + c
    end = len(data) - zips.EOCD.size
    fields += [(end + off, w) for off, w in ((8, 2), (10, 2), (12, 4), (16, 4), (20, 2))]
    if data[end - 20:end - 16] == b"PK\x06\x07":
        fields.append((end - 20 + 8, 8))
        record = end - 20 - zips.EOCD64.size
        fields += [(record + off, 8) for off in (4, 24, 32, 40, 48)]
    return fields


FIELDS = [_length_fields(form) for form in GOOD_FORMS]


def _assert_contained(data: bytes) -> None:
    try:
        index = read_pickle_index(io.BytesIO(data), REL)
    except InputError as e:
        assert str(e).startswith(f"{REL}: ") and "\n" not in str(e), str(e)
    else:
        assert isinstance(index, dict) and all(info.file == REL for info in index.values())


@settings(max_examples=400, deadline=timedelta(seconds=2), suppress_health_check=[HealthCheck.too_slow])
@given(form=st.integers(0, len(GOOD_FORMS) - 1), data=st.data())
def test_mutated_zips_give_an_index_or_an_input_error(form, data):
    blob = bytearray(GOOD_FORMS[form])
    for _ in range(data.draw(st.integers(1, 3), label="edits")):
        kind = data.draw(st.sampled_from(["field", "flip", "byte"]), label="kind")
        if kind == "field":
            at, width = data.draw(st.sampled_from(FIELDS[form]), label="field")
            top = (1 << (8 * width)) - 1
            value = data.draw(st.one_of(st.sampled_from([0, 1, top, top - 1, len(blob), len(blob) - at]),
                                        st.integers(0, top)), label="value")
            blob[at:at + width] = (value & top).to_bytes(width, "little")
        elif kind == "flip":
            at = data.draw(st.integers(0, len(blob) - 1), label="at")
            blob[at] ^= 1 << data.draw(st.integers(0, 7), label="bit")
        else:
            blob[data.draw(st.integers(0, len(blob) - 1), label="at")] = data.draw(st.integers(0, 255), label="byte")
    if data.draw(st.booleans(), label="truncate"):
        del blob[data.draw(st.integers(0, len(blob)), label="cut"):]
    _assert_contained(bytes(blob))


@settings(max_examples=300, deadline=timedelta(seconds=2))
@given(head=st.sampled_from([b"PK\x03\x04", b"", zips.LEGACY_MAGIC, b"PK\x03\x04" + GOOD[4:64]]),
       body=st.binary(max_size=2048), tail=st.sampled_from([b"", GOOD[-200:], zips.EOCD.pack(
           b"PK\x05\x06", 0, 0, 1, 1, 46, 0, 0)]))
def test_arbitrary_bytes_give_an_index_or_an_input_error(head, body, tail):
    _assert_contained(head + body + tail)
