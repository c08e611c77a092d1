"""torch files a strict reader refuses (issue 21, class 5), generated at test time: each case bends one rule of
torch.save's format in an otherwise clean checkpoint (no payload anywhere).

`CASES` maps a case name to (what torch 2.13's torch.load(weights_only=True) does with it, builder). "refuses":
torch raises, so headcheck must say the file cannot be read (exit 2). "reads": torch loads it anyway, so headcheck
warns (HC134) rather than call it clean. Each builder gets the decoy's members (zips.members_of of the clean zip
make_fixtures writes for the tensors) and the tensors, and returns the file's bytes.
"""

from __future__ import annotations

import pickle
import struct
import zlib
from typing import Callable

from fixtures import make_fixtures
from headcheck.read.safetensors_header import DTYPE_SIZES
from . import zips

TENSORS = {"b": ("F16", (3,)), "w": ("F32", (4, 2))}  # the in-process decoy (keys in sorted order: b 0, w 1)


def data_pkl(tensors: make_fixtures.Tensors, *, key0: object = "0", location0: object = "cpu",
             stride_2d: Callable[[tuple[int, ...]], tuple[int, int]] | None = None, extra_proto: bytes = b"",
             proto_at_end: bytes = b"", legacy: bool = False) -> bytes:
    """make_fixtures.torch_pickle_bytes(tensors) with one field bent: storage key or location of the first tensor,
    the strides of the first 2-d tensor (made from its shape; past BININT's range too), a second PROTO after the
    first or before the final SETITEMS. `legacy`: persistent ids as the legacy format writes them (a sixth field,
    None: no view)."""
    w = make_fixtures._PickleWriter()
    w.out += extra_proto
    w.empty_ordered_dict()
    w.out += b"("
    bent_stride = False
    for key, name in enumerate(sorted(tensors)):
        dtype, shape = tensors[name]
        stride = make_fixtures._strides(tuple(shape))
        if stride_2d is not None and len(shape) == 2 and not bent_stride:
            stride, bent_stride = list(stride_2d(tuple(shape))), True
        w.text(name)
        w.glob("torch._utils", "_rebuild_tensor_v2")
        w.out += b"(("
        w.text("storage")
        w.glob("torch", make_fixtures.STORAGE_CLASSES[dtype])
        for value in (key0 if key == 0 else str(key), location0 if key == 0 else "cpu", make_fixtures._numel(shape)):
            _put(w, value)
        w.out += b"NtQ" if legacy else b"tQ"  # NONE: no view metadata
        w.int(0)
        w.ints(shape)
        w.out += b"("
        for step in stride:
            _put(w, step)
        w.out += b"t"
        w.out += b"\x89"
        w.empty_ordered_dict()
        w.out += b"tR"
    assert bent_stride or stride_2d is None, "no 2-d tensor to bend"
    return bytes(w.out + proto_at_end + b"u.")


def _put(w: make_fixtures._PickleWriter, value: object) -> None:
    if isinstance(value, str):
        w.text(value)
    elif isinstance(value, int) and -1 << 31 <= value < 1 << 31:
        w.int(value)
    else:  # any other value as pickle spells it, without its PROTO and STOP
        w.out += pickle.dumps(value, protocol=2)[2:-1]


def _descriptor_crc_differs(members: list[zips.Member]) -> bytes:
    """data.pkl written as a streaming writer does (flag bit 3: zeros in the local header, a data descriptor after
    the data), the descriptor's CRC one bit off the central directory's."""
    raw = members[0].data
    crc = zlib.crc32(raw)
    descriptor = struct.pack("<4s3L", b"PK\x07\x08", crc ^ 1, len(raw), len(raw))
    first = zips.replace(members[0], flags=0x8, data=raw + descriptor, size=len(raw), crc=crc,
                         local={"crc": 0, "csize": 0, "usize": 0},
                         central={"csize": len(raw)})
    return zips.build([first] + members[1:])


def _legacy(members: list[zips.Member], tensors: make_fixtures.Tensors, *, tail: bytes = b"",
            keys: list[str] | None = None, after_keys: bytes = b"") -> bytes:
    """The decoy as torch.save(_use_new_zipfile_serialization=False) writes it: its persistent ids, and its storage
    records (element count, then the bytes) in the order of the storage keys."""
    itemsize = {str(key): DTYPE_SIZES[tensors[name][0]] for key, name in enumerate(sorted(tensors))}
    blobs = {m.name.rsplit(b"/", 1)[1].decode(): m.data for m in members if b"/data/" in m.name}
    stream = zips.LEGACY_MAGIC + zips.LEGACY_PROTOCOL + zips.SYS_INFO + data_pkl(tensors, legacy=True)
    stream += pickle.dumps(sorted(blobs, key=int) if keys is None else keys, protocol=2) + after_keys
    stream += b"".join(struct.pack("<q", len(blobs[k]) // itemsize[k]) + blobs[k] for k in sorted(blobs, key=int))
    return stream + tail


def _zip(members: list[zips.Member], tensors: make_fixtures.Tensors, **bend) -> bytes:
    return zips.build(zips._named(members, b"/data.pkl", data=data_pkl(tensors, **bend)))


def _added(members: list[zips.Member], name: str, data: bytes) -> bytes:
    folder = members[0].name.split(b"/")[0].decode()
    return zips.build(members + [zips.stored(f"{folder}/{name}", data)])


Build = Callable[[list[zips.Member], make_fixtures.Tensors], bytes]
CASES: dict[str, tuple[str, Build]] = {
    "proto-twice-at-start": ("reads", lambda d, t: _zip(d, t, extra_proto=b"\x80\x02")),
    "proto-before-setitems": ("reads", lambda d, t: _zip(d, t, proto_at_end=b"\x80\x02")),
    "proto-4-inside-2": ("reads", lambda d, t: _zip(d, t, proto_at_end=b"\x80\x04")),
    "bytes-after-stop": ("reads", lambda d, t: zips.build(
        zips._named(d, b"/data.pkl", data=data_pkl(t) + b"\x80\x02}."))),
    "legacy-clean": ("reads", lambda d, t: _legacy(d, t)),  # control: the generator's legacy form reads
    "legacy-bytes-after-last-storage": ("reads", lambda d, t: _legacy(d, t, tail=b"\0" * 16)),
    "legacy-bytes-after-keys": ("refuses", lambda d, t: _legacy(d, t, after_keys=struct.pack("<q", 3))),
    "legacy-key-not-referenced": ("refuses", lambda d, t: _legacy(d, t, keys=[*map(str, range(len(t))), "99"])),
    "storage-not-referenced": ("reads", lambda d, t: _added(d, "data/99", bytes(8))),
    "pickle-in-data-txt": ("reads", lambda d, t: _added(d, "data.txt", d[0].data)),
    "pickle-in-constants-txt": ("reads", lambda d, t: _added(d, "constants.txt", pickle.dumps((), protocol=2))),
    "location-int": ("refuses", lambda d, t: _zip(d, t, location0=0)),
    "location-not-a-device": ("refuses", lambda d, t: _zip(d, t, location0="gpu7")),
    "key-int": ("reads", lambda d, t: _zip(d, t, key0=0)),
    "key-tuple": ("refuses", lambda d, t: _zip(d, t, key0=("0",))),
    "stride-past-storage": ("refuses", lambda d, t: _zip(d, t, stride_2d=lambda shape: (shape[0] * shape[1], 1))),
    "stride-far-past-storage": ("refuses", lambda d, t: _zip(d, t, stride_2d=lambda shape: (1 << 40, 1))),
    "descriptor-crc-differs": ("reads", lambda d, t: _descriptor_crc_differs(d)),
}


def cases(tensors: make_fixtures.Tensors = TENSORS) -> dict[str, bytes]:
    """Case name -> the bytes of a torch.save zip (or legacy file) of `tensors`, bent as the case says."""
    members = zips.members_of(make_fixtures.torch_zip_bytes(tensors))
    assert members[0].data == data_pkl(tensors)  # the hand-written pickle is the decoy's own when nothing is bent
    return {name: build(members, tensors) for name, (_, build) in CASES.items()}
