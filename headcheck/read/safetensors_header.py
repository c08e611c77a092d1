"""Read a safetensors header (names, dtypes, shapes, byte spans) without touching tensor data.

Hand-written because the safetensors package exposes no byte offsets and needs numpy or torch to open a file.
"""

from __future__ import annotations

import struct
from pathlib import Path

from ..errors import InputError
from .json_text import parse_json
from .tensor_info import TensorInfo

# A header larger than this is not a real checkpoint (the format's own reader caps it at 100 MB).
MAX_HEADER_BYTES = 100_000_000
DTYPE_SIZES = {
    "F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U64": 8, "U32": 4,
    "U16": 2, "U8": 1, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1, "F8_E8M0": 1, "F4": 1, "F6_E2M3": 1, "F6_E3M2": 1,
}


def nbytes(dtype: str, shape: tuple[int, ...] | None) -> int:
    """Bytes a tensor of this dtype and shape occupies."""
    length = DTYPE_SIZES[dtype]
    for dim in shape or ():
        length *= dim
    return length


def parse_header(raw: bytes, data_size: int, rel_name: str) -> tuple[dict[str, TensorInfo], dict[str, str]]:
    """Turn header JSON bytes into tensor infos; spans are absolute offsets in the file."""
    try:
        header = parse_json(raw, rel_name)
    except InputError as exc:
        raise InputError(f"{rel_name}: corrupt safetensors header ({str(exc).removeprefix(rel_name + ': ')})") from None
    if not isinstance(header, dict):
        raise InputError(f"{rel_name}: corrupt safetensors header (not a JSON object)")
    metadata = header.pop("__metadata__", None) or {}
    data_start = 8 + len(raw)
    tensors: dict[str, TensorInfo] = {}
    for name, entry in header.items():
        try:
            dtype, shape, (begin, end) = entry["dtype"], tuple(int(d) for d in entry["shape"]), entry["data_offsets"]
        except (TypeError, KeyError, ValueError):
            raise InputError(f"{rel_name}: corrupt safetensors header (bad entry for tensor {name!r})") from None
        if not (isinstance(begin, int) and isinstance(end, int) and 0 <= begin <= end <= data_size):
            raise InputError(
                f"{rel_name}: corrupt or truncated safetensors file "
                f"(tensor {name!r} spans bytes {begin}..{end}, data holds {data_size})"
            )
        if dtype not in DTYPE_SIZES or nbytes(dtype, shape) != end - begin:
            raise InputError(
                f"{rel_name}: corrupt safetensors header (tensor {name!r}: {dtype} {list(shape)} "
                f"does not fit its {end - begin} bytes)"
            )
        tensors[name] = TensorInfo(name, dtype, shape, rel_name, (data_start + begin, data_start + end))
    return tensors, metadata if isinstance(metadata, dict) else {}


def read_safetensors_index(path: Path, rel_name: str) -> tuple[dict[str, TensorInfo], dict[str, str]]:
    """Tensor infos and `__metadata__` of a local safetensors file, reading only its header."""
    size = path.stat().st_size
    with path.open("rb") as fh:
        prefix = fh.read(8)
        if len(prefix) < 8:
            raise InputError(f"{rel_name}: truncated safetensors file ({size} bytes, no header)")
        (header_len,) = struct.unpack("<Q", prefix)
        if header_len > min(size - 8, MAX_HEADER_BYTES):
            raise InputError(
                f"{rel_name}: corrupt or truncated safetensors file "
                f"(header length {header_len} past the end of a {size}-byte file)"
            )
        raw = fh.read(header_len)
    return parse_header(raw, size - 8 - header_len, rel_name)
