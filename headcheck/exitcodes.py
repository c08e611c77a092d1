"""The exit-code contract (DESIGN.md), owned here and nowhere else."""

import enum


class ExitCode(enum.IntEnum):
    OK = 0  # nothing at or above --fail-on
    FINDINGS = 1  # findings at or above --fail-on
    INPUT_ERROR = 2  # the input could not be read
    NOTHING_SCANNED = 3  # nothing recognisable was scanned
    USAGE = 4  # bad command line (click's own usage errors use 2, remapped in cli.main)
