"""migrate against the machine (issue 11, migrate class): killed with SIGKILL at any moment, out of disk space,
on a read-only folder, twice at once. The promise: either no --out or a complete, checked one; the input
byte-identical; the next run succeeds and leaves nothing behind."""

from __future__ import annotations

import fcntl
import hashlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import CHECKPOINTS, REPO, scan

KILLS = 30


def digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def migrate_cli(*args, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-m", "headcheck", "migrate", *map(str, args)], env=env, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


def leftovers(out: Path) -> list[str]:
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.headcheck"))


@pytest.fixture(scope="module")
def big_checkpoint(tmp_path_factory) -> Path:
    zoo = pytest.importorskip("zoo")
    # ~35 MB of weights, so that a migrate runs long enough to be killed at many different moments
    return zoo.build_static("BertForSequenceClassification", tmp_path_factory.mktemp("big") / "src", num_labels=3,
                            vocab_size=30000, hidden_size=256, intermediate_size=512, num_attention_heads=4)


def test_sigkill_at_any_moment(big_checkpoint, tmp_path):
    source_digests = digests(big_checkpoint)
    reference = tmp_path / "reference"
    started = time.monotonic()
    assert migrate_cli(big_checkpoint, "--out", reference).wait(timeout=120) == 0
    duration = time.monotonic() - started
    expected = digests(reference)
    out = tmp_path / "out"
    # the first kill comes early (nothing written yet); the rest anywhere up to twice an uninterrupted run
    moments = [50, *random.Random(20261202).sample(range(1, 2000), KILLS - 1)]
    outcomes = {"no output": 0, "complete output": 0}
    for permille in moments:
        process = migrate_cli(big_checkpoint, "--out", out, "--force")
        time.sleep(duration * permille / 1000)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
        assert digests(big_checkpoint) == source_digests  # the input is never touched
        if out.exists():
            assert digests(out) == expected, f"killed at {permille / 10:.1f}%: a partial --out"
            outcomes["complete output"] += 1
        else:
            outcomes["no output"] += 1
    assert outcomes["no output"], outcomes  # a complete output is checked below, whatever the machine's speed
    done = migrate_cli(big_checkpoint, "--out", out, "--force")
    assert done.wait(timeout=120) == 0, done.stderr.read()
    assert digests(out) == expected and scan(out)["verdict"] == "already-flex"
    assert leftovers(out) == []  # stale temporary folders and the lock are gone


def test_a_stale_sibling_is_cleaned_and_a_moved_aside_output_comes_back(tmp_path):
    out = tmp_path / "out"
    dead = 2 ** 22 + 12345  # above pid_max's default: no such process
    (tmp_path / f".out.headcheck-{dead}.tmp").mkdir()
    (tmp_path / f".out.headcheck-{dead}.tmp" / "half.safetensors").write_bytes(b"partial")
    previous = tmp_path / f".out.headcheck-old-{dead}"
    previous.mkdir()
    (previous / "kept.txt").write_text("the output a killed --force run had moved aside")
    refused = migrate_cli(CHECKPOINTS / "bert-seq-cls", "--out", out)
    assert refused.wait(timeout=60) == 4  # the previous output is back, and without --force it stays
    assert (out / "kept.txt").read_text().startswith("the output") and leftovers(out) == []


def test_two_migrations_into_one_out_never_interleave(tmp_path):
    out = tmp_path / "out"
    with open(tmp_path / ".out.headcheck.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # as a running migrate holds it
        busy = migrate_cli(CHECKPOINTS / "bert-seq-cls", "--out", out)
        assert busy.wait(timeout=60) == 2
        assert b"another headcheck migrate is writing it" in busy.stderr.read()
        assert not out.exists()
    assert migrate_cli(CHECKPOINTS / "bert-seq-cls", "--out", out).wait(timeout=60) == 0
    assert leftovers(out) == []


@pytest.fixture
def small_filesystem(tmp_path):
    """A 2 MB tmpfs, where the machine allows mounting one."""
    mount = tmp_path / "small"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a size-limited tmpfs here: {made.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


def test_full_disk_is_one_line_and_leaves_nothing(big_checkpoint, small_filesystem):
    out = small_filesystem / "out"
    process = migrate_cli(big_checkpoint, "--out", out)
    assert process.wait(timeout=120) == 2
    stderr = process.stderr.read().decode()
    assert "No space left on device" in stderr and len(stderr.strip().splitlines()) == 1, stderr
    assert "Traceback" not in stderr
    assert list(small_filesystem.iterdir()) == []


def test_read_only_output_folder_is_one_line_and_leaves_nothing(small_filesystem):
    subprocess.run(["mount", "-o", "remount,ro", str(small_filesystem)], check=True)
    process = migrate_cli(CHECKPOINTS / "bert-seq-cls", "--out", small_filesystem / "out")
    assert process.wait(timeout=60) == 2
    stderr = process.stderr.read().decode()
    assert "Read-only file system" in stderr and len(stderr.strip().splitlines()) == 1, stderr
    assert list(small_filesystem.iterdir()) == []
