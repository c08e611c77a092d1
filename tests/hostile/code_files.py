"""Files beside the weights that load code (issue 21, class 7), generated at test time: numpy arrays np.load
unpickles (object dtype, or no array at all) and configs whose `auto_map` / `custom_pipelines` name code shipped
with the checkpoint. Every pickle here would create the canary if anything loaded it.

`cases(canary)` maps a case name to (the rule it must raise, or None for a control, {file name: bytes}); the
files are added to (or replace those of) a clean checkpoint folder.
"""

from __future__ import annotations

import io
import json
import struct
import zipfile
from pathlib import Path

from .pickles import payloads


def npy(descr: object, payload: bytes, *, version: int = 1) -> bytes:
    """An .npy file as np.save writes it: magic, version, header length, a Python-literal dict, then the data."""
    header = repr({"descr": descr, "fortran_order": False, "shape": (1,)}).encode("latin1" if version < 3 else "utf8")
    prefix = 10 if version == 1 else 12
    header += b" " * (-(prefix + len(header) + 1) % 64) + b"\n"
    size = struct.pack("<H" if version == 1 else "<I", len(header))
    return b"\x93NUMPY" + bytes([version, 0]) + size + header + payload


def npz(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _config(folder: Path, **changes) -> bytes:
    config = json.loads((folder / "config.json").read_text())
    return json.dumps({**config, **changes}, indent=2).encode()


def cases(canary: Path, folder: Path) -> dict[str, tuple[str | None, dict[str, bytes]]]:
    """`folder`: the clean checkpoint the files go into (its config.json is the one edited)."""
    evil = payloads(canary)["os.system-p2"]
    floats = npy("<f4", b"\0" * 4)
    tokenizer = {"AutoTokenizer": ["tokenization_evil.EvilTokenizer", "tokenization_evil.EvilTokenizerFast"]}
    return {
        "npy-object": ("HC135", {"label_embeddings.npy": npy("|O", evil)}),
        "npy-object-v2": ("HC135", {"extra.npy": npy("|O", evil, version=2)}),
        "npy-object-v3": ("HC135", {"extra.npy": npy("|O", evil, version=3)}),
        "npy-object-field": ("HC135", {"records.npy": npy([("score", "<f4"), ("meta", "|O")], evil)}),
        "npy-nested-object-field": ("HC135", {"records.npy": npy([("outer", [("inner", "|O")])], evil)}),
        "npy-is-a-pickle": ("HC135", {"centroids.npy": evil}),
        "npz-object-member": ("HC135", {"extra.npz": npz({"floats.npy": floats, "labels.npy": npy("|O", evil)})}),
        "npz-object-member-any-name": ("HC135", {"extra.npz": npz({"labels": npy("|O", evil)})}),
        "npz-named-npy": ("HC135", {"extra.npy": npz({"labels.npy": npy("|O", evil)})}),  # np.load goes by bytes
        "config-custom-pipelines": ("HC136", {"config.json": _config(folder, custom_pipelines={
            "pair-classification": {"impl": "pair_pipeline.PairClassificationPipeline", "pt": ["AutoModel"]}})}),
        "config-auto-map-tokenizer": ("HC136", {"config.json": _config(folder, auto_map=tokenizer)}),
        "tokenizer-config-auto-map": ("HC136", {"tokenizer_config.json": json.dumps({"auto_map": tokenizer}).encode()}),
        "processor-config-auto-map": ("HC136", {"processor_config.json": json.dumps(
            {"auto_map": {"AutoProcessor": "processing_evil.EvilProcessor"}}).encode()}),
        "preprocessor-config-auto-map": ("HC136", {"preprocessor_config.json": json.dumps(
            {"auto_map": {"AutoImageProcessor": "other/repo--image_processing_evil.EvilImageProcessor"}}).encode()}),
        # controls: what numpy and transformers load without running code
        "npy-floats": (None, {"extra.npy": floats}),
        "npz-floats": (None, {"extra.npz": npz({"a.npy": floats, "notes.txt": b"not an array"})}),
        "npy-unreadable-header": (None, {"extra.npy": b"\x93NUMPY\x01\x00\x10\x00{'descr': __import__('os')}"}),
        "npy-lfs-pointer": (None, {"extra.npy": b"version https://git-lfs.github.com/spec/v1\noid sha256:" + b"0" * 64
                                                + b"\nsize 4096\n"}),  # not fetched: text, not a pickle
        "tokenizer-config-plain": (None, {"tokenizer_config.json": b'{"model_max_length": 512}'}),
        "config-auto-map-config-only": (None, {"config.json": _config(folder, auto_map={
            "AutoConfig": "configuration_evil.EvilConfig"})}),
    }
