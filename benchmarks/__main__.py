"""Benchmark headcheck scan/migrate against what users run today; print a Markdown table with every target.

    python -m benchmarks [--runs N] [--cache DIR] [--quick] [--json FILE] [--only SECTION ...]

Exit code 0 whenever the table was produced (missed targets are reported, not failed).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

from . import inputs as inputs_mod
from .measure import MB, spawn_floor
from .report import as_json, machine, markdown
from .remote import remote_bulk, remote_bytes
from .sections import Context, export, export_4x, local_scan, local_scan_7b, migrate, migrate_4x

SECTIONS = [local_scan, local_scan_7b, migrate, migrate_4x, export, export_4x, remote_bytes, remote_bulk]

REPO = Path(__file__).resolve().parent.parent
BUDGET_S = 600


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def snapshot(repo: Path, dest: Path, env: dict[str, str]) -> Path:
    """Copy headcheck/ (and rules/) into dest and compile it; measured commands run from there.

    Two reasons: the figures then belong to one version of the code even while the working tree is
    being edited, and headcheck runs with its .pyc files as an installed package does (in a sandbox with
    PYTHONDONTWRITEBYTECODE=1, running from the tree would recompile every module on every run).
    """
    shutil.rmtree(dest, ignore_errors=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(repo / "headcheck", dest / "headcheck", ignore=ignore)
    if (repo / "rules").is_dir():
        shutil.copytree(repo / "rules", dest / "rules", ignore=ignore)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(dest / "headcheck")], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    return dest


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    # The baselines load a local folder; never let them wait on the network.
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TRANSFORMERS_VERBOSITY="error",
               TOKENIZERS_PARALLELISM="false", PYTHONUNBUFFERED="1")
    env.pop("PYTHONPROFILEIMPORTTIME", None)
    return env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="rounds per measurement; the table shows medians (default 3)")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "headcheck-benchmarks",
                        help="where generated inputs are kept between runs (default ~/.cache/headcheck-benchmarks)")
    parser.add_argument("--quick", action="store_true", help="smoke run with ~10x smaller inputs")
    parser.add_argument("--json", type=Path, help="also write all samples as JSON to this file")
    parser.add_argument("--only", choices=[f.__name__ for f in SECTIONS], action="append",
                        help="run only these sections (repeatable)")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    started = time.monotonic()
    load_start = " ".join(f"{x:.2f}" for x in os.getloadavg())
    env = child_env()
    cache = args.cache.expanduser().resolve()
    inputs = inputs_mod.ensure(cache, args.quick, REPO, env, _progress)
    generated = time.monotonic() - started
    work = cache / "work"
    code = snapshot(REPO, work / "code", env)
    floor = spawn_floor(code, env, work / "logs")
    ctx = Context(REPO, code, work, args.runs, env, inputs, args.quick, _progress)
    sections = [fn(ctx) for fn in SECTIONS if not args.only or fn.__name__ in args.only]
    shutil.rmtree(work / "out", ignore_errors=True)
    info = {**machine(REPO), "load_start": load_start, "floor_mb": f"{floor / MB:.1f}"}
    print(markdown(sections, inputs, info, args.runs, args.quick))
    elapsed = time.monotonic() - started
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(f"\ntotal {elapsed:.0f} s (input generation/check {generated:.0f} s)"
          f"{'' if elapsed < BUDGET_S else f'; OVER the {BUDGET_S} s budget'}; "
          f"driver process peak RSS {own / MB:.1f} MB (not inherited: children are forked by benchmarks/spawn.py)")
    if args.json:
        args.json.write_text(json.dumps(as_json(sections, inputs, info, args.runs, args.quick), indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
