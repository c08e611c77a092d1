"""Malformed checkpoint folders of issue 21, classes 1-4, each built at test time from a clean fixture.

A case is a folder no loader reads as the checkpoint it pretends to be: a file the user may not read, a
folder they may not list, something that is not a regular file under a name headcheck reads, JSON of the
wrong shape, a shard index that disagrees with its shards. headcheck's answer to each is exit 2 (input
unreadable), one line naming the file, and nothing written. The lone-surrogate cases are the exception:
transformers reads such a label (Python strings may hold lone surrogates), so they must scan and migrate
like their clean fixture, in every output format.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from helpers import CHECKPOINTS

UNREADABLE = 2


@dataclass(frozen=True)
class Case:
    klass: int
    name: str
    build: Callable[[Path], Path]  # writes the case under a fresh folder, returns the target to scan
    named: str  # what the one error line must name
    codes: frozenset[int] = field(default=frozenset({UNREADABLE}))  # exit codes scan and migrate may end with
    unprivileged: bool = False  # a permission case: run where file modes bind (root bypasses them)

    @property
    def id(self) -> str:
        return f"c{self.klass}-{self.name}"


def _copy(fixture: str, tmp: Path) -> Path:
    folder = tmp / "ckpt"
    shutil.copytree(CHECKPOINTS / fixture, folder)
    return folder


def _edit_json(fixture: str, file: str, edit: Callable[[dict], object]) -> Callable[[Path], Path]:
    """A copy of FIXTURE whose FILE is replaced by what EDIT returns for its parsed content (or the edited
    content itself when EDIT returns None)."""
    def build(tmp: Path) -> Path:
        folder = _copy(fixture, tmp)
        data = json.loads((folder / file).read_text())
        result = edit(data)
        (folder / file).write_text(json.dumps(data if result is None else result))
        return folder
    return build


def _raw_json(fixture: str, file: str, text: str) -> Callable[[Path], Path]:
    def build(tmp: Path) -> Path:
        folder = _copy(fixture, tmp)
        (folder / file).write_text(text)
        return folder
    return build


# --- class 1: tracebacks -------------------------------------------------------------------------------------

FILE_FIXTURES = {  # a fixture holding each file name a checkpoint folder is read by
    "config.json": "bert-seq-cls", "model.safetensors": "bert-seq-cls", "pytorch_model.bin": "bert-seq-cls-bin",
    "adapter_config.json": "adapter-static-head", "head_config.json": "adapter-static-head",
}


def _mode_000(file: str) -> Callable[[Path], Path]:
    def build(tmp: Path) -> Path:
        folder = _copy(FILE_FIXTURES[file], tmp)
        (folder / file).chmod(0)
        return folder
    return build


def _unlistable(mode: int) -> Callable[[Path], Path]:
    def build(tmp: Path) -> Path:
        folder = _copy("bert-seq-cls", tmp)
        folder.chmod(mode)
        return folder
    return build


def _inside_unsearchable(tmp: Path) -> Path:
    """A checkpoint inside a folder the user may not enter (no x bit): not even its name can be looked up."""
    locked = tmp / "locked"
    locked.mkdir()
    folder = _copy("bert-seq-cls", locked)
    locked.chmod(0o600)
    return folder


def _surrogate_label(tmp: Path) -> Path:
    folder = _copy("bert-seq-cls", tmp)
    config = json.loads((folder / "config.json").read_text())
    config["id2label"]["0"] = "\udc80"
    config["label2id"] = {"\udc80": 0, "neutral": 1, "positive": 2}
    (folder / "config.json").write_text(json.dumps(config))  # ensure_ascii: the file holds the escape \udc80
    return folder


def _surrogate_head_label(tmp: Path) -> Path:
    folder = _copy("adapter-static-head", tmp)
    head = json.loads((folder / "head_config.json").read_text())
    head["label2id"] = {"\udc80": 0, "positive": 1}
    (folder / "head_config.json").write_text(json.dumps(head))
    return folder


def tracebacks() -> list[Case]:
    # the lone surrogate: readable, so whatever the clean fixture gets (bert-seq-cls 0, adapter-static-head 0)
    readable = frozenset({0, 1})
    return [
        Case(1, "surrogate-label-config.json", _surrogate_label, "config.json", readable),
        Case(1, "surrogate-label-head_config.json", _surrogate_head_label, "head_config.json", readable),
        *(Case(1, f"mode-000-{file}", _mode_000(file), file, unprivileged=True) for file in FILE_FIXTURES),
        Case(1, "unlistable-folder-000", _unlistable(0), "ckpt", unprivileged=True),
        Case(1, "unlistable-folder-x-only", _unlistable(0o111), "ckpt", unprivileged=True),
        Case(1, "unlistable-folder-read-only", _unlistable(0o444), "ckpt", unprivileged=True),
        Case(1, "inside-unsearchable-folder", _inside_unsearchable, "ckpt", unprivileged=True),
    ]


# --- class 2: not a regular file where a file should be ------------------------------------------------------

def _not_regular(file: str, kind: str) -> Callable[[Path], Path]:
    def build(tmp: Path) -> Path:
        folder = _copy(FILE_FIXTURES[file], tmp)
        path = folder / file
        path.unlink()
        if kind == "directory":
            path.mkdir()
            (path / "inner.json").write_text("{}")
        elif kind == "fifo":
            os.mkfifo(path)
        elif kind == "char-device":  # /dev/null's numbers; making a device node needs root (CAP_MKNOD)
            os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))
        elif kind == "dangling-symlink":
            path.symlink_to(tmp / "nowhere" / file)
        elif kind == "symlink-loop":
            path.symlink_to(path.name)
        return folder
    return build


NOT_REGULAR_KINDS = ("directory", "fifo", "char-device", "dangling-symlink", "symlink-loop")


def not_regular() -> list[Case]:
    return [Case(2, f"{kind}-{file}", _not_regular(file, kind), file)
            for file in FILE_FIXTURES for kind in NOT_REGULAR_KINDS]


# --- class 3: JSON of the wrong shape ------------------------------------------------------------------------

TOP_LEVEL = {"array": "[1, 2]", "string": '"config"', "number": "3", "null": "null"}
SHAPED_FILES = {"config.json": "bert-seq-cls", "adapter_config.json": "adapter-static-head",
                "head_config.json": "adapter-static-head", "model.safetensors.index.json": "sharded"}


def _set(key: str, value: object) -> Callable[[dict], None]:
    return lambda data: data.__setitem__(key, value)


# (file, key, value): each a value transformers (or adapters) refuses for that key
WRONG_FIELDS = [
    ("config.json", "hidden_size", "32"),
    ("config.json", "hidden_size", [32]),
    ("config.json", "hidden_size", -32),
    ("config.json", "hidden_size", 32.5),
    ("config.json", "num_hidden_layers", -1),
    ("config.json", "num_attention_heads", "2"),
    ("config.json", "vocab_size", -5),
    ("config.json", "num_labels", -2),
    ("config.json", "num_labels", "2"),
    ("config.json", "model_type", 3),
    ("config.json", "architectures", "BertForSequenceClassification"),
    ("config.json", "id2label", ["NEGATIVE", "POSITIVE"]),
    ("adapter_config.json", "config", 3),
    ("adapter_config.json", "config", [1]),
    ("adapter_config.json", "hidden_size", "8"),
    ("adapter_config.json", "hidden_size", -8),
    ("head_config.json", "num_labels", "2"),
    ("head_config.json", "num_labels", -2),
    ("head_config.json", "label2id", ["negative", "positive"]),
    ("head_config.json", "config", 3),
    ("head_config.json", "hidden_size", "8"),
]


def _shown(value: object) -> str:
    """A field value for a test id, without the brackets and quotes that make ids hard to select."""
    if isinstance(value, list):
        return "list:" + ",".join(map(str, value))
    return f"str:{value}" if isinstance(value, str) else str(value)


def wrong_shape() -> list[Case]:
    cases = [Case(3, f"top-level-{shape}-{file}", _raw_json(fixture, file, text), file)
             for file, fixture in SHAPED_FILES.items() for shape, text in TOP_LEVEL.items()]
    for file, key, value in WRONG_FIELDS:
        cases.append(Case(3, f"{key}={_shown(value)}-{file}", _edit_json(SHAPED_FILES[file], file, _set(key, value)),
                          file))
    infinity = (CHECKPOINTS / "bert-seq-cls" / "config.json").read_text().replace('"hidden_size": 8',
                                                                                 '"hidden_size": Infinity')
    cases.append(Case(3, "hidden_size=Infinity-config.json", _raw_json("bert-seq-cls", "config.json", infinity),
                      "config.json"))
    return cases


# --- class 4: shard indexes ----------------------------------------------------------------------------------

INDEX = "model.safetensors.index.json"


def _index_edit(edit: Callable[[dict], None]) -> Callable[[Path], Path]:
    return _edit_json("sharded", INDEX, edit)


def _unlisted_tensor(index: dict) -> None:
    del index["weight_map"]["classifier.bias"]  # still in its shard: the index no longer lists it


TWICE = "bert.embeddings.LayerNorm.bias"


def _tensor_in_two_shards(tmp: Path) -> Path:
    from safetensors.torch import load_file, save_file

    folder = _copy("sharded", tmp)
    index = json.loads((folder / INDEX).read_text())
    first, second = sorted(set(index["weight_map"].values()))
    one_name = TWICE
    assert index["weight_map"][one_name] == first
    tensors = load_file(folder / second)
    tensors[one_name] = load_file(folder / first)[one_name]
    save_file(tensors, folder / second, metadata={"format": "pt"})
    return folder


def _pickle_shard(tmp: Path) -> Path:
    """A safetensors index naming a torch.save pickle as its one shard (transformers opens it with
    safetensors and fails)."""
    folder = _copy("bert-seq-cls-bin", tmp)
    shard = "pytorch_model-00001-of-00001.bin"
    (folder / "pytorch_model.bin").rename(folder / shard)
    from headcheck.read.pickle_index import read_pickle_index

    names = read_pickle_index(folder / shard, shard)
    (folder / INDEX).write_text(json.dumps({"metadata": {"total_size": 0},
                                            "weight_map": {name: shard for name in names}}))
    return folder


def _duplicate_listing(tmp: Path) -> Path:
    folder = _copy("sharded", tmp)
    text = (folder / INDEX).read_text()
    entry = '"classifier.bias": "model-00002-of-00002.safetensors"'
    assert entry in text
    twice = f'{entry},\n    "classifier.bias": "model-00001-of-00002.safetensors"'  # a JSON object with the key twice
    (folder / INDEX).write_text(text.replace(entry, twice))
    return folder


def shard_indexes() -> list[Case]:
    def metadata(key, value):
        return lambda index: index["metadata"].__setitem__(key, value)

    return [
        Case(4, "empty-weight_map", _index_edit(lambda index: index.__setitem__("weight_map", {})), INDEX),
        Case(4, "total_size-string", _index_edit(metadata("total_size", "3948")), INDEX),
        Case(4, "total_size-float", _index_edit(metadata("total_size", 3948.5)), INDEX),
        Case(4, "total_size-negative", _index_edit(metadata("total_size", -1)), INDEX),
        Case(4, "metadata-list", _index_edit(_set("metadata", [3948])), INDEX),
        Case(4, "metadata-string", _index_edit(_set("metadata", "3948")), INDEX),
        Case(4, "tensor-listed-twice", _duplicate_listing, INDEX),
        Case(4, "tensor-in-two-shards", _tensor_in_two_shards, TWICE),
        Case(4, "shard-tensor-not-listed", _index_edit(_unlisted_tensor), "classifier.bias"),
        Case(4, "safetensors-index-pickle-shard", _pickle_shard, "pytorch_model-00001-of-00001.bin"),
    ]


def cases() -> list[Case]:
    return [*tracebacks(), *not_regular(), *wrong_shape(), *shard_indexes()]
