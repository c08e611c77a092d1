"""read_pickle_index against real torch.save output, malicious pickles and corrupt files."""

from __future__ import annotations

import io
import os
import pickle
import random
import subprocess
import sys
import tarfile
import zipfile
from collections import OrderedDict
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from headcheck.read import pickle_index, torch_zip
from headcheck.errors import InputError, UnsafePickleError
from headcheck.read.pickle_index import read_pickle_index

torch = pytest.importorskip("torch")

REPO = Path(__file__).resolve().parents[1]
REL = "pytorch_model.bin"
CODES = {
    torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
    torch.bool: "BOOL", torch.uint16: "U16", torch.float8_e4m3fn: "F8_E4M3", torch.float8_e5m2: "F8_E5M2",
}


def save(obj, path: Path, **kwargs) -> Path:
    torch.save(obj, path, **kwargs)
    return path


def tensor_bytes(t) -> bytes:
    return t.detach().clone().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


def check_against_torch(index, state_dict, path: Path, *, legacy: bool = False):
    """Names, dtypes and shapes match torch; spans match storage_offset()*element_size() and hold the tensor's bytes."""
    assert set(index) == set(state_dict)
    zf = None if legacy else zipfile.ZipFile(path)
    for name, t in state_dict.items():
        info = index[name]
        assert (info.name, info.dtype, info.shape, info.file) == (name, CODES[t.dtype], tuple(t.shape), REL)
        if legacy:
            assert info.storage is None and info.span is None
            continue
        assert info.storage in zf.namelist() and "/data/" in info.storage
        if t.dim() == 2 and t.t().is_contiguous() and not t.is_contiguous():  # stored transposed
            start = t.storage_offset() * t.element_size()
            assert info.transposed and info.span == (start, start + t.numel() * t.element_size())
            assert zf.read(info.storage)[info.span[0] : info.span[1]] == tensor_bytes(t.t())
            continue
        if not t.is_contiguous():
            assert info.span is None
            continue
        assert not info.transposed
        start = t.storage_offset() * t.element_size()
        assert info.span == (start, start + t.numel() * t.element_size())
        assert zf.read(info.storage)[info.span[0] : info.span[1]] == tensor_bytes(t)


# --- real checkpoints ------------------------------------------------------------------------------


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_dtypes_and_shapes(tmp_path, legacy):
    g = torch.Generator().manual_seed(0)
    sd = {
        "f32": torch.randn(3, 4, generator=g),
        "f16": torch.randn(5, generator=g).half(),
        "bf16": torch.randn(2, 3, generator=g).bfloat16(),
        "f64": torch.randn(2, generator=g).double(),
        "i64": torch.arange(7),
        "i32": torch.arange(3, dtype=torch.int32),
        "i8": torch.arange(3, dtype=torch.int8),
        "u8": torch.arange(3, dtype=torch.uint8),
        "bool": torch.tensor([True, False]),
        "scalar": torch.tensor(1.5),
        "empty": torch.zeros(0, 4),
    }
    path = save(sd, tmp_path / REL, _use_new_zipfile_serialization=not legacy)
    check_against_torch(read_pickle_index(path, REL), sd, path, legacy=legacy)


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_untyped_storage_plus_dtype_form(tmp_path, legacy):
    # torch >= 2.1 saves these dtypes through _rebuild_tensor_v3(UntypedStorage, ..., torch.<dtype>)
    sd = {
        "u16": torch.arange(6).to(torch.uint16)[2:],
        "f8": torch.ones(3, 2).to(torch.float8_e4m3fn),
        "f8b": torch.ones(4).to(torch.float8_e5m2),
    }
    path = save(sd, tmp_path / REL, _use_new_zipfile_serialization=not legacy)
    check_against_torch(read_pickle_index(path, REL), sd, path, legacy=legacy)


def test_shared_storage_and_non_contiguous_views(tmp_path):
    base = torch.arange(20, dtype=torch.float32)
    sd = {"a": base[2:8], "b": base[10:14].view(2, 2), "t": base[:12].view(3, 4).t(), "col": base[:12].view(3, 4)[:, 1]}
    path = save(sd, tmp_path / REL)
    index = read_pickle_index(path, REL)
    check_against_torch(index, sd, path)
    assert len({info.storage for info in index.values()}) == 1
    assert index["a"].span == (8, 32) and index["b"].span == (40, 56)
    # a transposed 2-D view (GPT-2's Conv1D weights as adapter-transformers saves them) is readable as its
    # storage block; a strided column is not
    assert index["t"].span == (0, 48) and index["t"].transposed and not index["a"].transposed
    assert index["col"].span is None
    from headcheck.migration.tensor_bytes import read_into, tensor_chunks

    for name in ("a", "b", "t"):
        expected = sd[name].contiguous().numpy().tobytes()
        assert b"".join(bytes(c) for c in tensor_chunks(tmp_path, index[name])) == expected
        into = bytearray(len(expected))  # what a merge reads (zip members through their reader, not pread)
        read_into(tmp_path, index[name], memoryview(into))
        assert into == expected


def test_parameter_and_module_state_dict_with_metadata(tmp_path):
    lin = torch.nn.Linear(3, 2)
    sd = lin.state_dict()
    assert isinstance(sd, OrderedDict) and hasattr(sd, "_metadata")  # the BUILD path we must survive
    sd["param"] = torch.nn.Parameter(torch.ones(4, 2))
    path = save(sd, tmp_path / REL)
    check_against_torch(read_pickle_index(path, REL), dict(sd), path)


def test_whole_module_state_dict_legacy(tmp_path):
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.LayerNorm(8), torch.nn.Linear(8, 2))
    path = save(model.state_dict(), tmp_path / REL, _use_new_zipfile_serialization=False)
    check_against_torch(read_pickle_index(path, REL), dict(model.state_dict()), path, legacy=True)


@pytest.mark.parametrize("key", ["state_dict", "model"])
def test_nested_training_checkpoint(tmp_path, key):
    sd = {"w": torch.ones(2, 2), "b": torch.zeros(2)}
    ckpt = {key: sd, "epoch": 3, "optimizer": {"lr": 0.1}, "note": b"bytes go through _codecs.encode"}
    path = save(ckpt, tmp_path / REL)
    check_against_torch(read_pickle_index(path, REL), sd, path)


def test_non_tensor_values_ignored(tmp_path):
    sd = {"w": torch.ones(2), "step": 7, "cfg": {"inner": torch.ones(1)}, "blob": b"\x00\xff", 3: torch.ones(1)}
    path = save(sd, tmp_path / REL)
    assert list(read_pickle_index(path, REL)) == ["w"]


def test_top_level_tensor_is_not_a_state_dict(tmp_path):
    with pytest.raises(InputError, match=r"^pytorch_model\.bin: not a state dict"):
        read_pickle_index(save(torch.ones(3), tmp_path / REL), REL)


def test_any_zip_prefix(tmp_path):
    path = save({"w": torch.ones(2)}, tmp_path / "adapter_model.bin")
    index = read_pickle_index(path, "adapter_model.bin")
    assert index["w"].storage == "adapter_model/data/0" and index["w"].file == "adapter_model.bin"


# --- never touching storages, never importing torch ------------------------------------------------


def _rchar() -> int:
    # Bytes this process passed through read()/pread(), however the file was opened.
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar")


@pytest.mark.skipif(not Path("/proc/self/io").exists(), reason="needs Linux /proc/self/io")
def test_does_not_read_storages(tmp_path, monkeypatch):
    big = torch.ones(50 * 2**20 // 4)  # 50 MB
    path = save({"small": torch.ones(3), "big": big}, tmp_path / REL)
    assert path.stat().st_size > 50 * 2**20

    opened = []
    real_open = zipfile.ZipFile.open

    def recording_open(self, name, *args, **kwargs):
        opened.append(name.filename if isinstance(name, zipfile.ZipInfo) else name)
        return real_open(self, name, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "open", recording_open)
    before = _rchar()
    index = read_pickle_index(path, REL)
    read = _rchar() - before
    assert index["big"].span == (0, big.numel() * 4)
    assert opened == [f"{REL[:-4]}/data.pkl"]
    assert read < 2**20, f"read {read} bytes of a {path.stat().st_size}-byte file"

    # Control: the measure does see a storage read.
    before = _rchar()
    with zipfile.ZipFile(path) as zf:
        zf.read(index["big"].storage)
    assert _rchar() - before > 50 * 2**20


def test_torch_not_imported(tmp_path):
    path = save({"w": torch.ones(2, 3), "h": torch.ones(2).half()}, tmp_path / REL)
    legacy = save({"w": torch.ones(2, 3)}, tmp_path / "legacy.bin", _use_new_zipfile_serialization=False)
    code = (
        "import sys, pathlib, headcheck.read.pickle_index as p\n"
        "for f in sys.argv[1:]:\n"
        "    assert p.read_pickle_index(pathlib.Path(f), 'x')['w'].shape == (2, 3)\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    argv = [sys.executable, "-c", code, str(path), str(legacy)]
    result = subprocess.run(argv, env=env, cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# --- malicious pickles -----------------------------------------------------------------------------


class Payload:
    def __init__(self, func, arg):
        self.func, self.arg = func, arg

    def __reduce__(self):
        return self.func, (self.arg,)


def payloads(target: Path):
    return {
        "system": (Payload(os.system, f"echo pwned > {target}"), f"{os.system.__module__}.system"),
        "eval": (Payload(eval, f"open({str(target)!r}, 'w').write('pwned')"), "eval"),
        "exec": (Payload(exec, f"open({str(target)!r}, 'w').write('pwned')"), "exec"),
    }


def write_zip(path: Path, data_pkl: bytes, prefix: str = "archive") -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{prefix}/data.pkl", data_pkl)
        zf.writestr(f"{prefix}/version", "3\n")
    return path


def assert_refused(path: Path, global_suffix: str, target: Path):
    with pytest.raises(UnsafePickleError) as excinfo:
        read_pickle_index(path, REL)
    err = excinfo.value
    assert err.path == REL and err.globals_found == sorted(err.globals_found)
    assert any(g.endswith(global_suffix) for g in err.globals_found), err.globals_found
    assert "\n" not in str(err) and str(err).startswith(REL)
    assert not target.exists(), "payload ran"


def test_payloads_are_live(tmp_path):
    # Control: under plain pickle these payloads really do run, so the refusal tests below mean something.
    for kind, (payload, _) in payloads(tmp_path / "control").items():
        target = tmp_path / "control"
        pickle.loads(pickle.dumps(payload, protocol=4))
        assert target.read_text().strip() == "pwned", kind
        target.unlink()


@pytest.mark.parametrize("protocol", [0, 2, 4], ids=["proto0", "proto2-GLOBAL", "proto4-STACK_GLOBAL"])
@pytest.mark.parametrize("kind", ["system", "eval", "exec"])
def test_malicious_data_pkl_refused(tmp_path, kind, protocol):
    target = tmp_path / "somefile"
    payload, suffix = payloads(target)[kind]
    data = pickle.dumps({"w": payload}, protocol=protocol)
    assert_refused(write_zip(tmp_path / REL, data), suffix, target)


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_payload_inside_real_checkpoint_refused(tmp_path, legacy):
    target = tmp_path / "somefile"
    payload, suffix = payloads(target)["system"]
    path = save({"w": torch.ones(2), "x": payload}, tmp_path / REL, _use_new_zipfile_serialization=not legacy)
    assert_refused(path, suffix, target)


def _stack_global_pickle(target: Path, *, obfuscate: bool) -> bytes:
    def s(text: str) -> bytes:
        raw = text.encode()
        return b"\x8c" + bytes([len(raw)]) + raw  # SHORT_BINUNICODE

    # Module and name reach STACK_GLOBAL through memo GETs, or (obfuscated) with a POP the scanner cannot follow.
    if obfuscate:
        head = s(os.system.__module__) + s("system") + s("decoy") + b"0"  # POP
    else:
        head = s(os.system.__module__) + b"\x94" + b"0" + s("system") + b"\x94" + b"0" + b"h\x00h\x01"
    return b"\x80\x04" + head + b"\x93" + s(f"echo pwned > {target}") + b"\x85R."


@pytest.mark.parametrize("obfuscate", [False, True], ids=["memoised", "unresolvable"])
def test_stack_global_tracking(tmp_path, obfuscate):
    target = tmp_path / "somefile"
    data = _stack_global_pickle(target, obfuscate=obfuscate)
    suffix = "<unresolved STACK_GLOBAL>" if obfuscate else f"{os.system.__module__}.system"
    assert_refused(write_zip(tmp_path / REL, data), suffix, target)


def test_hostile_global_name_reported_on_one_line(tmp_path):
    target = tmp_path / "somefile"
    data = _stack_global_pickle(target, obfuscate=False).replace(b"\x8c\x06system", b"\x8c\x07sys\ntem")
    with pytest.raises(UnsafePickleError) as excinfo:
        read_pickle_index(write_zip(tmp_path / REL, data), REL)
    assert "\n" not in str(excinfo.value) and excinfo.value.globals_found == [f"{os.system.__module__}.sys tem"]
    assert not target.exists()


def test_find_class_refuses_even_if_scan_misses(tmp_path, monkeypatch):
    target = tmp_path / "somefile"
    monkeypatch.setattr(pickle_index, "_scan_globals", lambda f: set())  # a scanner that sees nothing
    payload, suffix = payloads(target)["system"]
    assert_refused(write_zip(tmp_path / REL, pickle.dumps({"w": payload}, protocol=2)), suffix, target)


# --- corrupt inputs --------------------------------------------------------------------------------


def assert_input_error(path: Path, match: str):
    with pytest.raises(InputError, match=match) as excinfo:
        read_pickle_index(path, REL)
    assert not isinstance(excinfo.value, UnsafePickleError)
    assert "\n" not in str(excinfo.value) and str(excinfo.value).startswith(f"{REL}: ")


def test_truncated_zip(tmp_path):
    good = save({"w": torch.ones(1000)}, tmp_path / "good.bin").read_bytes()
    path = tmp_path / REL
    path.write_bytes(good[: len(good) // 2])
    assert_input_error(path, "corrupt or truncated zip")


def test_truncated_data_pkl(tmp_path):
    data = zipfile.ZipFile(save({"w": torch.ones(2)}, tmp_path / "good.bin")).read("good/data.pkl")
    assert_input_error(write_zip(tmp_path / REL, data[: len(data) // 2]), "truncated pickle")


def test_truncated_legacy(tmp_path):
    good = save({"w": torch.ones(2)}, tmp_path / "good.bin", _use_new_zipfile_serialization=False).read_bytes()
    path = tmp_path / REL
    path.write_bytes(good[:200])
    assert_input_error(path, "truncated pickle")


def test_random_bytes(tmp_path):
    path = tmp_path / REL
    path.write_bytes(b"\x00" + random.Random(0).randbytes(4096))
    assert_input_error(path, "neither zip nor legacy")


def test_empty_file(tmp_path):
    path = tmp_path / REL
    path.write_bytes(b"")
    assert_input_error(path, "empty file")


def test_zip_without_data_pkl(tmp_path):
    path = tmp_path / REL
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/version", "3\n")
    assert_input_error(path, "no <prefix>/data.pkl")


def test_old_tar_format(tmp_path):
    path = tmp_path / REL
    with tarfile.open(path, "w") as tf:
        info = tarfile.TarInfo("sys_info")
        data = pickle.dumps({"protocol_version": 1001})
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    assert_input_error(path, "neither zip nor legacy")


def test_missing_file(tmp_path):
    assert_input_error(tmp_path / REL, "cannot read")


def test_oversized_data_pkl_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(torch_zip, "MAX_DATA_PKL", 10)
    assert_input_error(save({"w": torch.ones(2)}, tmp_path / REL), "implausibly large")


def test_memo_bomb_refused(tmp_path):
    # LONG_BINPUT to slot 2**31 would make the C unpickler allocate a 16 GB memo table.
    data = b"\x80\x02}r\x00\x00\x00\x80."
    assert_input_error(write_zip(tmp_path / REL, data), "implausible memo index")


@pytest.fixture(scope="module")
def good_pickles(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("good")
    sd = {"w": torch.ones(2, 3), "h": torch.ones(2).half(), "v": torch.arange(10)[3:7]}
    zip_pkl = zipfile.ZipFile(save(sd, tmp / "z.bin")).read("z/data.pkl")
    legacy = save(sd, tmp / "l.bin", _use_new_zipfile_serialization=False).read_bytes()
    return zip_pkl, legacy


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), legacy=st.booleans())
def test_mutated_checkpoints_never_escape(tmp_path, good_pickles, data, legacy):
    zip_pkl, legacy_bytes = good_pickles
    blob = bytearray(legacy_bytes if legacy else zip_pkl)
    for _ in range(data.draw(st.integers(1, 4))):
        blob[data.draw(st.integers(0, len(blob) - 1))] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        del blob[data.draw(st.integers(1, len(blob))) :]
    path = tmp_path / REL
    if legacy:
        path.write_bytes(bytes(blob))
    else:
        write_zip(path, bytes(blob))
    try:
        index = read_pickle_index(path, REL)
    except InputError as e:
        assert "\n" not in str(e) and str(e).startswith(REL)
    else:
        assert all(info.file == REL for info in index.values())
