"""Open the bytes of one tensor in its source file, as a bounded stream, for copying without loading."""

from __future__ import annotations

import contextlib
import io
import zipfile
from pathlib import Path
from typing import BinaryIO, Iterator

from ..errors import InputError
from ..read.tensor_info import TensorInfo


@contextlib.contextmanager
def open_tensor(root: Path, info: TensorInfo) -> Iterator[tuple[BinaryIO, int]]:
    """Yield (stream positioned at the tensor's first byte, byte count)."""
    if info.span is None:
        raise InputError(f"{info.file}: tensor {info.name!r} is not stored contiguously; re-save it to migrate")
    start, end = info.span
    if info.storage is None:  # safetensors: the span is absolute in the file
        with (root / info.file).open("rb") as fh:
            fh.seek(start)
            yield fh, end - start
        return
    with zipfile.ZipFile(root / info.file) as archive, archive.open(info.storage) as member:
        # Stored (uncompressed) members seek cheaply; torch.save never compresses storages.
        member.seek(start)
        yield member, end - start


@contextlib.contextmanager
def zero_tensor(length: int) -> Iterator[tuple[BinaryIO, int]]:
    yield io.BytesIO(bytes(length)), length
