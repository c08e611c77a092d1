"""One tensor as seen from a file header: enough to classify heads and to copy bytes, never the bytes."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TensorInfo:
    name: str
    dtype: str  # safetensors dtype code: F32, F16, BF16, I64, ...
    shape: tuple[int, ...] | None  # None when only a shard index names the tensor
    file: str  # path relative to the checkpoint folder
    # Byte span of the tensor data inside `file` (safetensors) or inside its zip storage member (.bin);
    # None when the format does not give one.
    span: tuple[int, int] | None = None
    storage: str | None = None  # .bin only: the zip member holding the storage, e.g. "archive/data/3"
    # .bin only: a 2-D tensor stored transposed (GPT-2's Conv1D weights as some writers save them): the span
    # then holds shape[::-1] contiguously
    transposed: bool = False


class TensorIndex(dict):
    """Tensor name -> TensorInfo of one weights file, and `notes`: what its reader saw there that no writer
    writes but loaders read anyway (each note one line, for a warning naming the file)."""

    notes: tuple[str, ...] = ()
