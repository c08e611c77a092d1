"""Where a finding points in a file: the line of the JSON key it is about (annotations, SARIF regions).

Best effort and never failing: line 1 whenever the file is missing, binary, unreadable, or the key is
unknown or cannot be found.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from urllib.parse import quote

from ..model import Finding, Report

MAX_BYTES = 16 * 1024 * 1024  # config files are small; do not read a large file only to find a line
_INDEX = re.compile(r"\[\d+\]$")  # architectures[0] -> architectures
HUB_URL = "https://huggingface.co"
# When a finding names no file, point at the checkpoint's main config (annotations need a file).
MAIN_FILES = ("config.json", "adapter_config.json", "head_config.json", "adapter_model.safetensors")


def line_of(path: Path, key: str | None) -> int:
    """The 1-based line where KEY first appears in the JSON (or YAML front matter) text file PATH.

    KEY is a top-level key (``label2id``) or a dotted path (``prediction_heads.sst.num_labels``): each
    component is looked for after the place of the previous one. A component that holds a dot itself
    (a tensor name such as ``classifier.weight`` in a shard index) is found too, as the longest run of
    components that occurs. When only a prefix of the path is found, the line of its last component.
    """
    if not key:
        return 1
    text = _read_text(Path(path))
    if text is None:
        return 1
    parts = [_INDEX.sub("", part) for part in key.split(".")]
    offset, found = 0, None
    i = 0
    while i < len(parts):
        for j in range(len(parts), i, -1):  # longest dotted run first
            match = _find_key(text, ".".join(parts[i:j]), offset)
            if match is not None:
                offset, found, i = match + 1, match, j
                break
        else:
            break
    return 1 if found is None else text.count("\n", 0, found) + 1


def _read_text(path: Path) -> str | None:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except OSError:
        return None
    if len(data) > MAX_BYTES or b"\0" in data[:8192]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _find_key(text: str, name: str, start: int) -> int | None:
    """Offset of the first `"name":` (JSON) or `name:` at a line start (YAML) at or after START."""
    quoted = [json.dumps(name, ensure_ascii=False), json.dumps(name)]
    patterns = [re.escape(q) + r"\s*:" for q in dict.fromkeys(quoted)]
    patterns.append(r"(?m)^[ \t-]*" + re.escape(name) + r"[ \t]*:")
    best = None
    for pattern in patterns:
        match = re.compile(pattern).search(text, start)
        if match is not None and (best is None or match.start() < best):
            best = match.start()
    if best is None:
        return None
    # point at the key itself, not the indentation before a YAML key
    return best + len(text[best:]) - len(text[best:].lstrip(" \t-"))


# -- where a finding of a report points: a path (as the report names it) and a line ----------------

def finding_path(report: Report, finding: Finding) -> tuple[str, str | None]:
    """(path of the file the finding is about, key to look for). `Finding.file` is relative to the
    report's source folder; findings without a file point at the scanned file itself, or at the
    checkpoint's main config."""
    folder = checkpoint_dir(report.source)
    if finding.file:
        return _join(folder, finding.file), finding.key
    if "://" not in report.source and Path(report.source).is_file():
        return report.source, finding.key
    main = next((name for name in MAIN_FILES if name in report.files), report.files[0] if report.files else None)
    return (_join(folder, main), finding.key) if main else (folder, None)


def finding_line(report: Report, finding: Finding) -> int:
    """The line of the finding's key in its file; 1 for binary, remote or missing files."""
    path, key = finding_path(report, finding)
    return 1 if "://" in path else line_of(Path(path), key)


def display_path(path: str, base: Path | None = None) -> str:
    """PATH relative to BASE (default: the cwd) when it lies inside it, else absolute; '/' separators."""
    if "://" in path:
        return path
    base = (base or Path.cwd()).resolve()
    absolute = Path(os.path.abspath(path))
    try:
        return absolute.relative_to(base).as_posix()
    except ValueError:
        resolved = absolute.resolve()
        try:
            return resolved.relative_to(base).as_posix()
        except ValueError:
            return resolved.as_posix()


def checkpoint_dir(source: str) -> str:
    """The folder findings' files are relative to: the source, the folder of a scanned file, or for a
    Hub repository (`org/name[@revision]` that is no local path) its file-browser URL."""
    if "://" in source or Path(source).is_dir():
        return source
    if not Path(source).exists():
        return _hub_url(source) or source
    return str(Path(source).parent)


def _hub_url(source: str) -> str | None:
    from .local import looks_like_repo_id

    if not looks_like_repo_id(source):
        return None
    repo, _, revision = source.partition("@")
    return f"{HUB_URL}/{repo}/blob/{quote(revision or 'main', safe='')}"


def _join(folder: str, name: str) -> str:
    return f"{folder.rstrip('/')}/{name}" if "://" in folder else str(Path(folder) / name)
