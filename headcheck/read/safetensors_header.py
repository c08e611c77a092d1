"""Read a safetensors header (names, dtypes, shapes, byte spans) without touching tensor data.

Hand-written because the safetensors package exposes no byte offsets and needs numpy or torch to open a file.
"""

from __future__ import annotations

import struct
from pathlib import Path

from ..errors import InputError
from .json_text import parse_json, quoted
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
    """Turn header JSON bytes into tensor infos (spans are absolute offsets in the file), refusing whatever
    the format's reference reader refuses: each problem is one line naming the file."""
    def corrupt(problem: str) -> InputError:
        return InputError(f"{rel_name}: corrupt safetensors header ({problem})")

    try:
        header = parse_json(raw, rel_name)
    except InputError as exc:
        raise corrupt(str(exc).removeprefix(rel_name + ": ")) from None
    if not isinstance(header, dict):
        raise corrupt("not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise corrupt("__metadata__ must map strings to strings")
    data_start = 8 + len(raw)
    tensors: dict[str, TensorInfo] = {}
    spans = []
    for name, entry in header.items():
        shown = quoted(name)
        if not (isinstance(entry, dict) and isinstance(entry.get("dtype"), str) and isinstance(entry.get("shape"), list)
                and isinstance(entry.get("data_offsets"), list) and len(entry["data_offsets"]) == 2):
            raise corrupt(f"bad entry for tensor {shown}")
        dtype, shape, (begin, end) = entry["dtype"], entry["shape"], entry["data_offsets"]
        if not all(type(d) is int and d >= 0 for d in shape):  # bool is not an int here, nor 2.0 or "2"
            raise corrupt(f"tensor {shown}: shape {quoted(str(shape))} is not a list of non-negative integers")
        if not (type(begin) is int and type(end) is int and 0 <= begin <= end):
            raise corrupt(f"tensor {shown}: data_offsets {quoted(str(entry['data_offsets']))} are not a byte range")
        if end > data_size:
            raise InputError(f"{rel_name}: corrupt or truncated safetensors file "
                             f"(tensor {shown} spans bytes {begin}..{end}, data holds {data_size})")
        if dtype not in DTYPE_SIZES:
            raise corrupt(f"tensor {shown}: unknown dtype {quoted(dtype)}")
        if nbytes(dtype, tuple(shape)) != end - begin:
            raise corrupt(f"tensor {shown}: {dtype} {shape} does not fit its {end - begin} bytes")
        spans.append((begin, end, shown))
        tensors[name] = TensorInfo(name, dtype, tuple(shape), rel_name, (data_start + begin, data_start + end))
    at = 0
    for begin, end, shown in sorted(spans):  # the data area is the tensors, back to back, nothing else
        if begin != at:
            raise corrupt(f"tensor {shown} starts at byte {begin}, expected {at} (gap or overlap)")
        at = end
    if at != data_size:
        raise corrupt(f"{data_size - at} bytes after the last tensor")
    return tensors, metadata


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
