"""Render the results as Markdown (pasteable into README) and as JSON."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
from pathlib import Path

from .inputs import Checkpoint
from .measure import MB
from .sections import Section


def machine(repo: Path) -> dict[str, str]:
    cpu = ""
    try:
        cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name")), "")
    except OSError:
        pass
    try:
        commit = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=repo, capture_output=True, text=True,
                                timeout=10, check=False).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": platform.machine(),  # uname -m
        "cpus": str(os.cpu_count()),
        "cpus_usable": str(len(os.sched_getaffinity(0))) if hasattr(os, "sched_getaffinity") else "",
        "cpu": cpu,
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "commit": commit,
        "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def _cell_wall(series) -> str:
    return f"{series.wall:.3f} s" if series.wall < 10 else f"{series.wall:.1f} s"


def markdown(sections: list[Section], inputs: dict[str, Checkpoint], info: dict[str, str], runs: int,
             quick: bool) -> str:
    """`info` is machine() plus "load_start" and "floor_mb" (peak RSS reported for `true`)."""
    lines = [
        (f"headcheck benchmarks, {info['date']}; {info['machine']}, {info['cpus']} CPUs"
         f"{'' if info['cpus_usable'] in ('', info['cpus']) else ' (' + info['cpus_usable'] + ' usable)'}"
         f" ({info['cpu']}), {info['system']}, Python {info['python']}; headcheck {info['commit']} "
         f"(run from a compiled copy of the working tree)"),
        (f"whole processes, median of {runs} alternating runs"
         f"{' (QUICK: small inputs, targets indicative only)' if quick else ''}; "
         f"load average {info['load_start']} at start, {info['load']} at end; "
         f"peak RSS floor (what `true` gets) {info['floor_mb']} MB"),
        "",
        "inputs:",
        *[f"- {cp.describe()}" for cp in inputs.values()],
        "",
        "| measurement | wall (median) | wall (min-max) | CPU user+sys | peak RSS (median) | notes |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for section in sections:
        lines.append(f"| **{section.title}** | | | | | |")
        for row in section.rows:
            series = row.series
            if series is None:
                lines.append(f"| {row.label} | | | | | not measured: {row.reason} |")
            elif not series.ok:
                lines.append(f"| {row.label} | | | | | ERROR: {series.error} |")
            else:
                spread = f"{min(series.walls):.2f}-{max(series.walls):.2f} s"
                lines.append(f"| {row.label} | {_cell_wall(series)} | {spread} | {series.cpu:.2f} s | {series.rss / MB:.1f} MB | "
                             f"{series.note if row.note is None else row.note} |")
    lines += ["", "| target | measured | result |", "|---|---|---|"]
    met = missed = unmeasured = 0
    for section in sections:
        for target in section.targets:
            if target.met is None and target.measured.startswith("not measured"):
                result, unmeasured = "NOT MEASURED", unmeasured + 1
            elif target.met is None:
                result = "info"
            elif target.met:
                result, met = "MET", met + 1
            else:
                result, missed = "MISSED", missed + 1
            lines.append(f"| {target.text} | {target.measured} | {result} |")
    lines += ["", f"targets: {met} met, {missed} missed, {unmeasured} not measured"]
    lines += ["", "commands (OUT is a fresh folder, removed before each run; a copying command's input folder is read into the page cache before each run):"]
    for section in sections:
        for row in section.rows:
            if row.series is not None:
                lines.append(f"- {row.label}: `{row.series.variant.shown}`")
    return "\n".join(lines)


def as_json(sections: list[Section], inputs: dict[str, Checkpoint], info: dict[str, str], runs: int,
            quick: bool) -> dict:
    return {
        "machine": info,
        "runs": runs,
        "quick": quick,
        "inputs": {cp.name: cp.info for cp in inputs.values()},
        "sections": [
            {
                "title": s.title,
                "rows": [
                    {"label": r.label, "reason": r.reason} if r.series is None else {
                        "label": r.label, "command": list(r.series.variant.cmd), "error": r.series.error,
                        "note": r.series.note if r.note is None else r.note, "counts": r.series.counts,
                        "samples": [{"wall_s": x.wall, "cpu_s": x.cpu, "peak_rss_bytes": x.peak_rss, "exit_code": x.exit_code}
                                    for x in r.series.samples],
                    }
                    for r in s.rows
                ],
                "targets": [{"text": t.text, "measured": t.measured, "met": t.met} for t in s.targets],
            }
            for s in sections
        ],
    }
