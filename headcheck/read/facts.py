"""Facts: one immutable description of a checkpoint, built once from config files and weight headers."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from . import sniff
from .config_fields import check_fields, check_object
from ..errors import InputError, NothingScannedError, UnsafePickleError
from ..model import Finding, Severity
from .local import LocalFolder, Source, check_not_pointer, read_card_file, read_json_file, read_weights_file
from .names import CARD_FILE, CONFIG_FILES, SHARD, SHARD_INDEXES, SIDE_CONFIGS, WEIGHT_FILES
from .shard_index import check_shard_holds_its_tensors, weight_map_of
from .tensor_info import TensorIndex, TensorInfo


def files_of_role(files: tuple[str, ...], role: str) -> tuple[str, ...]:
    """Every weight file (single, index or shard) a loader may read for ROLE: the judged one and its twins in
    the other format, which a migration supersedes too."""
    stems = {name.split(".")[0] for name, r in WEIGHT_FILES.items() if r == role}
    return tuple(name for name in files if WEIGHT_FILES.get(name) == role or SHARD_INDEXES.get(name) == role
                 or ((match := SHARD.fullmatch(name)) is not None and match["stem"] in stems))


@dataclass(frozen=True)
class ConfigDoc:
    file: str
    role: str  # one of sniff.ROLES
    data: Mapping[str, Any]


@dataclass(frozen=True)
class Facts:
    root: str
    files: tuple[str, ...]
    docs: Mapping[str, ConfigDoc]  # role -> document
    weights: Mapping[str, Mapping[str, TensorInfo]]  # weight role -> tensor name -> info
    weight_files: Mapping[str, tuple[str, ...]]
    card: Mapping[str, Any] | None = None
    read_findings: tuple[Finding, ...] = field(default=())
    side_configs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # file -> SIDE_CONFIGS document

    def doc(self, role: str) -> Mapping[str, Any] | None:
        found = self.docs.get(role)
        return found.data if found else None

    def doc_file(self, role: str) -> str | None:
        found = self.docs.get(role)
        return found.file if found else None


def _read_shards(source: Source, index_rel: str) -> tuple[dict[str, TensorInfo], tuple[str, ...]]:
    weight_map = weight_map_of(source.read_json(index_rel), index_rel)
    tensors = TensorIndex()
    shards = tuple(sorted(set(weight_map.values())))
    present = set(source.files())
    for shard in shards:
        if shard not in present:
            raise InputError(f"{index_rel}: shard {shard!r} is missing")
        found = source.read_weights(shard)
        check_shard_holds_its_tensors(weight_map, shard, found, index_rel)
        tensors.update(found)
        tensors.notes += tuple(f"{shard}: {note}" for note in getattr(found, "notes", ()))  # HC134 per shard
    missing = sorted(set(weight_map) - set(tensors))
    if missing:
        raise InputError(f"{index_rel}: {len(missing)} tensors listed but absent from their shards, e.g. {missing[0]!r}")
    return tensors, (index_rel, *shards)


class _Collector:
    def __init__(self):
        self.docs: dict[str, ConfigDoc] = {}
        self.weights: dict[str, dict[str, TensorInfo]] = {}
        self.weight_files: dict[str, list[str]] = {}
        self.findings: list[Finding] = []

    def add_doc(self, rel: str, data: Any, expected_name: str | None) -> None:
        if expected_name is not None:
            check_object(data, rel)
        role = sniff.json_role(data, expected_name)
        check_fields(role, data, rel)
        self.docs.setdefault(role, ConfigDoc(rel, role, MappingProxyType(data) if isinstance(data, dict) else {}))

    def add_weights(self, role: str, rel: str, read) -> None:
        twin = role in self.weights  # the safetensors twin was read already and is the one judged...
        if twin and ".bin" not in rel:
            return
        try:  # ...but a pickle beside it is read too: loaders pick it up (use_safetensors=False)
            tensors, files = read()
        except UnsafePickleError as exc:
            self.findings.append(
                Finding(
                    "HC001",
                    Severity.ERROR,
                    f"{rel} references code outside the allow-list ({', '.join(exc.globals_found)}); not loaded",
                    file=rel,
                    hint="re-save the weights as safetensors from a trusted copy",
                )
            )
            if not twin:
                self.weight_files[role] = [rel]
                self.weights[role] = {}
            return
        for note in getattr(tensors, "notes", ()):  # read as torch.load reads it, but no writer wrote this
            self.findings.append(Finding(
                "HC134", Severity.WARNING,
                f"{rel}: {note}; torch.load reads the file anyway, a strict reader refuses it",
                file=rel, hint="re-save the weights (as safetensors) from a trusted copy"))
        if not twin:
            self.weights[role] = tensors
            self.weight_files[role] = list(files)


def build_facts(path: Path) -> Facts:
    """Read a local checkpoint folder, or a single config/weights file, into Facts (headers only)."""
    try:
        is_folder = stat.S_ISDIR(path.stat().st_mode)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file or directory") from None
    except OSError as exc:  # a folder on the way the user may not enter, a symlink loop
        raise InputError(f"{path}: cannot be read ({exc.strerror})") from None
    if is_folder:
        return build_facts_from(LocalFolder(path))
    if path.name.endswith((".safetensors", ".bin")):
        # judge the folder they are in; a config there that is no regular file is refused by that folder's scan
        if not any(os.path.lexists(path.parent / name) for name in CONFIG_FILES):
            raise _weights_alone(str(path), "beside it")
        return build_facts_from(LocalFolder(path.parent))
    collector = _Collector()
    try:
        _collect_file(collector, path)
    except (InputError, NothingScannedError) as exc:  # the readers name the file alone: say which folder it is in
        if str(exc).startswith(f"{path.name}:") and str(path) != path.name:
            exc.args = (f"{path}{str(exc)[len(path.name):]}",)
        raise
    return _facts(str(path), (path.name,), collector, None)


def build_facts_from(source: Source) -> Facts:
    """Read a checkpoint folder from any source (local folder, Hub repository, git tree) into Facts.
    Errors name the checkpoint and the file once: `folder/model.safetensors: corrupt ...`."""
    try:
        return _read_folder(source)
    except (InputError, NothingScannedError) as exc:
        message = str(exc)
        if not message.startswith(source.label):
            file, sep, _ = message.partition(": ")
            in_file = bool(sep) and file in source.files()
            exc.args = (f"{source.label}/{message}" if in_file else f"{source.label}: {message}",)
        raise


def _read_folder(source: Source) -> Facts:
    files = source.files()
    collector = _Collector()
    for name in CONFIG_FILES:
        if name in files:
            collector.add_doc(name, source.read_json(name), name)
    for name, role in SHARD_INDEXES.items():
        if name in files:
            collector.add_weights(role, name, lambda name=name: _read_shards(source, name))
    for name, role in WEIGHT_FILES.items():
        if name in files:
            collector.add_weights(role, name, lambda name=name: (source.read_weights(name), (name,)))
    card = source.read_card(CARD_FILE) if CARD_FILE in files else None
    if collector.weights and not collector.docs and not collector.findings:
        raise _weights_alone(source.label, "in the folder")
    if isinstance(source, LocalFolder) and (collector.docs or collector.weights):  # others would download them
        _collect_pickled_arrays(collector, source.root, files)
    return _facts(source.label, files, collector, card, _side_configs(source, files))


def _collect_pickled_arrays(collector: _Collector, root: Path, files: tuple[str, ...]) -> None:
    for name in files:
        if name.endswith((".npy", ".npz")):
            from .numpy_header import pickled_arrays  # pickletools and ast only where numpy files lie

            for line in pickled_arrays(root / name, name):
                collector.findings.append(Finding(
                    "HC135", Severity.WARNING, f"{line}: np.load loads it only with allow_pickle=True, which runs it; "
                    "headcheck does not read the pickle", file=name,
                    hint="save numeric arrays (or JSON / safetensors); never load it with allow_pickle=True"))


def _side_configs(source: Source, files: tuple[str, ...]) -> dict[str, Mapping[str, Any]]:
    found = {}
    for name in SIDE_CONFIGS:
        if name in files:
            try:
                data = source.read_json(name)
            except InputError:  # a broken tokenizer config fails the tokenizer, not the weights judged here
                continue
            if isinstance(data, dict):
                found[name] = MappingProxyType(data)
    return found


def _weights_alone(where: str, place: str) -> NothingScannedError:
    # weights say nothing about their head without the config that names it
    return NothingScannedError(f"{where}: weights alone cannot be judged: no config.json, adapter_config.json or "
                               f"head_config.json {place}")


def _facts(root: str, files: tuple[str, ...], collector: _Collector, card,
           side_configs: Mapping[str, Mapping[str, Any]] | None = None) -> Facts:
    if not collector.docs and not collector.weights and not collector.findings:
        raise NothingScannedError(f"{root}: no checkpoint files found (config.json, adapter_config.json, head_config.json, weights)")
    return Facts(
        root=root,
        files=files,
        docs=MappingProxyType(collector.docs),
        weights=MappingProxyType({k: MappingProxyType(v) for k, v in collector.weights.items()}),
        weight_files=MappingProxyType({k: tuple(v) for k, v in collector.weight_files.items()}),
        card=card,
        read_findings=tuple(collector.findings),
        side_configs=MappingProxyType(side_configs or {}),
    )


def _collect_file(collector: _Collector, path: Path) -> None:
    name = path.name
    if name.endswith((".safetensors", ".bin")):
        role = sniff.weight_role(name)
        collector.add_weights(role, name, lambda: (read_weights_file(path, name), (name,)))
    elif name.endswith(".json"):
        data = read_json_file(path, name)
        if sniff.is_shard_index(data):
            weight_map_of(data, name)  # scanned alone: its shards are not read, but its shape is checked
            collector.add_weights("model", name, lambda: (sniff.names_only_index(data, name), ()))
        else:
            collector.add_doc(name, data, name if name in CONFIG_FILES else None)
    elif name == CARD_FILE or name.endswith(".md"):
        card = read_card_file(path)
        raise NothingScannedError(
            f"{name}: a model card only, no checkpoint files"
            + (f" (card declares library {card.get('library_name')!r})" if card and card.get("library_name") else "")
        )
    else:
        check_not_pointer(path, name)
        raise NothingScannedError(f"{name}: not a checkpoint file (expected config JSON, .safetensors or .bin)")
