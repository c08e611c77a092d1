"""The torch-free writer of adapter .bin heads: what torch.save writes, byte for byte, and what torch.load reads
back bit for bit, from tensors streamed out of a torch.save file as migrate streams them."""

from __future__ import annotations

import collections
import functools
import math
import struct
import tempfile
import zipfile
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

from headcheck.errors import InputError  # noqa: E402
from headcheck.migration.safetensors_writer import PendingTensor  # noqa: E402
from headcheck.migration.tensor_bytes import tensor_chunks  # noqa: E402
from headcheck.migration.torch_zip_writer import write_torch_zip  # noqa: E402
from headcheck.read.pickle_index import read_pickle_index  # noqa: E402
from headcheck.read.safetensors_header import nbytes  # noqa: E402

DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.float64, torch.int64, torch.int32, torch.int16,
          torch.int8, torch.uint8, torch.bool]
HEAD = "pytorch_model_head.bin"


def rewrite(source: Path, out: Path) -> Path:
    """What migrate does with a .bin head: every tensor streamed from the source file into ours."""
    index = read_pickle_index(source, source.name)
    write_torch_zip(out, [PendingTensor(name, info.dtype, info.shape, nbytes(info.dtype, info.shape),
                                        functools.partial(tensor_chunks, source.parent, info))
                          for name, info in index.items()])
    return out


def saved(state: dict, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(collections.OrderedDict(state), folder / HEAD)
    return folder / HEAD


def assert_torch_save_bytes(ours: Path, theirs: Path) -> None:
    """Byte for byte, but for the serialization id torch draws at random (and the CRC of that record)."""
    record = f"{Path(HEAD).stem}/.data/serialization_id"
    with zipfile.ZipFile(ours) as a, zipfile.ZipFile(theirs) as b:
        ids = a.read(record), b.read(record)
        crcs = struct.pack("<L", a.getinfo(record).CRC), struct.pack("<L", b.getinfo(record).CRC)
    expected = theirs.read_bytes().replace(ids[1], ids[0]).replace(crcs[1], crcs[0])
    assert ours.read_bytes() == expected


def raw(tensor) -> bytes:
    return tensor.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


def assert_bit_equal(loaded: dict, state: dict) -> None:
    assert list(loaded) == list(state) and isinstance(loaded, collections.OrderedDict)
    for name, tensor in state.items():
        got = loaded[name]
        assert (got.dtype, got.shape) == (tensor.dtype, tensor.shape), name
        assert got.is_contiguous() and got.untyped_storage().nbytes() == got.numel() * got.element_size(), name
        assert raw(got) == raw(tensor), name


def random_tensor(dtype, shape, seed: int):
    data = torch.randint(0, 256, (math.prod(shape) * torch.empty((), dtype=dtype).element_size(),),
                         dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))
    if dtype is torch.bool:
        data %= 2
    return data.view(dtype).reshape(shape)  # any bit pattern: NaNs, -0.0, subnormals


STATES = {
    "every dtype": lambda: {f"heads.x.{i}.weight": random_tensor(dtype, (3, 4), i) for i, dtype in enumerate(DTYPES)},
    "0-d and empty": lambda: {"scale": torch.tensor(-0.0), "step": torch.tensor(7), "none": torch.zeros(2, 0, 3),
                              "nan": torch.tensor([float("nan"), float("-inf")], dtype=torch.bfloat16)},
    "one tensor": lambda: {"heads.x.1.bias": random_tensor(torch.float16, (5,), 1)},
    "no tensor": lambda: {},
    "wide dimensions": lambda: {"wide": random_tensor(torch.int8, (2, 70000), 2), "tall": torch.ones(300, 1)},
    "1001 tensors": lambda: {f"heads.x.{i}.bias": torch.full((2,), float(i)) for i in range(1001)},
}


@pytest.mark.parametrize("case", STATES)
def test_what_torch_save_writes_and_torch_load_reads_bit_for_bit(case, tmp_path):
    state = STATES[case]()
    source = saved(state, tmp_path / "torch")
    ours = rewrite(source, tmp_path / HEAD)
    assert_torch_save_bytes(ours, source)
    assert_bit_equal(torch.load(ours, weights_only=True), state)


def test_views_and_transposed_tensors_come_out_contiguous_each_in_its_own_storage(tmp_path):
    """One storage holding several tensors (views), a transposed layer: each written as its values alone."""
    storage = random_tensor(torch.float32, (24,), 3)
    state = {"all": storage, "middle": storage[4:10], "matrix": storage[12:].view(3, 4),
             "transposed": random_tensor(torch.float16, (4, 3), 4).t()}
    ours = rewrite(saved(state, tmp_path / "torch"), tmp_path / HEAD)
    assert_bit_equal(torch.load(ours, weights_only=True), state)
    copies = {name: tensor.contiguous().clone() for name, tensor in state.items()}
    assert_torch_save_bytes(ours, saved(copies, tmp_path / "copies"))


def test_a_strided_view_is_refused_not_written_wrong(tmp_path):
    source = saved({"every other": torch.arange(8.0)[::2]}, tmp_path / "torch")
    with pytest.raises(InputError, match="not stored contiguously"):
        rewrite(source, tmp_path / HEAD)


@st.composite
def state_dicts(draw):
    names = draw(st.lists(st.text(min_size=1, max_size=8), max_size=4, unique=True))
    return {f"heads.{name}": random_tensor(draw(st.sampled_from(DTYPES)),
                                           tuple(draw(st.lists(st.integers(0, 5), max_size=3))), seed)
            for seed, name in enumerate(names)}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(state=state_dicts())
def test_any_small_state_dict(state):
    with tempfile.TemporaryDirectory() as folder:
        source = saved(state, Path(folder) / "torch")
        ours = rewrite(source, Path(folder) / HEAD)
        assert_torch_save_bytes(ours, source)
        assert_bit_equal(torch.load(ours, weights_only=True), state)
