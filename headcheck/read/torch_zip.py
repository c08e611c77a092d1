"""A torch.save zip archive read as torch's own reader (miniz) reads it, or refused where Python's zipfile and
torch would read different bytes: end records, names (the folder of the first entry, NUL bytes, case),
flags and methods, local headers, sizes, overlaps, and a data.pkl whose inflation is bounded. What torch reads
past though torch.save never writes it (records nothing references, a disagreeing data descriptor or end record)
comes back as notes.

Hand-written checks on top of zipfile: no library compares two zip readers' views of one archive.
"""

from __future__ import annotations

import io
import struct
import zipfile
from typing import BinaryIO

from ..errors import InputError
from .json_text import quoted

MAX_DATA_PKL = 1 << 30  # a data.pkl this large is not a state dict; refuse rather than inflate it
_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")  # signature, version, -, flags, method, time, date, crc, sizes, names
_CENTRAL_RECORD = 46  # bytes of a central directory record before its name, extra field and comment
_END = struct.Struct("<4s4H2LH")  # end of central directory: ..., entries, directory size, directory offset, comment
_END64_LOCATOR = struct.Struct("<4sLQL")  # ..., offset of the ZIP64 end record, ...
_END64 = struct.Struct("<4sQ2H2L4Q")  # ZIP64 end record: ..., entries, directory size, directory offset
_UTF8_NAME = 0x800
_DATA_DESCRIPTOR = 0x8  # CRC and sizes follow the data; the local header holds zeros
_FLAGS_READABLE = 0x2 | 0x4 | _DATA_DESCRIPTOR | _UTF8_NAME  # others: encryption, patch data, masked headers
# The records torch.save writes besides data/<key> (torch 2.13; older releases a subset); torch.load reads no other
TORCH_RECORDS = {"data.pkl", "byteorder", "version", ".format_version", ".storage_alignment", ".data/version",
                 ".data/serialization_id"}


def _raw_name(info: zipfile.ZipInfo) -> bytes:
    # The name's bytes as stored: torch's reader (miniz) compares these, Python's zipfile decoded text.
    return info.orig_filename.encode("utf-8" if info.flag_bits & _UTF8_NAME else "cp437")


def _check_end_records(f: BinaryIO, zf: zipfile.ZipFile, rel_name: str, notes: list[str]) -> None:
    """torch's reader takes the central directory's offset, size and entry count from the end records;
    Python's zipfile reads the directory where it sits, shifting every entry by the difference (data before
    the archive), and counts entries itself. Refuse unless both read the same directory. Both take the
    ZIP64 record's figures over the plain record's; a reader that trusts the plain record unless it is
    saturated (as the format allows) reads another directory when the two disagree: a note."""
    infos = zf.infolist()
    at = f.seek(0, io.SEEK_END) - _END.size - len(zf.comment)
    f.seek(at)
    sig, _, _, _, count, cd_size, cd_offset, comment_size = _END.unpack(f.read(_END.size))
    ok = sig == b"PK\x05\x06" and comment_size == len(zf.comment)  # else bytes follow the end record
    if ok and at >= _END64_LOCATOR.size:
        f.seek(at - _END64_LOCATOR.size)
        locator = _END64_LOCATOR.unpack(f.read(_END64_LOCATOR.size))
        if locator[0] == b"PK\x06\x07":  # ZIP64 end records (torch always writes them)
            # Python assumes the ZIP64 end record sits just before the locator; miniz follows the locator
            record_at = at - _END64_LOCATOR.size - _END64.size
            ok = locator[2] == record_at >= 0
            if ok:
                f.seek(record_at)
                record = _END64.unpack(f.read(_END64.size))
                ok = record[0] == b"PK\x06\x06"
                saturated = (0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF)
                plain = (count, cd_size, cd_offset)
                if ok and any(p not in (z, full) for p, z, full in zip(plain, record[7:], saturated)):
                    notes.append("its end record and ZIP64 end record give other central directory figures (entries, "
                                 "size or offset); torch reads the ZIP64 ones")
                count, cd_size, cd_offset = record[7:]
    listed = sum(_CENTRAL_RECORD + len(_raw_name(i)) + len(i.extra) + len(i.comment) for i in infos)
    if not (ok and (cd_offset, cd_size, count) == (zf.start_dir, listed, len(infos))):
        raise InputError(f"{rel_name}: zip end records do not match its central directory (data before or after "
                         "the archive?); torch and Python's zipfile would read different entries")


def _archive_folder(infos: list[zipfile.ZipInfo], rel_name: str) -> str:
    """The folder torch reads records from, once every name is one torch and Python's zipfile agree on."""
    first = infos[0].orig_filename if infos else ""
    if "/" not in first:  # torch names the folder after the first entry and needs one
        raise InputError(f"{rel_name}: not a readable PyTorch checkpoint (the zip's first entry {quoted(first)} "
                         "is not in a folder)")
    folder = first.split("/", 1)[0]
    seen: dict[bytes | str, str] = {}
    for info in infos:
        name = info.orig_filename
        if "\0" in name:  # Python's zipfile cuts the name at the NUL, torch's reader does not
            raise InputError(f"{rel_name}: zip entry name {quoted(name)} holds a NUL byte; "
                             "loaders disagree on where it ends")
        if not name.startswith(folder + "/"):  # torch refuses the archive (older torch read past it)
            raise InputError(f"{rel_name}: zip entry {quoted(name)} is outside the folder "
                             f"{quoted(folder)} that torch reads (named by the first entry)")
        # torch's reader looks names up ignoring ASCII case, a case-insensitive file system any case
        for key in (_raw_name(info).lower(), name.casefold()):
            if key in seen:
                other = seen[key]
                if other == name:  # Python's zipfile reads the last of them, torch's reader the first
                    raise InputError(f"{rel_name}: zip holds two entries named {quoted(name)}; "
                                     "loaders disagree on which one they read")
                raise InputError(f"{rel_name}: zip entries {quoted(other)} and {quoted(name)} differ "
                                 "only by case; torch looks names up ignoring case")
            seen[key] = name
        if info.flag_bits & ~_FLAGS_READABLE or info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise InputError(f"{rel_name}: zip entry {quoted(name)} is encrypted or compressed in a way torch "
                             f"cannot read (flags {info.flag_bits:#x}, method {info.compress_type})")
        if info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
            raise InputError(f"{rel_name}: zip entry {quoted(name)} is stored but declares {info.compress_size} "
                             f"bytes stored and {info.file_size} bytes long")  # torch refuses, Python reads the lesser
    if f"{folder}/constants.pkl" in seen.values():  # torch.load's test for a TorchScript archive
        raise InputError(f"{rel_name}: a TorchScript archive (it holds {quoted(folder + '/constants.pkl')}), not a "
                         "torch.save checkpoint: torch.load hands it to torch.jit.load")
    return folder


def _check_descriptor(f: BinaryIO, info: zipfile.ZipInfo, data_start: int, notes: list[str]) -> None:
    """A data descriptor (CRC and sizes after the data, optionally signed) that disagrees with the central
    directory: torch and Python's zipfile trust the directory, a streaming reader the descriptor."""
    f.seek(data_start + info.compress_size)
    raw = f.read(4 + 4 + 16)
    raw = raw[4:] if raw[:4] == b"PK\x07\x08" else raw
    if len(raw) >= 4 and int.from_bytes(raw[:4], "little") != info.CRC:
        notes.append(f"the data descriptor of {quoted(info.orig_filename)} gives another CRC than the central "
                     "directory (torch reads the directory's)")


def _data_offset(f: BinaryIO, info: zipfile.ZipInfo, rel_name: str) -> int:
    """Where the entry's data starts, once its local header agrees with the central directory (Python's
    zipfile and torch's reader trust the directory, a streaming reader the local header)."""
    f.seek(info.header_offset)
    head = f.read(_LOCAL_HEADER.size)
    if len(head) != _LOCAL_HEADER.size:
        raise zipfile.BadZipFile("truncated local header")
    sig, _, _, flags, method, _, _, crc, csize, usize, name_size, extra_size = _LOCAL_HEADER.unpack(head)
    name, extra = f.read(name_size), f.read(extra_size)
    if 0xFFFFFFFF in (csize, usize):  # ZIP64: both sizes in extra field 1
        while len(extra) >= 4 and extra[:2] != b"\x01\x00":
            extra = extra[4 + int.from_bytes(extra[2:4], "little"):]
        usize, csize = struct.unpack("<QQ", extra[4:20]) if len(extra) >= 20 else (None, None)
    declared = {(info.CRC, info.compress_size, info.file_size)} | ({(0, 0, 0)} if flags & _DATA_DESCRIPTOR else set())
    if sig != b"PK\x03\x04" or name != _raw_name(info) or (flags, method) != (info.flag_bits, info.compress_type) \
            or (crc, csize, usize) not in declared:
        raise InputError(f"{rel_name}: zip entry {quoted(info.orig_filename)}: its local header and the central "
                         "directory disagree; readers differ on which they trust")
    return info.header_offset + _LOCAL_HEADER.size + name_size + extra_size


def _check_extents(infos: list[zipfile.ZipInfo], data_pkl: zipfile.ZipInfo, data_start: int, directory: int,
                   rel_name: str) -> None:
    """Entries follow each other from offset 0 to the central directory without sharing bytes. Only
    data.pkl's extent is exact (its local extra field was read); for the others the extent without an
    extra field is a lower bound, enough to see two entries overlap."""
    def end(info: zipfile.ZipInfo) -> int:
        start = data_start if info is data_pkl else info.header_offset + _LOCAL_HEADER.size + len(_raw_name(info))
        return start + info.compress_size

    ordered = sorted(infos, key=lambda i: i.header_offset)
    if ordered[0].header_offset != 0:  # the file starts with a local header the directory does not list
        raise InputError(f"{rel_name}: zip has {ordered[0].header_offset} bytes before its first listed entry")
    for info, after in zip(ordered, ordered[1:] + [None]):
        if end(info) > (directory if after is None else after.header_offset):
            what = "the central directory" if after is None else quoted(after.orig_filename)
            raise InputError(f"{rel_name}: zip entry {quoted(info.orig_filename)} overlaps {what} "
                             "(its sizes or offsets lie)")


def read_data_pkl(f: BinaryIO, rel_name: str, notes: list[str]) -> tuple[bytes, str, dict[str, int]]:
    """data.pkl's bytes, the archive folder and every entry's size, read as torch reads them or refused;
    what torch reads past is added to `notes`."""
    with zipfile.ZipFile(f) as zf:
        infos = zf.infolist()
        _check_end_records(f, zf, rel_name, notes)
        folder = _archive_folder(infos, rel_name)
        info = next((i for i in infos if i.orig_filename == f"{folder}/data.pkl"), None)
        if info is None:
            raise InputError(f"{rel_name}: not a readable PyTorch checkpoint (zip has no <prefix>/data.pkl)")
        data_start = _data_offset(f, info, rel_name)
        _check_extents(infos, info, data_start, zf.start_dir, rel_name)
        if info.flag_bits & _DATA_DESCRIPTOR:
            _check_descriptor(f, info, data_start, notes)
        if info.file_size > MAX_DATA_PKL:
            raise InputError(f"{rel_name}: not a readable PyTorch checkpoint (data.pkl is implausibly large)")
        with zf.open(info) as member:  # never the data/<n> storage members
            # Ask for one byte past the declared size: zipfile inflates no more than asked for per call, so a
            # small declared size cannot unpack a bomb (reading to the end could inflate up to 1 GiB at once).
            data = member.read(info.file_size + 1)
        if len(data) != info.file_size:
            raise InputError(f"{rel_name}: data.pkl holds {len(data)} bytes, not the {info.file_size} its zip entry "
                             "declares")
    return data, folder + "/", {i.orig_filename: i.file_size for i in infos}


def records_torch_ignores(names: list[str], prefix: str, keys: set[str]) -> list[str]:
    """One note per entry torch.load never reads: a storage no persistent id names, a record torch.save never
    writes (a pickle named data.txt, say). Loaders skip them; a strict reader, or another loader, may not."""
    notes = []
    for name in names:
        record = name[len(prefix):]
        if record.startswith("data/") and record[5:] not in keys:
            notes.append(f"holds storage {quoted(name)}, which no tensor references")
        elif not record.startswith("data/") and record not in TORCH_RECORDS:
            notes.append(f"holds {quoted(name)}, a record torch.save never writes")
    return notes
