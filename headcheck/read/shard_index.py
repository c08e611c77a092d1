"""A shard index (model.safetensors.index.json, pytorch_model.bin.index.json) as transformers reads it.

transformers trusts the index: it opens the shards it names (every one with safetensors for a safetensors
index), adds keys to its `metadata`, and loads whatever each shard holds. An index it cannot use, or one that
disagrees with its shards, describes no checkpoint a loader would build: unreadable input.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from ..errors import InputError
from .json_text import json_kind, quoted


def weight_map_of(index: Any, rel: str) -> dict[str, str]:
    """The index's weight_map (tensor name -> shard file), once the index has the shape loaders need."""
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
        raise InputError(f"{rel}: not a shard index (no weight_map of tensor name -> file)")
    if not weight_map:
        raise InputError(f"{rel}: the weight_map lists no tensors")
    metadata = index.get("metadata", {})
    if not isinstance(metadata, dict):  # transformers adds its own keys to it
        raise InputError(f"{rel}: metadata is {json_kind(metadata)}, not an object")
    total = metadata.get("total_size")
    if total is not None and (type(total) is not int or total < 0):
        raise InputError(f"{rel}: metadata.total_size is {quoted(repr(total))}, not a byte count")
    shards = sorted(set(weight_map.values()))
    for shard in shards:
        posix = PurePosixPath(shard)
        if posix.is_absolute() or ".." in posix.parts:
            raise InputError(f"{rel}: shard {shard!r} lies outside the checkpoint folder")
    if rel.endswith(".safetensors.index.json"):
        other = [shard for shard in shards if not shard.endswith(".safetensors")]
        if other:
            raise InputError(f"{rel}: names shard {quoted(other[0])}, but transformers opens every shard of a "
                             "safetensors index as safetensors")
    return weight_map


def check_shard_holds_its_tensors(weight_map: dict[str, str], shard: str, names, rel: str) -> None:
    """Every tensor in SHARD is one the index places there: a tensor the index does not list, or places in
    another shard, is loaded all the same (or twice), unseen by a judgement made from the index."""
    for name in names:
        listed = weight_map.get(name)
        if listed != shard:
            where = "does not list" if listed is None else f"places in {quoted(listed)}"
            raise InputError(f"{rel}: shard {quoted(shard)} holds tensor {quoted(name)}, which the index {where}")
