"""Hostile pickles, generated at test time (never committed as binaries): every payload, if it ever ran,
would create the canary file. Built from the known ways around pickle scanners (picklescan, modelscan and
fickling test these): every protocol, GLOBAL / STACK_GLOBAL / INST / OBJ / NEWOBJ / REDUCE, protocol-2 name
remapping, dotted names, memoised and unresolvable operands, extension codes, a payload after a good stream.
"""

from __future__ import annotations

import os
import pickle
import struct
from pathlib import Path
from typing import Callable


class _Reduce:
    def __init__(self, func, args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _u(text: str) -> bytes:  # SHORT_BINUNICODE
    raw = text.encode()
    return b"\x8c" + bytes([len(raw)]) + raw


def payloads(canary: Path) -> dict[str, bytes]:
    touch = f"touch {canary}"
    code = f"open({str(canary)!r}, 'w').close()"
    import builtins
    import subprocess

    cases: dict[str, bytes] = {}
    for protocol in range(6):
        cases[f"os.system-p{protocol}"] = pickle.dumps(_Reduce(os.system, (touch,)), protocol=protocol)
        cases[f"exec-p{protocol}"] = pickle.dumps(_Reduce(builtins.exec, (code,)), protocol=protocol)  # __builtin__ < 3
        cases[f"eval-p{protocol}"] = pickle.dumps(_Reduce(builtins.eval, (code,)), protocol=protocol)
        cases[f"popen-p{protocol}"] = pickle.dumps(_Reduce(subprocess.Popen, (["touch", str(canary)],)), protocol=protocol)
        cases[f"import-p{protocol}"] = pickle.dumps(_Reduce(builtins.__import__, ("os",)), protocol=protocol)
    arg = _u(touch)
    cases.update({
        # protocol 4 dotted names resolve attribute chains: builtins + eval.__call__, pathlib + os.system
        "dotted-eval-call": b"\x80\x04" + _u("builtins") + _u("eval.__call__") + b"\x93" + _u(code) + b"\x85R.",
        "dotted-pathlib-os-system": b"\x80\x04" + _u("pathlib") + _u("os.system") + b"\x93" + arg + b"\x85R.",
        # STACK_GLOBAL operands from the memo, and from a memo slot never written
        "memoised-operands": b"\x80\x04" + _u("posix") + b"\x94" + _u("system") + b"\x94" + b"h\x00h\x01\x93" + arg + b"\x85R.",
        "undefined-memo": b"\x80\x04" + b"h\x07h\x08\x93" + arg + b"\x85R.",
        # computed operands: STACK_GLOBAL fed by a call result, not a string push
        "computed-operand": b"\x80\x04" + _u("builtins") + _u("str") + b"\x93" + _u("os") + b"\x85R" + _u("system") + b"\x93" + arg + b"\x85R.",
        "inst-p0": b"(S'" + touch.encode() + b"'\nios\nsystem\n.",
        "obj-p1": b"(cos\nsystem\nX" + struct.pack("<I", len(touch)) + touch.encode() + b"o.",
        "newobj-p2": b"\x80\x02cos\nsystem\n" + b"X" + struct.pack("<I", len(touch)) + touch.encode() + b"\x85\x81.",
        "commands-remap-p2": b"\x80\x02ccommands\ngetoutput\nX" + struct.pack("<I", len(touch)) + touch.encode() + b"\x85R.",
        "copy_reg-p2": b"\x80\x02ccopy_reg\n_reconstructor\ncos\nsystem\n" + b"X" + struct.pack("<I", len(touch)) + touch.encode() + b"\x86R.",
        "extension-code": b"\x80\x02\x82\x01" + b"X" + struct.pack("<I", len(touch)) + touch.encode() + b"\x85R.",
        "torch-gadget": b"\x80\x02ctorch.serialization\nload\nX" + struct.pack("<I", len(touch)) + touch.encode() + b"\x85R.",
        "torch-prefix": b"\x80\x02ctorch._utils\n_rebuild_tensor_v2.__globals__\n.",
        "popped-call-result": b"\x80\x02cos\nsystem\nX" + struct.pack("<I", len(touch)) + touch.encode() + b"\x85R0}.",
        "after-a-good-stream": pickle.dumps({}, protocol=2)[:-1] + b"0cos\nsystem\nX" + struct.pack("<I", len(touch))
        + touch.encode() + b"\x85R.",
        # a FRAME whose declared length straddles the opcodes after it (pickletools does not check frames)
        "frame-straddling": b"\x80\x04\x95" + struct.pack("<Q", 3) + _u("os") + _u("system") + b"\x93" + arg + b"\x85R.",
        # BUILD setting attributes on an object the pickle did not get from an allowed constructor
        "build-on-global": b"\x80\x02cos\nenviron\n}X\x04\x00\x00\x00PATHX\x01\x00\x00\x00.sb.",
        # "billion laughs": one list duplicated by memo and DUP into a structure far larger than the file
        "memo-expansion": b"\x80\x02]" + b"q\x00" + b"".join(b"h\x00h\x00\x86q\x00" for _ in range(60)) + b".",
        "dup-expansion": b"\x80\x02]" + b"2" * 100_000 + b"(" + b"t" + b".",
        "deep-nesting": b"\x80\x02" + b"]" * 50_000 + b"a" * 49_999 + b".",
        "declared-length-beyond-file": b"\x80\x02X" + struct.pack("<I", 2 ** 31) + b"abc",
        "bytes8-huge": b"\x80\x04\x8e" + struct.pack("<Q", 2 ** 62) + b"x.",
    })
    return cases


def wrappers(make_zip: Callable[[bytes], bytes],
             zip_members: Callable[[list[tuple[str, bytes]]], bytes]) -> dict[str, Callable[[bytes], bytes]]:
    """How a payload reaches a loader: inside torch's zip, as a plain pickle named .bin, as the legacy format."""
    legacy_magic = pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2)
    def other_prefix(payload: bytes) -> bytes:  # torch takes the folder name from the first entry
        return make_zip(payload).replace(b"archive/", b"weights/")

    return {
        "zip": make_zip,
        "zip-other-prefix": other_prefix,
        # duplicate entry names: Python's zipfile returns the last, other readers the first
        "zip-duplicate-payload-last": lambda payload: zip_members(
            [("archive/data.pkl", pickle.dumps({}, protocol=2)), ("archive/data.pkl", payload)]),
        "zip-duplicate-payload-first": lambda payload: zip_members(
            [("archive/data.pkl", payload), ("archive/data.pkl", pickle.dumps({}, protocol=2))]),
        "plain": lambda payload: payload,
        "legacy-object": lambda payload: legacy_magic + pickle.dumps(1001, protocol=2) + pickle.dumps({}, protocol=2) + payload,
        "legacy-sysinfo": lambda payload: legacy_magic + pickle.dumps(1001, protocol=2) + payload,
    }
