"""The base model an adapter folder was trained on (`--base DIR|org/name`, default adapter_config.json's
model_name): a local folder, or a Hub repository read through huggingface_hub's cache.

From the Hub only what a loader of the base reads is fetched: config.json and, when asked for, the weights
transformers would load (never code, tokenizer or other files), all at one commit. HF_HUB_OFFLINE=1 answers from
the cache alone, whoever filled it (headcheck, transformers, huggingface_hub).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError
from .local import names_hub_repo, read_json_file
from .shard_index import weight_map_of

# the order transformers tries them in (modeling_utils): safetensors first, a single file before a shard index
WEIGHT_NAMES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")


class BaseModelNameError(ValueError):
    """No base model is named, or its name is neither a local folder nor a Hub repository id (a usage error)."""


@dataclass(frozen=True)
class BaseModel:
    name: str  # as --base or adapter_config.json's model_name spells it
    config_file: Path
    folder: Path | None  # holds config.json and the weights; None for a Hub base asked for its config only
    revision: str | None = None  # the Hub commit it was read at; None for a local folder

    def config(self) -> dict[str, Any]:
        return read_json_file(self.config_file, f"{self.name}/config.json")


def base_location(named: str | os.PathLike | None) -> Path | str:
    """The local folder, or the Hub repository id, that `named` stands for (a folder wins, relative to the current
    directory as transformers' from_pretrained reads it); BaseModelNameError when it is neither."""
    if not named:
        raise BaseModelNameError("an adapter folder's export needs its base model: --base DIR|org/name "
                                 "(adapter_config.json names none in model_name)")
    if Path(named).is_dir():
        return Path(named).resolve()
    if names_hub_repo(str(named)):
        return str(named)
    bare = "/" not in str(named) and not Path(named).suffix
    raise BaseModelNameError(f"base model {named}: no such folder, and no Hub repository id (org/name"
                             + (f", e.g. google-bert/{named}" if bare else "") + "); pass --base DIR|org/name")


def base_model(named: str | os.PathLike | None, *, weights: bool = True, token: str | None = None) -> BaseModel:
    """The base model `named` names, with its weights or (weights=False) its config.json only. A Hub base raises
    InputError, in one line, when it cannot be read (no such repository, unreachable, not in the offline cache);
    `token` reads private ones (default: HF_TOKEN or huggingface_hub's stored login)."""
    where = base_location(named)
    if isinstance(where, Path):
        return BaseModel(str(named), where / "config.json", where)
    return _from_hub(where, token, weights)


def _from_hub(name: str, token: str | None, weights: bool) -> BaseModel:
    from .hub import HubAccess, HubRepo, offline  # huggingface_hub's network stack only for a Hub base

    label = f"base model {name}"
    if offline():  # the cache alone, whoever filled it: ask it for each file transformers would read
        hub = HubAccess(name, token=token, label=label)
        config = hub.fetch("config.json", hub.revision, optional=True)
        if config is None:
            raise InputError(f"{label}: no config.json in the local cache (HF_HUB_OFFLINE=1)")
        commit = hub.snapshot_commit(config)  # every other file is read at this commit

        def get(rel: str) -> Path | None:
            return hub.fetch(rel, commit, optional=True)
    else:  # the listing at one commit says what is there (and fails fast when the Hub cannot be reached)
        hub = HubRepo(name, token=token, label=label)
        commit = hub.sha

        def get(rel: str) -> Path | None:
            return hub.download(rel) if rel in hub.files() else None

        if (config := get("config.json")) is None:
            raise InputError(f"{label}: no config.json in the repository")
    if not weights:
        return BaseModel(name, config, None, commit)
    files = {"config.json": config}
    for weights_file in WEIGHT_NAMES:
        if (found := get(weights_file)) is not None:
            files[weights_file] = found
            if weights_file.endswith(".index.json"):
                index = weight_map_of(read_json_file(found, weights_file), weights_file)
                for shard in sorted(set(index.values())):
                    if (files.setdefault(shard, get(shard))) is None:
                        raise InputError(f"{label}: {weights_file} lists {shard}, which is not there"
                                         + (" (HF_HUB_OFFLINE=1: not in the local cache)" if hub.offline else ""))
            break
    else:
        where = " in the local cache (HF_HUB_OFFLINE=1)" if hub.offline else ""
        raise InputError(f"{label}: no weights ({', '.join(WEIGHT_NAMES)}){where}")
    folder = hub.cache_dir / "headcheck" / "bases" / hub.storage / commit / hub.subfolder / list(files)[1]
    return BaseModel(name, config, _linked(folder, files).resolve(), commit)  # resolved: as a local base is


def _linked(folder: Path, files: dict[str, Path]) -> Path:
    """A folder of links to exactly these cached files, made once per commit and weights file, whole: it is
    renamed into place when complete, so a concurrent run sees all of it or none."""
    if folder.is_dir():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    for name, target in files.items():  # relative links: the cache may be moved as a whole
        (tmp / name).symlink_to(os.path.relpath(target, tmp))
    try:
        tmp.rename(folder)
    except OSError:  # another run made it meanwhile: the same links
        shutil.rmtree(tmp, ignore_errors=True)
        if not folder.is_dir():
            raise
    return folder
