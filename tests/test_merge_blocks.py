"""A LoRA merge streamed a block of rows at a time (MergedTensor.chunks) writes what the whole-tensor merge computes,
in every dtype headcheck merges (issue 18 #6: peak memory one block, not one matrix). Equal to the last bit but for
one rounding: a one-row block is a vector-matrix product, which BLAS may sum in another order than a matrix product."""

from __future__ import annotations

import json
import struct

import pytest

np = pytest.importorskip("numpy")

from headcheck.migration import merge  # noqa: E402
from headcheck.migration.merge import MergedTensor  # noqa: E402
from headcheck.read.safetensors_header import read_safetensors_index  # noqa: E402


def _write(path, tensors: dict[str, tuple[str, np.ndarray]]) -> None:
    header, blobs, offset = {}, [], 0
    for name, (dtype, array) in tensors.items():
        blob = array.tobytes()
        header[name] = {"dtype": dtype, "shape": list(array.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"".join(blobs))


@pytest.mark.parametrize("dtype", ["F32", "F16", "BF16"])
@pytest.mark.parametrize("block_bytes", [1, 4 * 24 * 5, 1 << 20])  # one row, 5 rows (last block short), whole
def test_row_blocks_give_the_whole_merge(tmp_path, monkeypatch, dtype, block_bytes):
    rng = np.random.default_rng(0)
    rows, cols, rank = 37, 24, 4

    def stored(shape):
        values = rng.normal(size=shape).astype(np.float32)
        if dtype == "BF16":
            return (values.view("<u4") >> 16).astype("<u2")
        return values.astype(merge.FLOATS[dtype])

    _write(tmp_path / "model.safetensors", {"w": (dtype, stored((rows, cols))), "a": (dtype, stored((rank, cols))),
                                            "b": (dtype, stored((rows, rank)))})
    index = read_safetensors_index(tmp_path / "model.safetensors", "model.safetensors")[0]
    tensor = MergedTensor("w", index["w"], "lora", 2.0, index["a"], index["b"])
    monkeypatch.setattr(merge, "BLOCK_BYTES", block_bytes)
    streamed = b"".join(bytes(chunk) for chunk in tensor.chunks(tmp_path))
    whole = bytes(memoryview(tensor.compute(tmp_path)).cast("B"))
    assert len(streamed) == len(whole) == rows * cols * (4 if dtype == "F32" else 2)
    if streamed != whole:
        got, want = _floats(streamed, dtype), _floats(whole, dtype)
        ulp = {"F32": 2.0 ** -23, "F16": 2.0 ** -10, "BF16": 2.0 ** -7}[dtype]
        # a few roundings of terms of magnitude ~1 (normal draws; rank-4 sums scaled by 2)
        assert np.allclose(got, want, rtol=4 * ulp, atol=16 * ulp)


def _floats(raw: bytes, dtype: str):
    if dtype == "BF16":
        return (np.frombuffer(raw, "<u2").astype("<u4") << 16).view("<f4").astype(np.float64)
    return np.frombuffer(raw, merge.FLOATS[dtype]).astype(np.float64)
