"""`headcheck migrate` as users run it: refusals write nothing, the input is never touched, output is atomic."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import mmap
import os
import shutil
from pathlib import Path

import pytest
import xxhash

from headcheck.migration import run as migration
from headcheck.migration import tensor_bytes, torch_zip_writer
from headcheck.migration.safetensors_writer import PendingTensor, write_safetensors
from headcheck.migration.tensor_bytes import digest_of
from headcheck.read.safetensors_header import read_safetensors_index
from helpers import CHECKPOINTS, adapter_folder_with_bin_head, run_cli, scan, without_heavy_stack

# Every not-convertible situation of the scan issue, as committed fixtures -> the rule codes that explain it.
REFUSED = {
    "bert-custom-head": {"HC101"},
    "bert-seq-cls-label-mismatch": {"HC102"},
    "bert-regression-2": {"HC105"},
    "xlnet-seq-cls": {"HC106"},
    "bert-nsp": {"HC107"},
    "adapter-flex-head-mismatch": {"HC110"},
    "adapter-pretraining-head": {"HC111"},
    "adapter-legacy-other-family": {"HC111"},
    "unsafe-pickle": {"HC001"},
    "peft-seq-cls": {"HC118"},
    "no-architectures": {"HC112"},
}


def tree_digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("fixture,codes", sorted(REFUSED.items()))
def test_refused_with_rule_codes_and_nothing_written(fixture, codes, tmp_path):
    out = tmp_path / "out"
    before = tree_digest(CHECKPOINTS / fixture)
    result = run_cli("migrate", CHECKPOINTS / fixture, "--out", out)
    assert result.returncode == 1, result.stderr
    assert all(code in result.stderr for code in codes), result.stderr
    assert "nothing written" in result.stderr
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []  # no temporary sibling either
    assert tree_digest(CHECKPOINTS / fixture) == before


@pytest.mark.parametrize("fixture", ["bert-seq-cls", "bert-seq-cls-bin", "sharded", "roberta-multilabel",
                                     "adapter-static-head", "adapter-flex-head"])
def test_migrate_fixture_and_input_is_byte_identical(fixture, tmp_path):
    src = tmp_path / "src"
    shutil.copytree(CHECKPOINTS / fixture, src)
    (src / "tokenizer.json").write_text('{"version": "1.0"}')  # other files travel along untouched
    before = tree_digest(src)
    result = run_cli("migrate", src, "--out", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    assert tree_digest(src) == before
    assert scan(tmp_path / "out")["verdict"] == "already-flex"
    assert (tmp_path / "out" / "tokenizer.json").read_text() == '{"version": "1.0"}'
    assert "byte-checked" in result.stdout
    for path in (tmp_path / "out").glob("*.safetensors"):
        raw = path.read_bytes()
        header = json.loads(raw[8:8 + int.from_bytes(raw[:8], "little")])
        assert header["__metadata__"] == {"format": "pt"}


def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path):
    result = run_cli("migrate", CHECKPOINTS / "bert-seq-cls", "--out", tmp_path / "out", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "rename classifier.weight -> heads.default.1.weight" in result.stdout
    assert '"BertAdapterModel"' in result.stdout
    assert "dry run: nothing written" in result.stdout
    assert not (tmp_path / "out").exists()


def test_existing_out_needs_force(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("old")
    refused = run_cli("migrate", CHECKPOINTS / "bert-seq-cls", "--out", out)
    assert refused.returncode == 4
    assert (out / "keep.txt").read_text() == "old"
    forced = run_cli("migrate", CHECKPOINTS / "bert-seq-cls", "--out", out, "--force")
    assert forced.returncode == 0, forced.stderr
    assert not (out / "keep.txt").exists()
    assert scan(out)["verdict"] == "already-flex"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no backup or temporary folder left behind


def test_empty_out_folder_is_accepted(tmp_path):
    (tmp_path / "out").mkdir()
    assert run_cli("migrate", CHECKPOINTS / "bert-seq-cls", "--out", tmp_path / "out").returncode == 0


def test_out_inside_input_is_refused(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(CHECKPOINTS / "bert-seq-cls", src)
    result = run_cli("migrate", src, "--out", src / "fixed")
    assert result.returncode == 4
    assert not (src / "fixed").exists()


@pytest.mark.parametrize("when", ["first tensor", "config"])
def test_exception_mid_write_leaves_no_out(tmp_path, monkeypatch, when):
    src = tmp_path / "src"
    shutil.copytree(CHECKPOINTS / "sharded", src)
    before = tree_digest(src)
    real_write = migration.write_safetensors

    def write_then_fail(path, tensors, on_bytes=None):
        real_write(path, tensors[:1], on_bytes)  # a partial file really exists on disk
        raise OSError("disk full (simulated)")

    def fail_on_config(self, *args, **kwargs):
        raise OSError("disk full (simulated)")

    if when == "first tensor":
        monkeypatch.setattr(migration, "write_safetensors", write_then_fail)
    else:
        monkeypatch.setattr(Path, "write_text", fail_on_config)
    with pytest.raises(OSError, match="simulated"):
        migration.migrate(src, tmp_path / "out")
    monkeypatch.undo()
    assert not (tmp_path / "out").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]
    assert tree_digest(src) == before


def test_interrupt_leaves_previous_out_intact(tmp_path, monkeypatch):
    """--force replaces an existing --out only once the new one is complete."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "previous.txt").write_text("previous")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(migration, "write_safetensors", interrupted)
    with pytest.raises(KeyboardInterrupt):
        migration.migrate(CHECKPOINTS / "bert-seq-cls", out, force=True)
    assert (out / "previous.txt").read_text() == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_corrupted_write_is_caught_by_the_byte_check(tmp_path, monkeypatch):
    """The post-write check compares bytes with the source: a writer that flips a byte must fail the migration."""
    real_write = migration.write_safetensors

    def flipping_write(path, tensors, on_bytes=None):
        digests = real_write(path, tensors, on_bytes)
        raw = bytearray(path.read_bytes())
        raw[-1] ^= 0xFF
        path.write_bytes(bytes(raw))
        return digests

    monkeypatch.setattr(migration, "write_safetensors", flipping_write)
    with pytest.raises(migration.MigrationError, match="differ from the source"):
        migration.migrate(CHECKPOINTS / "bert-seq-cls", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_bin_head_written_wrong_is_caught_by_the_byte_check(tmp_path, monkeypatch):
    """The torch-free .bin writer digests the source bytes as it streams them: bytes it writes wrong fail the
    check, however well formed the file."""
    pytest.importorskip("torch")
    real_write = torch_zip_writer.write_torch_zip  # migrate imports it on use

    def flipped(chunks):
        for i, chunk in enumerate(chunks()):
            yield memoryview(bytes([chunk[0] ^ 0xFF]) + bytes(chunk[1:])) if i == 0 else chunk

    def flipping_write(path, tensors, on_bytes=None):
        real_write(path, [dataclasses.replace(t, chunks=functools.partial(flipped, t.chunks)) for t in tensors])
        return {t.name: digest_of(t.chunks()) for t in tensors}

    monkeypatch.setattr(torch_zip_writer, "write_torch_zip", flipping_write)
    with pytest.raises(migration.MigrationError, match="differ from the source"):
        migration.migrate(adapter_folder_with_bin_head(tmp_path / "src"), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_verify_flag_reports_differences(tmp_path):
    pytest.importorskip("adapters")
    zoo = pytest.importorskip("zoo")
    src = zoo.build_static("BertForSequenceClassification", tmp_path / "src", num_labels=3)
    result = run_cli("migrate", src, "--out", tmp_path / "out", "--verify")
    assert result.returncode == 0, result.stderr
    line = next(line for line in result.stdout.splitlines() if line.startswith("verify:"))
    assert "max |logits diff|" in line and "|loss diff|" in line


def test_progress_is_silent_off_terminal(tmp_path):
    result = run_cli("migrate", CHECKPOINTS / "bert-seq-cls", "--out", tmp_path / "out")
    assert result.returncode == 0
    assert result.stderr == ""


def test_migrate_help_explains_the_options():
    result = run_cli("migrate", "--help")
    for option in ("--out", "--head-name", "--num-choices", "--force", "--dry-run", "--verify"):
        assert option in result.stdout


def test_failed_acceptance_check_writes_nothing(tmp_path):
    """--verify runs before the rename: a rejected output never appears as --out."""
    def reject(folder):
        assert (folder / "config.json").exists()  # it sees the finished output...
        raise migration.MigrationError("outputs differ")  # ...and refuses it

    with pytest.raises(migration.MigrationError, match="outputs differ"):
        migration.migrate(CHECKPOINTS / "bert-seq-cls", tmp_path / "out", accept=reject)
    assert list(tmp_path.iterdir()) == []


def test_verify_of_an_adapter_folder_with_base(tmp_path):
    zoo = pytest.importorskip("zoo")
    base = zoo.build_any("RobertaModel", tmp_path / "base")
    src = zoo.build_adapter_folder(tmp_path / "src", head_from="static")
    without_base = run_cli("migrate", src, "--out", tmp_path / "out", "--verify")
    assert without_base.returncode in (1, 2) and "Traceback" not in without_base.stderr
    assert not (tmp_path / "out").exists()
    result = run_cli("migrate", src, "--out", tmp_path / "out", "--verify", "--base", base)
    assert result.returncode == 0, result.stderr
    assert "verify: max |logits diff| 0" in result.stdout
    assert scan(tmp_path / "out")["verdict"] == "already-flex"


def test_progress_bar_on_a_terminal(tmp_path, monkeypatch):
    """On a terminal, stderr shows a byte-count bar fed by migrate's own progress callback."""
    import io

    from headcheck.cli import progress as cli

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr(cli.sys, "stderr", terminal)
    progress = cli.progress_bar()
    with progress as advance:
        result = migration.migrate(CHECKPOINTS / "sharded", tmp_path / "out", on_bytes=advance)
    assert "writing" in terminal.getvalue()
    tensor_bytes = sum(m.source.span[1] - m.source.span[0] for o in result.migration.outputs for m in o.moves)
    assert progress.bar.n == tensor_bytes > 0  # every copied byte was counted


def test_a_pickle_twin_of_the_weights_is_superseded_not_copied(tmp_path):
    """from_pretrained(use_safetensors=False) would load a static-layout pytorch_model.bin left beside the output."""
    src = tmp_path / "src"
    shutil.copytree(CHECKPOINTS / "bert-seq-cls", src)
    shutil.copy(CHECKPOINTS / "bert-seq-cls-bin" / "pytorch_model.bin", src)
    result = migration.migrate(src, tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["config.json", "model.safetensors"]
    assert "pytorch_model.bin" in result.migration.replaced_files


def test_an_adapter_folder_with_a_bin_head_migrates_where_torch_is_not_installed(tmp_path):
    """Issue 20: the core install (no torch) rewrites a pytorch_model_head.bin head, in torch's own format."""
    torch = pytest.importorskip("torch")
    source = adapter_folder_with_bin_head(tmp_path / "src")
    env = without_heavy_stack(tmp_path / "no-torch")
    out = tmp_path / "out"
    done = run_cli("migrate", source, "--out", out, env=env)
    assert done.returncode == 0, done.stderr
    assert scan(out)["verdict"] == "already-flex"
    before = torch.load(source / "pytorch_model_head.bin", weights_only=True)
    after = torch.load(out / "pytorch_model_head.bin", weights_only=True)
    name = json.loads((out / "head_config.json").read_text())["name"]
    renamed = {"classifier.weight": f"heads.{name}.1.weight", "classifier.bias": f"heads.{name}.1.bias"}
    assert set(after) == set(renamed.values())
    for old, new in renamed.items():
        assert after[new].dtype == before[old].dtype and torch.equal(after[new], before[old])


def test_every_copied_file_is_read_once_and_byte_checked(tmp_path, monkeypatch):
    """Files beside the weights, at the top and in sub-folders (a tokenizer folder), are digested while copied: the
    source is opened once, the copy once more by the byte check; a copy that differs fails the migration."""
    import builtins

    src = tmp_path / "src"
    shutil.copytree(CHECKPOINTS / "bert-seq-cls", src)
    extras = {Path("vocab.txt"): b"[PAD]\n", Path("tokenizer/tokenizer.json"): b"{}",
              Path("tokenizer/added/special.txt"): b"[X]\n" * 1000}
    for name, content in extras.items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_bytes(content)
    opened: list[Path] = []
    real_open = builtins.open

    def counting_open(file, mode="r", *args, **kwargs):
        if isinstance(file, (str, os.PathLike)) and "r" in mode and Path(file).is_relative_to(src):
            opened.append(Path(file).relative_to(src))
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", counting_open)
    result = migration.migrate(src, tmp_path / "out")
    monkeypatch.setattr(builtins, "open", real_open)
    assert {name: opened.count(name) for name in extras} == dict.fromkeys(extras, 1)
    assert result.files_checked == len(extras)
    assert all((tmp_path / "out" / name).read_bytes() == content for name, content in extras.items())

    real_copy = migration._copy_file  # a copy written wrong, in a sub-folder: the byte check catches it

    def spoiling_copy(source, target):
        digest = real_copy(source, target)
        if source.name == "special.txt":
            target.write_bytes(b"[Y]\n")
        return digest

    monkeypatch.setattr(migration, "_copy_file", spoiling_copy)
    with pytest.raises(migration.MigrationError, match="special.txt: the copy differs"):
        migration.migrate(src, tmp_path / "spoiled")
    assert not (tmp_path / "spoiled").exists()


def test_a_fifo_in_a_sub_folder_is_an_input_error(tmp_path):
    """Copying a named pipe would wait for a writer: like one at the top, it is refused and nothing written."""
    src = tmp_path / "src"
    shutil.copytree(CHECKPOINTS / "bert-seq-cls", src)
    (src / "tokenizer").mkdir()
    os.mkfifo(src / "tokenizer" / "vocab.txt")
    result = run_cli("migrate", src, "--out", tmp_path / "out")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "tokenizer/vocab.txt: not a regular file" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.*"))


@pytest.mark.parametrize("fixture", ["bert-seq-cls", "sharded", "adapter-static-head"])
def test_copied_tensors_keep_their_offset_within_a_cache_line(fixture, tmp_path):
    """The kernel copies fastest between equally aligned addresses (an 8-byte shift cost 1.6x the CPU of copying
    bert-base): the header's padding puts every copied tensor where its source has it within a cache line, and
    the padding (spaces) is read by safetensors itself."""
    safetensors = pytest.importorskip("safetensors")
    result = migration.migrate(CHECKPOINTS / fixture, tmp_path / "out")
    moves = [(output.name, move) for output in result.migration.outputs for move in output.moves]
    assert moves
    for name, move in moves:
        written = read_safetensors_index(tmp_path / "out" / name, name)[0][move.target]
        assert written.span[0] % 64 == move.source.span[0] % 64, (name, move.target, written.span, move.source.span)
    for name in {name for name, _ in moves}:
        with safetensors.safe_open(tmp_path / "out" / name, "np") as opened:
            assert set(opened.keys()) == set(read_safetensors_index(tmp_path / "out" / name, name)[0])


def test_span_digests_reads_spans_across_windows_gaps_and_empty_spans(tmp_path, monkeypatch):
    monkeypatch.setattr(tensor_bytes, "WINDOW", 3 * mmap.ALLOCATIONGRANULARITY)  # many windows in a small file
    data = bytes(range(256)) * 200
    (tmp_path / "file").write_bytes(data)
    spans = [(0, 0), (0, 5000), (5000, 5000), (5003, 20000), (20000, 20001), (30000, 51200), (51200, 51200)]
    assert tensor_bytes.span_digests(tmp_path / "file", spans) == [xxhash.xxh3_128(data[a:b]).digest() for a, b in spans]
    assert tensor_bytes.span_digests(tmp_path / "file", []) == []


def test_runs_of_mapped_tensors_are_written_and_digested_tensor_by_tensor(tmp_path, monkeypatch):
    """Tensors whose bytes follow one another in a source file are copied through shared windows: each still
    lands at its own place with its own digest, across window ends, gaps, other files and computed tensors."""
    monkeypatch.setattr(tensor_bytes, "WINDOW", 2 * mmap.ALLOCATIONGRANULARITY)
    sources = {"a": bytes(range(256)) * 100, "b": bytes(reversed(range(256))) * 50}
    for name, data in sources.items():
        (tmp_path / name).write_bytes(data)
    parts = [("a", 0, 10000), ("a", 10000, 20000), ("a", 20004, 25000), (None, 0, 1000), ("b", 0, 5000),
             ("a", 25000, 25600), ("a", 25600, 25600)]
    expected, tensors = {}, []
    for number, (name, start, end) in enumerate(parts):
        data = sources[name][start:end] if name else bytes(end - start)
        expected[f"t{number}"] = data
        tensors.append(PendingTensor(f"t{number}", "U8", (end - start,), end - start,
                                     functools.partial(_one_chunk, data),
                                     (tmp_path / name, start) if name else None))
    digests = write_safetensors(tmp_path / "out.safetensors", tensors)
    raw = (tmp_path / "out.safetensors").read_bytes()
    for name, info in read_safetensors_index(tmp_path / "out.safetensors", "out.safetensors")[0].items():
        assert raw[info.span[0]:info.span[1]] == expected[name], name
        assert digests[name] == xxhash.xxh3_128(expected[name]).digest(), name
    assert set(digests) == set(expected)


def _one_chunk(data: bytes):
    yield memoryview(data)


def test_a_run_of_tensors_is_written_a_window_at_a_time(tmp_path, monkeypatch):
    """Tensors that follow one another in the source are written with one call per mapped window, not one per
    tensor: each write takes the file's lock, and a write per tensor made copying bert-base a quarter slower."""
    from headcheck.migration.threads import WRITERS

    monkeypatch.setattr(tensor_bytes, "WINDOW", 2 * mmap.ALLOCATIONGRANULARITY)
    data = bytes(range(256)) * 200  # 51200 bytes: 50 tensors of 1024, 7 windows
    (tmp_path / "src").write_bytes(data)
    tensors = [PendingTensor(f"t{i:02d}", "U8", (1024,), 1024, functools.partial(_one_chunk, data[i * 1024:(i + 1) * 1024]),
                             (tmp_path / "src", i * 1024)) for i in range(50)]
    calls = []
    real = os.pwrite
    monkeypatch.setattr(os, "pwrite", lambda fd, chunk, at: calls.append(len(chunk)) or real(fd, chunk, at))
    digests = write_safetensors(tmp_path / "out.safetensors", tensors)
    windows = -(-len(data) // tensor_bytes.WINDOW)
    assert sum(calls) == len(data)
    assert len(calls) <= windows + WRITERS, calls  # each writer's share starts a window of its own
    raw = (tmp_path / "out.safetensors").read_bytes()
    for name, info in read_safetensors_index(tmp_path / "out.safetensors", "out.safetensors")[0].items():
        assert digests[name] == xxhash.xxh3_128(raw[info.span[0]:info.span[1]]).digest(), name
