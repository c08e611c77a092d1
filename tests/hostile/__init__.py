"""Generators of hostile inputs, and the capped child process every hostile case is judged in."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MEMORY_CAP = 1 << 30  # address space of the child: a parser that tries to allocate beyond it fails there
CPU_SECONDS = 15  # the time cap of a child (a whole batch of cases shares it)


def _limits() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_SECONDS, CPU_SECONDS))


def capped_headcheck(*args, timeout: float = 600) -> subprocess.CompletedProcess:
    """`python -m headcheck ARGS` from this checkout, under 1 GiB of address space and 15 s of CPU."""
    return subprocess.run([sys.executable, "-m", "headcheck", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "PYTHONPATH": str(REPO)}, preexec_fn=_limits)


def scanned_in_batches(folders: list, fmt: str, *, size: int = 200, codes: tuple[int, ...] = (1, 2)):
    """Scan FOLDERS `size` at a time, each batch in one capped child: (batch, result) once the child printed
    no traceback and ended with one of `codes` (1 and 2: every case is dangerous or unreadable)."""
    for start in range(0, len(folders), size):
        batch = folders[start:start + size]
        done = capped_headcheck("scan", *batch, "--format", fmt, "--jobs", "2")
        assert "Traceback" not in done.stderr + done.stdout, done.stderr[-3000:]
        assert done.returncode in codes, done.stderr[-2000:]
        yield batch, done
