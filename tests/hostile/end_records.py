"""Zips whose end records were edited in place (issue 21, class 6), generated at test time: the size or offset of
the central directory (and the entry count) in the end-of-central-directory record, and in the ZIP64 end record
torch always writes, moved by a little or set to 0 or all ones. scan and migrate must answer each alike: migrate
never writes what scan refuses.
"""

from __future__ import annotations

import struct

from . import zips

# field -> (offset in its record, struct format); the end record first, then the ZIP64 one
END_FIELDS = {"count": (10, "<H"), "size": (12, "<L"), "offset": (16, "<L")}
END64_FIELDS = {"count": (32, "<Q"), "size": (40, "<Q"), "offset": (48, "<Q")}
EDITS = {"plus-1": lambda v, top: v + 1, "minus-1": lambda v, top: v - 1, "zero": lambda v, top: 0,
         "ones": lambda v, top: top, "plus-4096": lambda v, top: v + 4096}


def _edited(data: bytes, at: int, fmt: str, edit) -> bytes:
    top = (1 << (8 * struct.calcsize(fmt))) - 1
    (value,) = struct.unpack_from(fmt, data, at)
    out = bytearray(data)
    struct.pack_into(fmt, out, at, edit(value, top) & top)
    return bytes(out)


def cases(decoy: bytes) -> dict[str, bytes]:
    """'form--record--field--edit' -> the edited file, for one role's clean zip `decoy` (written anew, plain and
    with ZIP64 end records)."""
    members = zips.members_of(decoy)
    out = {}
    for form, data in (("plain", zips.build(members)), ("zip64", zips.build(members, zip64=True))):
        end = len(data) - zips.EOCD.size
        records = {"end": (end, END_FIELDS)}
        if form == "zip64":
            records["end64"] = (end - zips.LOCATOR64.size - zips.EOCD64.size, END64_FIELDS)
        for record, (start, fields) in records.items():
            for field, (offset, fmt) in fields.items():
                for edit_name, edit in EDITS.items():
                    out[f"{form}--{record}--{field}--{edit_name}"] = _edited(data, start + offset, fmt, edit)
    return out
