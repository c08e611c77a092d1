"""Parse a checkpoint's JSON file strictly: what transformers' own `json.load` would read, or InputError.

Hand-written around the standard json module because it happily returns NaN, silently keeps the last of
duplicate keys, and answers hostile input with RecursionError or ValueError instead of one clear line.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ..errors import InputError

MAX_JSON_BYTES = 64 << 20  # configs are kilobytes and shard indexes a few megabytes


def parse_json(raw: bytes, rel: str) -> Any:
    if len(raw) > MAX_JSON_BYTES:
        raise InputError(f"{rel}: {len(raw):,} bytes, too large for a config (limit {MAX_JSON_BYTES:,})")
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InputError(f"{rel}: UTF-16 text; transformers reads configs as UTF-8")
    if raw.startswith(b"\xef\xbb\xbf"):
        raise InputError(f"{rel}: starts with a byte-order mark, which transformers' JSON reader rejects")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{rel}: not UTF-8 text (byte {exc.start}), expected JSON") from None
    try:
        return json.loads(text, object_pairs_hook=_unique_keys(rel), parse_constant=_no_constants(rel))
    except json.JSONDecodeError as exc:
        raise InputError(f"{rel}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except RecursionError:
        raise InputError(f"{rel}: JSON nested too deeply to be a config") from None
    except ValueError as exc:  # e.g. an integer beyond Python's digit limit
        raise InputError(f"{rel}: unreadable JSON value ({str(exc).splitlines()[0]})") from None


def _unique_keys(rel: str):
    def build(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result = dict(pairs)
        if len(result) != len(pairs):
            seen: set[str] = set()
            duplicate = next(key for key, _ in pairs if key in seen or seen.add(key))
            raise InputError(f"{rel}: key {quoted(duplicate)} appears twice; readers disagree on which one counts")
        return result

    return build


def _no_constants(rel: str):
    def reject(name: str) -> Any:
        raise InputError(f"{rel}: {name} is not a JSON value")

    return reject


def json_kind(value: Any) -> str:
    """What a parsed JSON value is, in JSON's words, for messages such as `the JSON is an array`."""
    if value is None:
        return "null"
    kinds = {bool: "true or false", str: "a string", list: "an array", dict: "an object"}
    return kinds.get(type(value), "a number")


def is_number(value: Any) -> bool:
    """A JSON number as parsed: an int or a float, never a bool (which Python counts as an int)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def quoted(text: str) -> str:
    """A name or value from a possibly hostile file, for a one-line message: lone surrogates and control
    characters escaped, length bounded."""
    shown = ascii(text)
    return shown if len(shown) <= 80 else shown[:77] + "..."


# A JSON string may hold an escaped lone surrogate, and Python's reader keeps it in the string: no encoder writes
# one as UTF-8, so text output would crash (or, under surrogateescape, emit a byte that is no UTF-8 at all).
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def dump_json(value: Any, **options: Any) -> str:
    """json.dumps keeping non-ASCII text readable, except lone surrogates, which become \\u escapes: the text
    encodes as UTF-8 and reads back to the same strings (surrogates appear only inside JSON strings)."""
    text = json.dumps(value, ensure_ascii=False, **options)
    return _LONE_SURROGATE.sub(lambda match: f"\\u{ord(match[0]):04x}", text)
