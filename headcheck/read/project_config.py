"""The project configuration: `[tool.headcheck]` in pyproject.toml, or the top level of `.headcheck.toml`.

Found as ruff finds its configuration: from the scanned path upwards, the first folder holding
`.headcheck.toml`, or a `pyproject.toml` with a `[tool.headcheck]` table (a pyproject.toml without one is
passed over), wins; `.headcheck.toml` comes first in one folder. On disk the search ends at the filesystem
root; in a git commit (hook mode) at the repository root. Nothing outside the file is merged in.

The table is checked against headcheck/schemas/config.schema.json (shipped in the wheel); whatever is wrong
with it is a ConfigError naming the file and the key (`pyproject.toml: tool.headcheck.ignore[1]: ...`).
Rule codes and names are resolved one layer up (judge/suppress.py), which knows the rules.

Patterns (`exclude`, the keys of `per-path-ignores`) are globs relative to the configuration's folder,
matched one folder name at a time (fnmatch, case-sensitive): `*`, `?` and `[...]` never cross a `/`, `**`
stands for any number of folders. A pattern without a `/` matches a folder of that name at any depth (as in
.gitignore); a leading `/` anchors it to the configuration's folder. A path matches when it or one of its
parent folders does, so excluding a folder excludes everything below it.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from importlib import resources
from pathlib import Path, PurePath
from typing import Any

from ..errors import ConfigError
from .schema_check import first_error

CONFIG_NAMES = (".headcheck.toml", "pyproject.toml")  # in one folder, the first that holds a configuration wins
TABLE = "tool.headcheck"
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


@dataclass(frozen=True)
class ProjectConfig:
    file: str  # as shown to the user (relative to the current directory when below it; path@commit in a hook)
    root: PurePath  # the folder holding the file: what the patterns are relative to
    prefix: str  # "tool.headcheck" in pyproject.toml, "" at the top level of another file
    ignore: tuple[str, ...] = ()
    fail_on: str | None = None
    exclude: tuple[str, ...] = ()
    per_path_ignores: tuple[tuple[str, tuple[str, ...]], ...] = ()
    require_export: tuple[str, ...] = ()  # export targets every checkpoint must reach (HC147)

    def key(self, *parts: str | int) -> str:
        """The TOML key path of PARTS, for messages: tool.headcheck.per-path-ignores."models/*"[0]."""
        text = self.prefix
        for part in parts:
            if isinstance(part, int):
                text += f"[{part}]"
            else:
                quoted = part if _BARE_KEY.match(part) else json.dumps(part, ensure_ascii=False)
                text += ("." if text else "") + quoted
        return text

    def parts_of(self, path: PurePath) -> tuple[str, ...] | None:
        """PATH's folder names below the configuration's folder; None when PATH is not below it."""
        try:
            return PurePath(path).relative_to(self.root).parts
        except ValueError:
            return None

    def excluded_by(self, parts: tuple[str, ...]) -> str | None:
        """The first `exclude` pattern matching the path PARTS (relative to the configuration's folder)."""
        return next((p for p in self.exclude if matches(p, parts)), None)

    def ignores_at(self, parts: tuple[str, ...] | None) -> list[tuple[str, str]]:
        """(rule code or name, key that says so) for a path: `ignore`, then the `per-path-ignores` matching it."""
        found = [(rule, self.key("ignore")) for rule in self.ignore]
        if parts is not None:
            for pattern, rules in self.per_path_ignores:
                if matches(pattern, parts):
                    found.extend((rule, self.key("per-path-ignores", pattern)) for rule in rules)
        return found

    def all_rules(self) -> list[tuple[str, str]]:
        """Every rule the configuration names, with its exact key (for checking that each one exists)."""
        named = [(rule, self.key("ignore", i)) for i, rule in enumerate(self.ignore)]
        for pattern, rules in self.per_path_ignores:
            named.extend((rule, self.key("per-path-ignores", pattern, i)) for i, rule in enumerate(rules))
        return named


def matches(pattern: str, parts: tuple[str, ...]) -> bool:
    """Whether PATTERN (see the module docstring) matches the path PARTS or one of its parent folders."""
    body = pattern.strip("/")
    segments = [s for s in body.split("/") if s]
    if "/" not in body and not pattern.startswith("/"):  # a folder name, at any depth
        return any(fnmatchcase(part, segments[0]) for part in parts)
    return any(_match(segments, parts[:end]) for end in range(1, len(parts) + 1))


def _match(segments: list[str], parts: tuple[str, ...]) -> bool:
    if not segments:
        return not parts
    if segments[0] == "**":
        return any(_match(segments[1:], parts[i:]) for i in range(len(parts) + 1))
    return bool(parts) and fnmatchcase(parts[0], segments[0]) and _match(segments[1:], parts[1:])


# -- reading -------------------------------------------------------------------------------------------


def parse_config(raw: bytes, file: str, root: PurePath, *, pyproject: bool) -> ProjectConfig | None:
    """The configuration in RAW (the bytes of FILE); None for a pyproject.toml without a [tool.headcheck] table."""
    if pyproject and b"headcheck" not in raw:  # someone else's pyproject.toml: not even parsed
        return None
    import tomllib  # only where a configuration may be

    try:
        doc = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(file, None, "not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(file, None, f"invalid TOML: {exc}") from None
    if pyproject:
        tool = doc.get("tool")
        if not isinstance(tool, dict) or "headcheck" not in tool:
            return None
        table, prefix = tool["headcheck"], TABLE
        if not isinstance(table, dict):
            raise ConfigError(file, TABLE, "must be a table ([tool.headcheck])")
    else:
        table, prefix = doc, ""
        if isinstance(doc.get("tool"), dict) and "headcheck" in doc["tool"]:
            raise ConfigError(file, TABLE, f"{Path(file).name} holds the keys at its top level, "
                                           "without a [tool.headcheck] table (that one is for pyproject.toml)")
    config = ProjectConfig(file=file, root=root, prefix=prefix)
    _validate(table, raw, config)
    return ProjectConfig(
        file=file, root=root, prefix=prefix,
        ignore=tuple(table.get("ignore", ())),
        fail_on=table.get("fail-on"),
        exclude=tuple(table.get("exclude", ())),
        per_path_ignores=tuple((pattern, tuple(rules)) for pattern, rules in table.get("per-path-ignores", {}).items()),
        require_export=tuple(table.get("require-export", ())),
    )


def schema_bytes() -> bytes:
    return (resources.files("headcheck") / "schemas" / "config.schema.json").read_bytes()


def _validate(table: dict[str, Any], raw: bytes, config: ProjectConfig) -> None:
    raw_schema = schema_bytes()
    error = first_error(table, raw, raw_schema, "validated-config")
    if error is None:
        return
    path = list(error.absolute_path)
    # the schema's own wording for a string of the wrong form; jsonschema's for the rest ("is not of type ...")
    ours = error.schema.get("errorMessage") if isinstance(error.schema, dict) and error.validator == "pattern" else None
    problem = f"{error.instance!r}: {ours}" if ours else error.message
    if error.validator == "additionalProperties":
        known = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(known))
        path.append(extra[0])
        near = extra[0].replace("_", "-")
        problem = (f"unknown key; did you mean {near!r}?" if near in known
                   else f"unknown key (known: {', '.join(known)})")
    elif "propertyNames" in error.schema_path:  # the key itself is wrong
        path.append(error.instance)
    raise ConfigError(config.file, config.key(*path) or "(top level)", problem)


def shown(path: Path, cwd: Path | None = None) -> str:
    """PATH relative to the current directory when it lies below it, else absolute."""
    rel = os.path.relpath(path, cwd or os.getcwd())
    return path.as_posix() if rel == os.pardir or rel.startswith(os.pardir + os.sep) else Path(rel).as_posix()


def discover(folders: Iterable[PurePath], read: Callable[[PurePath], bytes | None],
             show: Callable[[PurePath], str]) -> ProjectConfig | None:
    """The first configuration in FOLDERS (nearest first); READ gives a file's bytes, or None when it is absent."""
    for folder in folders:
        for name in CONFIG_NAMES:
            raw = read(folder / name)
            if raw is None:
                continue
            found = parse_config(raw, show(folder / name), folder, pyproject=name == "pyproject.toml")
            if found is not None:
                return found
    return None


def _read_file(path: PurePath) -> bytes | None:
    try:
        return Path(path).read_bytes() if Path(path).is_file() else None
    except OSError as exc:
        raise ConfigError(str(path), None, f"cannot be read ({exc.strerror})") from None


def _found_on_the_way(path: PurePath) -> bytes | None:
    """A configuration file searched for upwards; a folder the user may not enter holds none they could mean,
    and the scan of anything inside it says itself that it cannot be read (exit 2, not a configuration error)."""
    try:
        present = Path(path).is_file()
    except PermissionError:
        return None
    return _read_file(path) if present else None


def find_config(start: Path) -> ProjectConfig | None:
    """The configuration that applies to START (a folder or file on disk), searching upwards to the root."""
    start = Path(os.path.abspath(start))
    first = start if os.path.isdir(start) else start.parent  # os.path: False, not an error, where access is denied
    return discover([first, *first.parents], _found_on_the_way, shown)


def load_config(path: Path) -> ProjectConfig:
    """`--config FILE`: that file, whatever its name; a pyproject.toml must have the [tool.headcheck] table."""
    full = Path(os.path.abspath(path))
    raw = _read_file(full)
    if raw is None:
        raise ConfigError(str(path), None, "no such file")
    pyproject = full.name == "pyproject.toml"
    found = parse_config(raw, shown(full), full.parent, pyproject=pyproject)
    if found is None:
        raise ConfigError(shown(full), TABLE, "no [tool.headcheck] table in this pyproject.toml")
    return found
