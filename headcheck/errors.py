"""Errors that end a scan before any rule runs, or a migrate before it writes; the CLI maps each to an exit code."""


class InputError(Exception):
    """The input could not be read: bad path, corrupt or truncated file, LFS pointer (exit code 2)."""


class NothingScannedError(Exception):
    """The input was read but holds nothing headcheck recognises (exit code 3)."""


class UnsafePickleError(InputError):
    """A pickle references a global outside the allow-list; it is reported, never loaded."""

    def __init__(self, path: str, globals_found: list[str]):
        self.path = path
        self.globals_found = globals_found
        super().__init__(f"{path}: pickle references non-allow-listed globals: {', '.join(globals_found)}")


class MergeUnavailableError(Exception):
    """numpy, which merging an adapter into base weights needs, is not installed (the 'export' extra).

    Here rather than beside the merge, so that the CLI names it without importing the merge arithmetic."""


class PublishRefusedError(Exception):
    """A Hub commit was not made because it would not be right: nothing to fix, or a target that exists."""


class ConfigError(Exception):
    """A project configuration ([tool.headcheck], .headcheck.toml, --config, --ignore) is malformed (exit code 4).

    The message names the file and the key, e.g.
    `pyproject.toml: tool.headcheck.ignore[1]: unknown rule 'multilabel-heads'`.
    """

    def __init__(self, file: str | None, key: str | None, problem: str):
        self.file = file
        self.key = key
        self.problem = problem
        super().__init__(": ".join(part for part in (file, key, problem) if part))
