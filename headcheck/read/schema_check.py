"""Validate data against a JSON Schema shipped with headcheck, once per content on this machine.

A stamp file named by the bytes' crc32 and length marks bytes that validated before, which spares every
later run jsonschema's import (~250 ms); edited bytes (of the data or of the schema) are validated again.
Used for the rule data (judge/ruledata.py) and the project configuration (read/project_config.py).
"""

from __future__ import annotations

import json
import os
import zlib
from pathlib import Path
from typing import Any


def validation_stamp(raw: bytes, kind: str) -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    # crc32 + length identifies the bytes well enough here and, unlike hashlib, costs no import
    return Path(cache) / "headcheck" / kind / f"{zlib.crc32(raw):08x}-{len(raw)}"


def first_error(data: Any, raw_data: bytes, raw_schema: bytes, kind: str):
    """The most relevant jsonschema ValidationError of DATA (parsed from RAW_DATA), or None when it is valid."""
    stamp = validation_stamp(raw_data + b"\0" + raw_schema, kind)
    if stamp.exists():
        return None
    import jsonschema  # only when these bytes were never validated on this machine

    validator = jsonschema.Draft202012Validator(json.loads(raw_schema), format_checker=jsonschema.FormatChecker())
    error = jsonschema.exceptions.best_match(validator.iter_errors(data))
    if error is None:
        try:
            stamp.parent.mkdir(parents=True, exist_ok=True)
            stamp.touch()
        except OSError:  # a read-only home only costs the next run a validation
            pass
    return error
