"""Hostile zip containers, first bytes and legacy streams, generated at test time (never committed as binaries).

`Member` and `build` write a zip byte by byte, so that every field a reader may trust can lie: local header
against central directory, end records against where the directory really is, sizes, flags, methods, CRCs,
names. `cases` crosses these with hostile pickles. Each case is built from a decoy: the role's clean
checkpoint, which alone scans clean. Either the payload sits where torch (or another loader) would read while
a careless reader reads the decoy, or the decoy is bent in a way loaders disagree on: either way, reporting
the file clean is a miss.

What torch 2.13 does, checked against it (PyTorchStreamReader on miniz, and torch.load): the archive folder is
the first central entry's name up to its first '/'; an entry outside it makes torch refuse the file (older
torch read on); names are looked up ignoring ASCII case, the first of two equal names wins; local header
sizes, the CRC and inflated bytes past the declared size are ignored; the central directory is read at the
offset the end record names (Python's zipfile reads it where it sits); a stored entry whose two sizes differ
fails the whole archive; `constants.pkl` sends the file to torch.jit.load. A file not starting `PK\\x03\\x04`
is tried as a tar first, then as five pickles: magic, protocol, sys_info, the object, its storage keys.
"""

from __future__ import annotations

import bz2
import functools
import gzip
import io
import lzma
import pickle
import struct
import tarfile
import zipfile
import zlib
from dataclasses import dataclass, field, replace
from typing import Callable

LOCAL = struct.Struct("<4s2B4HL2L2H")  # signature, version, -, flags, method, time, date, crc, sizes, lengths
CENTRAL = struct.Struct("<4s4B4HL2L5H2L")
EOCD = struct.Struct("<4s4H2LH")
EOCD64 = struct.Struct("<4sQ2H2L4Q")
LOCATOR64 = struct.Struct("<4sLQL")

LEGACY_MAGIC = pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2)
LEGACY_PROTOCOL = pickle.dumps(1001, protocol=2)
SYS_INFO = pickle.dumps({"protocol_version": 1001, "little_endian": True,
                         "type_sizes": {"short": 2, "int": 4, "long": 4}}, protocol=2)
GIB = 1 << 30


@dataclass
class Member:
    """One zip entry. `data` is what is stored (already compressed for other methods); `size` the inflated
    size, `crc` its CRC (defaults: those of `data`). `local` and `central` override fields of one header:
    sig, name, method, flags, crc, csize, usize, extra; central only: offset (where it says the local header
    is) and comment. `listed=False` writes the local header and data but no central record."""

    name: bytes
    data: bytes
    method: int = 0
    flags: int = 0
    size: int | None = None
    crc: int | None = None
    local: dict = field(default_factory=dict)
    central: dict = field(default_factory=dict)
    listed: bool = True


def stored(name: str | bytes, data: bytes, **kw) -> Member:
    return Member(name if isinstance(name, bytes) else name.encode(), data, **kw)


def deflated(name: str | bytes, data: bytes, **kw) -> Member:
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    return stored(name, c.compress(data) + c.flush(), method=8, size=len(data), crc=zlib.crc32(data), **kw)


def build(members: list[Member], *, lead: bytes = b"", comment: bytes = b"", tail: bytes = b"",
          cd_offset: int | None = None, count: int | None = None, cd_size: int | None = None,
          zip64: bool = False, locator_at: int | None = None, shift: int = 0, cut_directory: int = 0) -> bytes:
    """The zip's bytes. `lead` goes before the first local header (offsets stay relative to the file);
    `cd_offset`, `count`, `cd_size` make the end records lie, `shift` every central record's offset;
    `zip64` adds the ZIP64 end records torch always writes (`locator_at`: where the locator says the ZIP64
    record is); `cut_directory` drops that many bytes from the end of the central directory."""
    out = bytearray(lead)
    central = bytearray()
    for m in members:
        offset = len(out)
        crc = zlib.crc32(m.data) if m.crc is None else m.crc
        size = len(m.data) if m.size is None else m.size
        fields = {"sig": None, "name": m.name, "method": m.method, "flags": m.flags, "crc": crc,
                  "csize": len(m.data), "usize": size, "extra": b""}
        lo, ce = {**fields, **m.local}, {**fields, "offset": offset + shift, "comment": b"", **m.central}
        out += LOCAL.pack(lo["sig"] or b"PK\x03\x04", 20, 0, lo["flags"], lo["method"], 0, 0x21, lo["crc"],
                          lo["csize"], lo["usize"], len(lo["name"]), len(lo["extra"])) + lo["name"] + lo["extra"]
        out += m.data
        if m.listed:
            central += CENTRAL.pack(ce["sig"] or b"PK\x01\x02", 20, 3, 20, 0, ce["flags"], ce["method"], 0, 0x21,
                                    ce["crc"], ce["csize"], ce["usize"], len(ce["name"]), len(ce["extra"]),
                                    len(ce["comment"]), 0, 0, 0o644 << 16, ce["offset"]) + ce["name"] + ce["extra"]
            central += ce["comment"]
    start = len(out)
    out += central[:len(central) - cut_directory]
    n = sum(m.listed for m in members) if count is None else count
    at = start if cd_offset is None else cd_offset
    size = len(central) if cd_size is None else cd_size
    if zip64:
        record = len(out)
        out += EOCD64.pack(b"PK\x06\x06", 44, 45, 45, 0, 0, n, n, size, at)
        out += LOCATOR64.pack(b"PK\x06\x07", 0, record if locator_at is None else locator_at, 1)
    out += EOCD.pack(b"PK\x05\x06", 0, 0, n & 0xFFFF, n & 0xFFFF, size, at & 0xFFFFFFFF, len(comment))
    return bytes(out + comment + tail)


def two_directories(torch_view: list[Member], python_view: list[Member]) -> bytes:
    """One file, two archives: torch (miniz) reads the central directory at the offset the end record names,
    Python's zipfile where the directory sits, shifting every entry by the difference. The views must have
    the same names (so equally long directories); torch's view gets a padded `version` record (torch parses
    "3\\n   " as 3) so that its entries come first and are the longer."""
    p = build(python_view)
    p_cd = EOCD.unpack(p[-EOCD.size:])[6]
    torch_view = [replace(m, data=m.data + b" " * p_cd) if m.name.endswith(b"/version") else m for m in torch_view]
    t = build(torch_view)
    t_cd = EOCD.unpack(t[-EOCD.size:])[6]
    p = build(python_view, shift=t_cd - p_cd)  # Python adds (where the directory is) - (where it is said to be)
    assert t_cd >= p_cd and len(t) - t_cd == len(p) - p_cd, "the views need the same names"
    n = len(python_view)
    directory = p[p_cd:-EOCD.size]
    return t[:-EOCD.size] + p[:p_cd] + directory + EOCD.pack(b"PK\x05\x06", 0, 0, n, n, len(directory), t_cd, 0)


@functools.cache
def _zero_blocks() -> bytes:
    """Raw deflate blocks (not final) inflating to 1 GiB of zeros, about 1 MB: one flushed 1 MiB block, 1024
    times (each starts afresh after the full flush, so copies may follow any flushed stream)."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    return (c.compress(bytes(1 << 20)) + c.flush(zlib.Z_FULL_FLUSH)) * 1024


def bomb(name: str, head: bytes, *, size: int, crc: int) -> Member:
    """A deflated entry inflating to `head` and then 1 GiB of zeros, declaring `size` and `crc`."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    final = zlib.compressobj(9, zlib.DEFLATED, -15).flush()  # an empty last block
    data = c.compress(head) + c.flush(zlib.Z_FULL_FLUSH) + _zero_blocks() + final
    return stored(name, data, method=8, size=size, crc=crc)


# --- the decoy and its pieces --------------------------------------------------------------------------


def members_of(clean_zip: bytes) -> list[Member]:
    """The clean zip's entries as stored members (data.pkl first, as torch.save and the fixtures write it)."""
    with zipfile.ZipFile(io.BytesIO(clean_zip)) as zf:
        out = [stored(i.orig_filename, zf.read(i)) for i in zf.infolist()]
    assert out[0].name.endswith(b"/data.pkl")
    return out


def legacy_of(members: list[Member], *, obj: bytes | None = None, keys: bytes | None = None,
              protocol: bytes = LEGACY_PROTOCOL, sys_info: bytes = SYS_INFO, storages: bool = True) -> bytes:
    """The same state dict in the legacy (pre-1.6) format: five pickles, then each storage's raw bytes."""
    blobs = {m.name.rsplit(b"/", 1)[1].decode(): m.data for m in members if b"/data/" in m.name}
    stream = LEGACY_MAGIC + protocol + sys_info + (members[0].data if obj is None else obj)
    stream += pickle.dumps(sorted(blobs), protocol=2) if keys is None else keys
    if storages:
        stream += b"".join(struct.pack("<q", len(raw)) + raw for _, raw in sorted(blobs.items()))
    return stream


def _named(members: list[Member], suffix: bytes, **changes) -> list[Member]:
    """Members with the one whose name ends in `suffix` changed."""
    assert sum(m.name.endswith(suffix) for m in members) == 1, suffix
    return [replace(m, **changes) if m.name.endswith(suffix) else m for m in members]


def _without(members: list[Member], suffix: bytes) -> list[Member]:
    return [m for m in members if not m.name.endswith(suffix)]


def _storage(members: list[Member]) -> Member:
    return next(m for m in members if m.name.endswith(b"/data/0"))


def _tar(files: dict[str, bytes], fmt: int = tarfile.USTAR_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def tar_legacy_polyglot(members: list[Member], payload: bytes) -> bytes:
    """A legacy stream of the decoy that is also a tar: torch.load tries the tar first and unpickles its
    `storages` member (the payload). The first three pickles fill the first 512-byte block, sys_info's one
    string value carrying the tar header's fields; the rest of the stream is the first member's data."""
    head = LEGACY_MAGIC + LEGACY_PROTOCOL + b"\x80\x02}X\x04\x00\x00\x00noteX" + struct.pack("<I", 512 - 38)
    assert len(head) == 38
    block = bytearray(head + bytes(512 - len(head)))  # sys_info = {"note": <the rest of the block>}
    keys = pickle.dumps(sorted(m.name.rsplit(b"/", 1)[1].decode() for m in members if b"/data/" in m.name), protocol=2)
    body = b"s." + members[0].data + keys  # SETITEM, STOP: sys_info ends; the object and its storage keys
    for at, value in ((100, b"0000644\0"), (108, b"0000000\0"), (116, b"0000000\0"), (124, b"%011o\0" % len(body)),
                      (136, b"00000000000\0"), (148, b" " * 8), (156, b"0"), (257, b"ustar\x0000")):
        block[at:at + len(value)] = value
    block[148:156] = b"%06o\0 " % sum(block)
    rest = _tar({"storages": payload, "tensors": pickle.dumps(0, protocol=2), "pickle": pickle.dumps({}, protocol=2)})
    return bytes(block) + body + bytes(-len(body) % 512) + rest


# --- the cases --------------------------------------------------------------------------------------------

# Each builder gets the decoy's members and, for the payload classes, the payload; it returns the file.
Build = Callable[..., bytes]


def _version(folder: str) -> Member:
    return stored(f"{folder}/version", b"3\n")


def _payload_cases() -> dict[str, dict[str, Build]]:
    def pkl(d: list[Member], p: bytes, **kw) -> list[Member]:
        return _named(d, b"/data.pkl", data=p, **kw)

    return {
        "folder": {  # torch's archive folder is the first entry's
            "payload-folder-first": lambda d, p: build([stored("weights/data.pkl", p)] + d),
            "version-first-payload-last": lambda d, p: build(
                [_version("weights")] + d + [stored("weights/data.pkl", p)]),
            "payload-folder-last": lambda d, p: build(d + [stored("weights/data.pkl", p)]),
            "first-entry-not-in-a-folder": lambda d, p: build([stored("data.pkl", p)] + d),
            "first-entry-deeper": lambda d, p: build([stored("archive/extra/notes.txt", b"")] + pkl(d, p)),
            "folder-differs-by-case": lambda d, p: build([_version("ARCHIVE")] + d + [stored("ARCHIVE/data.pkl", p)]),
            "empty-folder-name": lambda d, p: build([stored("/data.pkl", p), stored("/version", b"3\n")] + d),
        },
        "case": {  # torch's reader looks names up ignoring case
            "upper-first": lambda d, p: build([stored("archive/DATA.pkl", p)] + d),
            "upper-last": lambda d, p: build(d + [stored("archive/Data.pkl", p)]),
            "only-upper": lambda d, p: build(_named(d, b"/data.pkl", name=b"archive/DATA.PKL", data=p)),
            "folder-upper": lambda d, p: build(d + [stored("Archive/data.pkl", p)]),
        },
        "nul": {  # Python's zipfile cuts a name at NUL, torch's reader does not
            "decoy-cut-at-nul-payload-upper": lambda d, p: build(
                _named(d, b"/data.pkl", name=b"archive/data.pkl\0.bak") + [stored("archive/DATA.PKL", p)]),
            "payload-then-decoy-cut-at-nul": lambda d, p: build(
                [stored("archive/data.pkl", p)] + _named(d, b"/data.pkl", name=b"archive/data.pkl\0")),
            "constants-cut-at-nul": lambda d, p: build(d + [stored(b"archive/constants.pkl\0", p)]),
            "folder-cut-at-nul": lambda d, p: build([stored(b"weights\0/data.pkl", p)] + d),
        },
        "flags": {
            "encrypted-payload": lambda d, p: build(pkl(d, p, flags=1)),
            "bzip2-payload": lambda d, p: build(pkl(d, bz2.compress(p), method=12, size=len(p), crc=zlib.crc32(p))),
            "payload-local-header-encrypted": lambda d, p: build(pkl(d, p, local={"flags": 1})),
        },
        "local-header": {
            "payload-local-sizes-lie": lambda d, p: build(pkl(d, p, local={"csize": 1, "usize": 1})),
            "payload-local-name-differs": lambda d, p: build(pkl(d, p, local={"name": b"archive/data.pkx"})),
        },
        "crc": {
            "payload-bad-crc": lambda d, p: build(pkl(d, p, crc=zlib.crc32(p) ^ 1)),
            "payload-deflated-bad-crc": lambda d, p: build(
                _named(d, b"/data.pkl", **{**_deflated_fields(p), "crc": zlib.crc32(p) ^ 0xFF})),
        },
        "sizes": {
            "payload-stored-sizes-differ": lambda d, p: build(pkl(d, p + d[0].data, size=len(p), crc=zlib.crc32(p))),
            "payload-beyond-archive": lambda d, p: build(pkl(d, p, central={"csize": 1 << 24, "usize": 1 << 24})),
        },
        "overlap": {  # a streaming reader reads the hidden local header at offset 0
            "hidden-first-entry-payload": lambda d, p: build([stored("archive/data.pkl", p, listed=False)] + d),
            "payload-storage-shares-header": lambda d, p: build(
                pkl(d, p) + [stored("archive/data/99", b"", central={"offset": 0})]),
        },
        "end-records": {
            "two-directories": lambda d, p: two_directories(pkl(d, p), d),
            "payload-zip-before-decoy-zip": lambda d, p: build(
                [stored("archive/data.pkl", p), _version("archive")])[:-EOCD.size] + build(d),
            "decoy-zip-then-payload": lambda d, p: build(d) + p,
        },
        "zip64": {
            "two-directories-zip64-locator": lambda d, p: zip64_locator_elsewhere(pkl(d, p), d),
            "payload-zip64-count-lies": lambda d, p: build(pkl(d, p), zip64=True, count=len(d) + 1),
        },
        "dispatch": {  # torch.load tells the formats apart by the first bytes
            "plain-pickle": lambda d, p: p,
            "7z-then-pickle": lambda d, p: b"7z\xbc\xaf\x27\x1c\x00\x04" + bytes(24) + p,
            "gzip-pickle": lambda d, p: gzip.compress(p, mtime=0),
            "tar-of-pickle": lambda d, p: _tar({"archive/data.pkl": p}),
            "pickle-then-zip": lambda d, p: p + build(d),  # Python's zipfile finds the zip's end record anyway
            "torchscript-constants": lambda d, p: build(d + [stored("archive/constants.pkl", p),
                                                             stored("archive/code/__torch__.py", b"")]),
            "torchscript-data-pkl": lambda d, p: build(
                pkl(d, p) + [stored("archive/constants.pkl", pickle.dumps((), protocol=2))]),
        },
        "legacy": {  # every one of the five pickles is unpickled by torch.load
            "protocol": lambda d, p: legacy_of(d, protocol=p),
            "sys-info": lambda d, p: legacy_of(d, sys_info=p),
            "object": lambda d, p: legacy_of(d, obj=p),
            "storage-keys": lambda d, p: legacy_of(d, keys=p),
            "storage-keys-then-end": lambda d, p: legacy_of(d, keys=p, storages=False),
            "object-cut-after-payload": lambda d, p: legacy_of(d, obj=p[:-1], keys=b"", storages=False),
            "keys-cut-after-payload": lambda d, p: legacy_of(d, keys=p[:-1], storages=False),
            "object-then-garbage": lambda d, p: legacy_of(d, obj=p[:-1] + b"\xff\xfe", keys=b"", storages=False),
            "zip-after-legacy": lambda d, p: legacy_of(d) + build(pkl(d, p)),
            "tar-polyglot": lambda d, p: tar_legacy_polyglot(d, p),
        },
    }


def zip64_locator_elsewhere(torch_view: list[Member], python_view: list[Member]) -> bytes:
    """torch (miniz) follows the ZIP64 locator to a record naming torch's directory; Python's zipfile looks
    for that record just before the locator, finds none, and keeps the plain end record, which names its own
    directory. The locator sits at the end of Python's last central record, as its comment."""
    t = build(torch_view)
    n_t, t_size, t_cd = EOCD.unpack(t[-EOCD.size:])[4:7]
    body = t[:-EOCD.size]
    record = EOCD64.pack(b"PK\x06\x06", 44, 45, 45, 0, 0, n_t, n_t, t_size, t_cd)
    locator = LOCATOR64.pack(b"PK\x06\x07", 0, len(body), 1)
    start = len(body) + len(record)
    last = python_view[-1]
    p = build(python_view[:-1] + [replace(last, central={**last.central, "comment": locator})], shift=start)
    p_cd = EOCD.unpack(p[-EOCD.size:])[6]
    n = len(python_view)
    directory = p[p_cd:-EOCD.size]
    return body + record + p[:-EOCD.size] + EOCD.pack(b"PK\x05\x06", 0, 0, n, n, len(directory), start + p_cd, 0)


def _fixed_cases() -> dict[str, dict[str, Build]]:
    """Cases without a payload: the decoy bent in one way loaders disagree on, or torch refuses."""
    def pkl(d: list[Member], **kw) -> list[Member]:
        return _named(d, b"/data.pkl", **kw)

    def storage(d: list[Member], **kw) -> list[Member]:
        return _named(d, b"/data/0", **kw)

    def bz2_pkl(d: list[Member]) -> list[Member]:
        raw = d[0].data
        return pkl(d, data=bz2.compress(raw), method=12, size=len(raw), crc=zlib.crc32(raw))

    flag_bits = {f"data-pkl-flag-{bit:#06x}": (lambda bit: lambda d: build(pkl(d, flags=bit)))(bit)
                 for bit in (0x1, 0x10, 0x20, 0x40, 0x80, 0x100, 0x1000, 0x2000, 0x4000, 0x8000)}
    methods = {f"data-pkl-method-{m}": (lambda m: lambda d: build(pkl(d, method=m)))(m)
               for m in (1, 6, 9, 14, 19, 93, 95, 98, 99, 0xFFFF)}
    local = {  # the local header's fields, given data.pkl's bytes; the central directory keeps the truth
        "name-other": lambda raw: {"name": b"archive/data.pkx"},
        "name-case": lambda raw: {"name": b"archive/DATA.pkl"},
        "name-longer": lambda raw: {"name": b"archive/data.pkl.bak"},
        "signature": lambda raw: {"sig": b"PK\x03\x05"},
        "sizes-plus-one": lambda raw: {"csize": len(raw) + 1, "usize": len(raw) + 1},
        "sizes-minus-one": lambda raw: {"csize": len(raw) - 1, "usize": len(raw) - 1},
        "sizes-zero": lambda raw: {"csize": 0, "usize": 0, "crc": 0},
        "sizes-ffff-no-extra": lambda raw: {"csize": 0xFFFFFFFF, "usize": 0xFFFFFFFF},
        "sizes-zip64-extra-lies": lambda raw: {"csize": 0xFFFFFFFF, "usize": 0xFFFFFFFF,
                                               "extra": struct.pack("<HHQQ", 1, 16, 7, 7)},
        "crc": lambda raw: {"crc": zlib.crc32(raw) ^ 1},
        "method-deflated": lambda raw: {"method": 8},
        "flags-encrypted": lambda raw: {"flags": 1},
        "flags-descriptor-zero-sizes": lambda raw: {"flags": 8, "csize": 0, "usize": 0, "crc": 0},
        "flags-utf8": lambda raw: {"flags": 0x800},
    }

    return {
        "case": {
            "storage-case": lambda d: build(d + [stored("archive/DATA/0", _storage(d).data)]),
            "version-case": lambda d: build(d + [stored("archive/VERSION", b"3\n")]),
            "byteorder-case": lambda d: build(d + [stored("archive/BYTEORDER", b"big")]),
            "unicode-case": lambda d: build(d + [stored("archive/extra/É".encode(), b"", flags=0x800),
                                                 stored("archive/extra/é".encode(), b"", flags=0x800)]),
            "same-bytes-two-encodings": lambda d: build(d + [stored(b"archive/extra/\xc3\xa9", b"", flags=0x800),
                                                             stored(b"archive/extra/\xc3\xa9", b"")]),
        },
        "nul": {
            "storage-name-cut-at-nul": lambda d: build(d + [stored(b"archive/data/0\0", b"")]),
            "data-pkl-cut-at-nul": lambda d: build(pkl(d, name=b"archive/data.pkl\0")),
        },
        "flags": {
            **flag_bits, **methods,
            "bzip2-data-pkl": lambda d: build(bz2_pkl(d)),
            "lzma-data-pkl": lambda d: build(pkl(d, data=lzma.compress(d[0].data, format=lzma.FORMAT_ALONE), method=14,
                                                 size=len(d[0].data), crc=zlib.crc32(d[0].data))),
            "encrypted-storage": lambda d: build(storage(d, flags=1)),
            "bzip2-storage": lambda d: build(storage(d, data=bz2.compress(_storage(d).data), method=12,
                                                     size=len(_storage(d).data), crc=zlib.crc32(_storage(d).data))),
            "masked-local-headers-version": lambda d: build(_named(d, b"/version", flags=0x2000)),
        },
        "local-header": {name: (lambda change: lambda d: build(pkl(d, local=change(d[0].data))))(change)
                         for name, change in local.items()},
        "crc": {
            "data-pkl": lambda d: build(pkl(d, crc=zlib.crc32(d[0].data) ^ 1)),
            "data-pkl-deflated": lambda d: build(
                pkl(d, **{**_deflated_fields(d[0].data), "crc": zlib.crc32(d[0].data) ^ 1})),
        },
        "sizes": {
            "stored-csize-larger": lambda d: build(pkl(d, data=d[0].data + b"\0" * 16, size=len(d[0].data),
                                                       crc=zlib.crc32(d[0].data))),
            "stored-usize-larger": lambda d: build(pkl(d, size=len(d[0].data) + 100)),
            "stored-beyond-archive": lambda d: build(pkl(d, central={"csize": 10 ** 9, "usize": 10 ** 9},
                                                         local={"csize": 10 ** 9, "usize": 10 ** 9})),
            "deflated-declares-more": lambda d: build(
                pkl(d, **{**_deflated_fields(d[0].data), "size": len(d[0].data) + 100})),
            "storage-sizes-differ": lambda d: build(storage(d, size=len(_storage(d).data) + 4)),
            "storage-short": lambda d: build(storage(d, data=_storage(d).data[:-4])),
            "storage-long": lambda d: build(storage(d, data=_storage(d).data + bytes(4))),
            "storage-missing": lambda d: build(_without(d, b"/data/0")),
            "storage-empty": lambda d: build(storage(d, data=b"")),
            "zip64-extra-huge-size": lambda d: build(pkl(d, central={"usize": 0xFFFFFFFF,
                                                                     "extra": struct.pack("<HHQ", 1, 8, 1 << 40)})),
            "zip64-extra-small-size": lambda d: build(pkl(d, central={"usize": 0xFFFFFFFF,
                                                                      "extra": struct.pack("<HHQ", 1, 8, 10)})),
        },
        "overlap": {
            "storage-points-at-data-pkl": lambda d: build(storage(d, central={"offset": 0})),
            "storage-inside-data-pkl": lambda d: build(storage(d, central={"offset": 40})),
            "data-pkl-into-next-entry": lambda d: build(pkl(d, **{  # both headers agree on the lie
                header: {"csize": len(d[0].data) + 64, "usize": len(d[0].data) + 64} for header in ("local", "central")
            })),
            "last-entry-into-directory": lambda d: build(_named(d, b"/version", central={"csize": 400, "usize": 400})),
            "many-names-one-entry": lambda d: build(d + [stored(f"archive/x{i}", b"", central={"offset": 0})
                                                         for i in range(50)]),
            "hidden-first-entry": lambda d: build([stored("archive/notes", b"hidden", listed=False)] + d),
        },
        "bomb": {  # data.pkl inflating to 1 GiB more than the decoy's pickle
            "declares-2gib": lambda d: build(pkl(d, **vars_of(bomb("x", d[0].data, size=2 * GIB, crc=0)))),
            "declares-64mib": lambda d: build(pkl(d, **vars_of(bomb("x", d[0].data, size=64 << 20,
                                                                   crc=zlib.crc32(d[0].data))))),
            "zeros-declare-small": lambda d: build(pkl(d, **vars_of(bomb("x", b"", size=len(d[0].data),
                                                                        crc=zlib.crc32(d[0].data))))),
            "many-names-one-bomb": lambda d: build(
                pkl(d, **vars_of(bomb("x", d[0].data, size=len(d[0].data), crc=zlib.crc32(d[0].data))))
                + [stored(f"archive/b{i}", b"", central={"offset": 0}) for i in range(20)]),
        },
        "end-records": {
            "lead-bytes": lambda d: b"PK\x03\x04" + bytes(60) + build(d),
            "trailing-bytes": lambda d: build(d) + b"\0" * 64,
            "count-minus-one": lambda d: build(d, count=len(d) - 1),
            "count-plus-one": lambda d: build(d, count=len(d) + 1),
            "directory-offset-plus-one": lambda d: build(d, cd_offset=len(build(d)) - EOCD.size - _cd_size(d) + 1),
            "directory-size-minus-one": lambda d: build(d, cd_size=_cd_size(d) - 1),
            "directory-cut": lambda d: build(d, cut_directory=10),
            "end-record-cut": lambda d: build(d)[:-6],
            "comment-declared-longer": lambda d: build(d)[:-2] + struct.pack("<H", 10) + b"abc",
        },
        "zip64": {
            "locator-points-before": lambda d: build(d, zip64=True, locator_at=0),
            "locator-points-past-end": lambda d: build(d, zip64=True, locator_at=1 << 40),
            "record-count-lies": lambda d: _zip64_record_lies(d, count=len(d) + 3),
            "record-offset-lies": lambda d: _zip64_record_lies(d, offset=1),
            "record-size-lies": lambda d: _zip64_record_lies(d, size=1),
        },
        "dispatch": {
            "plain-state-dict": lambda d: d[0].data,
            "7z": lambda d: b"7z\xbc\xaf\x27\x1c\x00\x04" + bytes(24) + build(d),
            "gzip-of-zip": lambda d: gzip.compress(build(d), mtime=0),
            "bzip2-of-zip": lambda d: bz2.compress(build(d)),
            "xz-of-zip": lambda d: lzma.compress(build(d)),
            "zstd-magic": lambda d: b"\x28\xb5\x2f\xfd" + build(d),
            "tar-of-zip-entries": lambda d: _tar({m.name.decode(): m.data for m in d}),
            "tar-gnu-of-zip-entries": lambda d: _tar({m.name.decode(): m.data for m in d}, tarfile.GNU_FORMAT),
            "state-dict-then-zip": lambda d: d[0].data + build(d),
            "preview-format": lambda d: b"PYTORCH1" + build(d),
            "torchscript-clean": lambda d: build(d + [stored("archive/constants.pkl", pickle.dumps((), protocol=2)),
                                                      stored("archive/code/__torch__/model.py", b"")]),
            "empty-zip": lambda d: EOCD.pack(b"PK\x05\x06", 0, 0, 0, 0, 0, 0, 0),
            "local-header-only": lambda d: build(d)[:30],
        },
        "legacy": {
            "no-magic": lambda d: legacy_of(d)[len(LEGACY_MAGIC):],
            "protocol-1002": lambda d: legacy_of(d, protocol=pickle.dumps(1002, protocol=2)),
            "protocol-str": lambda d: legacy_of(d, protocol=pickle.dumps("1001", protocol=2)),
            "protocol-bool": lambda d: legacy_of(d, protocol=pickle.dumps(True, protocol=2)),
            "sys-info-list": lambda d: legacy_of(d, sys_info=pickle.dumps([1001], protocol=2)),
            "sys-info-missing": lambda d: legacy_of(d, sys_info=b""),
            "keys-dict": lambda d: legacy_of(d, keys=pickle.dumps({"0": 0}, protocol=2)),
            "keys-ints": lambda d: legacy_of(d, keys=pickle.dumps([0, 1], protocol=2)),
            "keys-missing": lambda d: legacy_of(d, keys=b"", storages=False),
            "keys-cut": lambda d: legacy_of(d, keys=pickle.dumps(["0", "1"], protocol=2)[:-3], storages=False),
            "zip-after-legacy": lambda d: legacy_of(d) + build(d),
            "tar-polyglot-clean": lambda d: tar_legacy_polyglot(d, pickle.dumps(0, protocol=2)),
        },
    }


def vars_of(m: Member) -> dict:
    return {"data": m.data, "method": m.method, "size": m.size, "crc": m.crc}


def _deflated_fields(raw: bytes) -> dict:
    return vars_of(deflated("x", raw))


def _cd_size(members: list[Member]) -> int:
    return sum(CENTRAL.size + len(m.name) for m in members)


def _zip64_record_lies(members: list[Member], *, count: int | None = None, offset: int | None = None,
                       size: int | None = None) -> bytes:
    """ZIP64 end records whose record alone lies (the plain end record stays true)."""
    good = build(members, zip64=True)
    at = len(good) - EOCD.size - LOCATOR64.size - EOCD64.size
    rec = list(EOCD64.unpack(good[at:at + EOCD64.size]))
    rec[6] = rec[7] = rec[7] if count is None else count
    rec[8] = rec[8] if size is None else rec[8] + size
    rec[9] = rec[9] if offset is None else rec[9] + offset
    return good[:at] + EOCD64.pack(*rec) + good[at + EOCD64.size:]


PAYLOAD_CLASSES = _payload_cases()
FIXED_CLASSES = _fixed_cases()
BOMB_PAYLOAD = {"payload-then-1gib-zeros": lambda d, p: build(
    _named(d, b"/data.pkl", **vars_of(bomb("x", p, size=len(p), crc=zlib.crc32(p)))))}


def cases(payloads: dict[str, bytes], decoy: bytes, *, bomb_payloads: int = 2) -> dict[str, bytes]:
    """'class--variant--payload' -> the file's bytes, for one role's clean zip `decoy`."""
    d = members_of(decoy)
    out = {}
    for cls, variants in PAYLOAD_CLASSES.items():
        for variant, make in variants.items():
            for name, payload in payloads.items():
                out[f"{cls}--{variant}--{name}"] = make(d, payload)
    for variant, make in BOMB_PAYLOAD.items():  # about 1 MB each: a few payloads only
        for name, payload in list(payloads.items())[:bomb_payloads]:
            out[f"bomb--{variant}--{name}"] = make(d, payload)
    for cls, variants in FIXED_CLASSES.items():
        for variant, make in variants.items():
            out[f"{cls}--{variant}--none"] = make(d)
    return out
