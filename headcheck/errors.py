"""Errors that end a scan before any rule runs; the CLI maps each to an exit code."""


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
