"""Run commands as child processes and record wall time and peak RSS (``os.wait4``), alternating variants.

Peak RSS comes from the child's ``ru_maxrss``, read with ``os.wait4`` by spawn.py, a small process
started per command: Linux carries the forking process's resident size into the child's maxrss (exec
keeps the old image's high-water mark), so forking from this driver would put a ~18 MB floor under
every figure; spawn.py's floor is ~7 MB and is printed with the table.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

MB = 1_000_000
SETTLE_S = 2.0  # pause after a run that wrote output (see settle)
SPAWN = Path(__file__).with_name("spawn.py")


@dataclass(frozen=True)
class Sample:
    wall: float  # seconds
    peak_rss: int  # bytes
    exit_code: int
    cpu: float = 0.0  # user + system seconds of the child and its waited-for descendants


@dataclass
class Variant:
    """One command measured in a group. `ok_codes` are the exit codes that count as a valid run."""

    key: str
    label: str
    cmd: Sequence[str]
    shown: str  # the command as printed in the table
    outputs: Sequence[Path] = ()  # removed (untimed) before every run
    ok_codes: frozenset[int] = frozenset({0})
    check: Callable[[str], str] | None = None  # stdout -> note; raises ValueError when the output is wrong
    env: dict[str, str | None] = field(default_factory=dict)  # overrides for this child; None removes a variable
    counter: Callable[[], int] | None = None  # read before and after each run; the difference is recorded
    warmup: bool = False  # run once, untimed, before the measured rounds (caches as on a user's second run)
    # folders read whole (untimed) before every run: the kernel evicts input pages while the slow baselines run
    # (this machine's DAMON pages out memory idle for seconds), and the first variant of each round re-read them
    # from disk for the floor that followed it: 0.52-0.57 s against 0.24-0.26 s for the same migrate
    reads: Sequence[Path] = ()


@dataclass
class Series:
    variant: Variant
    samples: list[Sample] = field(default_factory=list)
    error: str | None = None
    note: str = ""
    counts: list[int] = field(default_factory=list)  # counter differences, one per sample

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.samples)

    @property
    def wall(self) -> float:
        return statistics.median(s.wall for s in self.samples)

    @property
    def cpu(self) -> float:
        return statistics.median(s.cpu for s in self.samples)

    @property
    def rss(self) -> int:
        return int(statistics.median(s.peak_rss for s in self.samples))

    @property
    def count(self) -> int:
        return int(statistics.median(self.counts))

    @property
    def walls(self) -> list[float]:
        return [s.wall for s in self.samples]


def remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def settle() -> None:
    """Write back what a run wrote, and wait for this VM's host to take it: a migrate run just after a 1.7 GB copy
    was synced took 0.32-0.46 s, 0.24-0.30 s with this pause in between (Firecracker, 2026-12-07)."""
    os.sync()
    time.sleep(SETTLE_S)


def read_whole(folder: Path) -> None:
    """Every byte of every file below `folder`, read and dropped: the folder is in the page cache afterwards."""
    buffer = bytearray(8 << 20)
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            with path.open("rb", buffering=0) as handle:
                while handle.readinto(buffer):
                    pass


def run_once(cmd: Sequence[str], cwd: Path, env: dict[str, str], log_dir: Path) -> tuple[Sample, str, str]:
    """Run `cmd` to completion through spawn.py; return its sample, stdout and the tail of its stderr."""
    log_dir.mkdir(parents=True, exist_ok=True)
    out_path, err_path = log_dir / "stdout", log_dir / "stderr"
    spawner = [sys.executable, "-I", "-S", str(SPAWN), str(out_path), str(err_path), str(cwd), "--", *cmd]
    done = subprocess.run(spawner, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"spawn.py failed: {done.stderr.strip()}")
    wall, maxrss_kb, code, cpu = done.stdout.split()
    stderr = err_path.read_text(errors="replace")
    return Sample(float(wall), int(maxrss_kb) * 1024, int(code), float(cpu)), out_path.read_text(errors="replace"), stderr[-2000:]


def spawn_floor(cwd: Path, env: dict[str, str], log_dir: Path) -> int:
    """Peak RSS reported for `true`: the smallest figure any command can get (bytes)."""
    return run_once(["true"], cwd, env, log_dir / "floor")[0].peak_rss


def alternate(variants: Sequence[Variant], runs: int, cwd: Path, env: dict[str, str], log_dir: Path,
              progress: Callable[[str], None]) -> dict[str, Series]:
    """Run every variant once per round, `runs` rounds, so page-cache and clock drift hit all of them alike."""
    series = {v.key: Series(v) for v in variants}
    for variant in variants:
        if variant.warmup:
            for path in variant.outputs:
                remove(path)
            child_env = {k: v for k, v in {**env, **variant.env}.items() if v is not None}
            sample = run_once(variant.cmd, cwd, child_env, log_dir / variant.key)[0]
            progress(f"  warm-up    {variant.label:<44} {sample.wall:7.2f} s")
    for round_no in range(runs):
        # every other round in reverse: each variant follows each neighbour as often as it precedes it (a run just
        # after a large write is slower on this VM, and a fixed order put the same variant there every round)
        for variant in variants if round_no % 2 == 0 else variants[::-1]:
            result = series[variant.key]
            if result.error:
                continue
            for folder in variant.reads:
                read_whole(folder)
            # then the output's pages are freed, just before the run that writes as many: pages this VM leaves free
            # for 2 s are handed back to its host (free page reporting), and the next write into them took 3-8x as
            # long (README.md, Benchmarks)
            for path in variant.outputs:
                remove(path)
            os.sync()  # flush the previous variant's dirty pages outside the timed region
            child_env = {**env, **variant.env}
            child_env = {k: v for k, v in child_env.items() if v is not None}
            before = variant.counter() if variant.counter else 0
            sample, stdout, stderr = run_once(variant.cmd, cwd, child_env, log_dir / variant.key)
            counted = variant.counter() - before if variant.counter else 0
            if variant.outputs:
                settle()
            progress(f"  round {round_no + 1}/{runs}  {variant.label:<44} {sample.wall:7.2f} s "
                     f"(cpu {sample.cpu:6.2f} s) {sample.peak_rss / MB:7.0f} MB  exit {sample.exit_code}")
            if sample.exit_code not in variant.ok_codes:
                result.error = f"exit code {sample.exit_code}: {stderr.strip().splitlines()[-1] if stderr.strip() else ''}"
                continue
            if variant.check is not None:
                try:
                    result.note = variant.check(stdout)
                except ValueError as exc:
                    result.error = str(exc)
                    continue
            result.samples.append(sample)
            if variant.counter:
                result.counts.append(counted)
    for variant in variants:
        for path in variant.outputs:
            remove(path)
    return series
