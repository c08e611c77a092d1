"""PEFT's B matrix of a fused q/k/v layer's LoRA, composed from adapters' bytes (no arithmetic, so no numpy).

adapters' LoRAMergedLinear (GPT-2's c_attn) keeps one rank-r LoRA per matrix it adapts: A stacks their A blocks
[n*r, in], B their B blocks [n*rows, r], and a grouped product gives each block's output. PEFT holds one LoRA of rank
n*r on the whole layer: the same A, and a B of [len(blocks)*rows, n*r] whose rows of the j-th adapted matrix hold that
matrix's B in columns j*r..(j+1)*r and zeros elsewhere (zero rows for a matrix the adapter does not hold), so
B_peft @ A gives exactly the grouped product.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..read.safetensors_header import nbytes
from ..read.tensor_info import TensorInfo
from .plan import MigrationError
from .tensor_bytes import tensor_chunks


@dataclass(frozen=True)
class BlockLoraB:
    target: str
    source: TensorInfo  # adapters' B, [n * rows, r]
    blocks: tuple[bool, ...]  # per output block of the fused layer (q, k, v): whether the adapter holds it

    @property
    def dtype(self) -> str:
        return self.source.dtype

    @property
    def shape(self) -> tuple[int, ...]:
        held = sum(self.blocks)
        rows, rank = self.source.shape[0] // held, self.source.shape[1]
        return rows * len(self.blocks), rank * held

    @property
    def summary(self) -> str:
        return f"{self.source.name} in blocks, zeros where a matrix is not adapted"

    def chunks(self, root: Path):
        """One output block at a time; adapters' B is small (rows * r values), read whole."""
        data = b"".join(bytes(chunk) for chunk in tensor_chunks(root, self.source))
        held = sum(self.blocks)
        rows, rank = self.source.shape[0] // held, self.source.shape[1]
        row_bytes = nbytes(self.source.dtype, (rank,))
        if len(data) != rows * held * row_bytes:
            raise MigrationError(f"{self.source.name}: {len(data)} bytes read, {rows * held * row_bytes} expected")
        j = 0
        for on in self.blocks:
            if not on:
                yield memoryview(bytes(rows * held * row_bytes))  # the writer releases each chunk it takes
                continue
            before, after = bytes(j * row_bytes), bytes((held - j - 1) * row_bytes)
            first = j * rows * row_bytes
            yield memoryview(b"".join(before + data[first + i * row_bytes:first + (i + 1) * row_bytes] + after
                                      for i in range(rows)))
            j += 1
