"""Remote (Hub) scan sections, measured against the local test hub of issue 4 (tests/hubserver.py).

The hub runs as its own process (benchmarks.hubserve) serving the generated checkpoints as repos;
each scan gets a fresh, empty HF_HUB_CACHE, so every run fetches what it needs over HTTP. When
something these rows need is missing, they print "not measured: <reason>".
"""

from __future__ import annotations

import importlib.util
import json
import struct
import subprocess
import sys
import urllib.request
from pathlib import Path

from .inputs import Checkpoint
from .measure import MB, Series, Variant
from .sections import Context, Row, Section, Target, _headcheck, _scan_check

SINGLE = {"hub_st": "bert", "hub_bin": "bertbin", "hub_7b": "llama"}  # variant -> input kind
BULK_REPOS = 200
BULK_JOBS = 8
BULK_KINDS = ("bert", "bertbin", "wide", "llama")  # the 200 bulk repos cycle through these


def _unavailable(repo: Path) -> str | None:
    if not (repo / "tests" / "hubserver.py").is_file():
        return "the local test hub tests/hubserver.py is missing"
    for module in ("pytest_httpserver", "werkzeug"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed (pip install -e '.[test]')"
    return None


class HubServer:
    """benchmarks.hubserve in a child process, stopped by closing its standard input."""

    def __init__(self, repos: dict[str, Path], repo: Path, env: dict[str, str]):
        self.repos, self.repo, self.env = repos, repo, env
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def __enter__(self) -> HubServer:
        spec = json.dumps({name: str(path) for name, path in self.repos.items()})
        self.proc = subprocess.Popen([sys.executable, "-m", "benchmarks.hubserve", spec], cwd=self.repo, env=self.env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.endpoint = self.proc.stdout.readline().strip()
        if not self.endpoint.startswith("http"):
            self.__exit__()
            raise RuntimeError("the local test hub did not start")
        return self

    def sent(self, names) -> int:
        with self.opener.open(f"{self.endpoint}/__benchmarks__/bytes", timeout=30) as answer:
            counts = json.load(answer)
        return sum(counts.get(name, 0) for name in names)

    def __exit__(self, *exc) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _bulk_supported(ctx: Context) -> bool:
    done = subprocess.run(_headcheck("scan", "--help"), cwd=ctx.code, env=ctx.env, capture_output=True, text=True,
                          check=False)
    return "--jobs" in done.stdout and "--from-file" in done.stdout


def _bulk_check(stdout: str) -> str:
    lines = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    errors = [line for line in lines if "error" in line]
    if len(lines) != BULK_REPOS or errors:
        first = f"; first error: {errors[0].get('source')}: {errors[0].get('error')}" if errors else ""
        raise ValueError(f"{len(lines)} JSON lines for {BULK_REPOS} repos, {len(errors)} errors{first}")
    verdicts: dict[str, int] = {}
    for line in lines:
        verdicts[line["verdict"]] = verdicts.get(line["verdict"], 0) + 1
    return f"{len(lines)} reports: " + ", ".join(f"{v} {n}" for v, n in sorted(verdicts.items()))


def _remote_group(ctx: Context) -> dict[str, Series]:
    if "remote" in ctx.groups:
        return ctx.groups["remote"]
    reason = _unavailable(ctx.repo)
    if reason:
        ctx.reasons["remote"] = reason
        ctx.groups["remote"] = {}
        return {}
    singles = {f"acme/{ctx.inputs[kind].name}": ctx.inputs[kind].path for kind in SINGLE.values()}
    bulk = {f"bulk/repo-{i:03d}": ctx.inputs[BULK_KINDS[i % len(BULK_KINDS)]].path for i in range(BULK_REPOS)}
    listing = ctx.work / "bulk-repos.txt"
    listing.parent.mkdir(parents=True, exist_ok=True)
    listing.write_text("".join(f"{name}\n" for name in bulk))
    bulk_ok = _bulk_supported(ctx)
    if not bulk_ok:
        ctx.reasons["bulk"] = "`headcheck scan` has no --jobs/--from-file yet (bulk part of issue 4)"
    try:
        with HubServer({**singles, **bulk}, ctx.repo, ctx.env) as hub:
            return _measure(ctx, hub, bulk if bulk_ok else None, listing)
    except (OSError, RuntimeError) as exc:
        ctx.reasons["remote"] = f"the local test hub failed: {exc}"
        ctx.groups["remote"] = {}
        return {}


def _measure(ctx: Context, hub: HubServer, bulk: dict[str, Path] | None, listing: Path) -> dict[str, Series]:
    def env(key: str) -> dict[str, str | None]:
        return {"HF_ENDPOINT": hub.endpoint, "HF_HUB_CACHE": str(ctx.work / "hf-cache" / key),
                "HF_HUB_OFFLINE": None, "TRANSFORMERS_OFFLINE": None, "NO_PROXY": "127.0.0.1,localhost"}

    def variants() -> list[Variant]:
        found = []
        for key, kind in SINGLE.items():
            cp = ctx.inputs[kind]
            name = f"acme/{cp.name}"
            found.append(Variant(key, f"headcheck scan {name} (hub)", _headcheck("scan", name, "--format", "json"),
                                 f"python -m headcheck scan {name} --format json", outputs=[ctx.work / "hf-cache" / key],
                                 ok_codes=frozenset({0, 1}), check=_scan_check, env=env(key),
                                 counter=lambda name=name: hub.sent([name])))
        if bulk is not None:
            cmd = _headcheck("scan", "--jobs", str(BULK_JOBS), "--format", "json", "--from-file", str(listing))
            found.append(Variant("bulk", f"headcheck scan --jobs {BULK_JOBS}, {BULK_REPOS} repos (hub)", cmd,
                                 f"python -m headcheck scan --jobs {BULK_JOBS} --format json --from-file "
                                 f"<{BULK_REPOS} repo ids>", outputs=[ctx.work / "hf-cache" / "bulk"],
                                 ok_codes=frozenset({0, 1}), check=_bulk_check, env=env("bulk"),
                                 counter=lambda: hub.sent(bulk)))
        return found

    return ctx.group("remote", variants)


def _json_and_headers(path: Path) -> tuple[int, int, int]:
    """(bytes of JSON files, bytes of safetensors headers incl. their 8-byte length, safetensors files)."""
    json_bytes = sum(p.stat().st_size for p in path.iterdir() if p.suffix == ".json")
    headers = files = 0
    for shard in path.glob("*.safetensors"):
        with shard.open("rb") as fh:
            headers += 8 + struct.unpack("<Q", fh.read(8))[0]
        files += 1
    return json_bytes, headers, files


def _size(cp: Checkpoint) -> int:
    return sum(p.stat().st_size for p in cp.path.iterdir() if p.is_file())


def remote_bytes(ctx: Context) -> Section:
    """Bytes fetched by `headcheck scan <repo-id>` versus the repository's size (cold cache every run)."""
    title = "Remote scan (local test hub): bytes fetched vs repo size"
    group = _remote_group(ctx)
    if not group:
        reason = ctx.reasons["remote"]
        return Section(title, [Row("headcheck scan <repo-id>: bytes fetched / repo size", reason=reason)],
                       [Target("remote scan: bytes fetched within the Hub issue's budgets", f"not measured: {reason}",
                               None)])
    rows, targets = [], []
    for key, kind in SINGLE.items():
        series, cp = group[key], ctx.inputs[kind]
        if not series.ok:
            rows.append(Row(series.variant.label, series))
            targets.append(Target(f"hub scan {cp.name}: bytes fetched within budget", f"not measured: {series.error}",
                                  None))
            continue
        size = _size(cp)
        if kind == "bertbin":
            budget, how = 1_000_000, "1 MB"
        else:
            json_bytes, headers, files = _json_and_headers(cp.path)
            budget = json_bytes + headers + 64 * 1024
            how = f"JSON {json_bytes:,} + {files} header(s) {headers:,} + 64 KiB"
        rows.append(Row(series.variant.label, series,
                        note=f"{series.count:,} B fetched of {size / MB:,.0f} MB ({series.count / size:.2e}); {series.note}"))
        targets.append(Target(f"hub scan {cp.name}: bytes fetched <= {how} = {budget:,} B", f"{series.count:,} B",
                              series.count <= budget))
    return Section(title, rows, targets)


def remote_bulk(ctx: Context) -> Section:
    """Wall time of a 200-repo bulk scan with --jobs 8 against the local test hub."""
    title = f"Remote scan (local test hub): {BULK_REPOS} repos, --jobs {BULK_JOBS}"
    group = _remote_group(ctx)
    text = f"bulk scan of {BULK_REPOS} repos with --jobs {BULK_JOBS}: wall <= 10 s"
    reason = ctx.reasons.get("remote") or ctx.reasons.get("bulk")
    if reason or "bulk" not in group:
        reason = reason or "not run"
        return Section(title, [Row(f"headcheck scan --jobs {BULK_JOBS} <{BULK_REPOS} repo ids>", reason=reason)],
                       [Target(text, f"not measured: {reason}", None)])
    series = group["bulk"]
    if not series.ok:
        return Section(title, [Row(series.variant.label, series)], [Target(text, f"not measured: {series.error}", None)])
    row = Row(series.variant.label, series, note=f"{series.count / MB:.1f} MB fetched in all; {series.note}")
    return Section(title, [row], [Target(text, f"{series.wall:.2f} s", series.wall <= 10)])
