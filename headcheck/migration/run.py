"""Execute a migration: write into a temporary sibling, check every byte, rescan, then rename into place."""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import functools
import glob
import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..errors import InputError
from ..judge.engine import scan_facts, scan_path
from ..model import EXPORT_TARGETS, Report, Verdict
from ..read.facts import build_facts
from ..read.json_text import dump_json
from ..read.safetensors_header import nbytes, read_safetensors_index
from ..read.tensor_info import TensorInfo
from .plan import Migration, MigrationError, plan_for
from .safetensors_writer import PendingTensor, write_safetensors
from .tensor_bytes import digest_of, file_chunks, span_digests, tensor_chunks, zero_chunks
from .threads import WRITERS, on_threads, split_by_bytes


class NotConvertibleError(Exception):
    def __init__(self, report: Report, message: str | None = None):
        self.report = report
        super().__init__(message or f"{report.source}: verdict {report.verdict.value}; nothing written")


class NotExportableError(NotConvertibleError):
    """`migrate --to TARGET` of a checkpoint whose exports verdict for that target is not-exportable."""

    def __init__(self, report: Report, target: str = "transformers"):
        self.target = target
        super().__init__(report, f"{report.source}: not exportable to {target}; nothing written")


class OutputExistsError(Exception):
    """--out exists and is not empty, and --force was not given."""


class OutputWriteError(MigrationError, OSError):
    """The output could not be written (no space left, read-only folder, ...); nothing was left behind."""

    @classmethod
    def of(cls, out: Path, exc: OSError) -> OutputWriteError:
        return cls(f"{out}: cannot write the output: {exc.strerror or exc}; nothing written")


class OutputBusyError(MigrationError):
    """Another migrate is writing the same --out right now."""


class VerifyUnavailableError(Exception):
    """verify=True needs the heavy stack (the 'verify' extra), which is not installed."""


class VerifyFailedError(MigrationError):
    """verify=True could not load the checkpoints, or their outputs differ; nothing was written."""

    def __init__(self, message: str, comparison=None):
        super().__init__(message)
        self.comparison = comparison


@dataclass(frozen=True)
class MigrateResult:
    """What migrate did: the scan of the input, the migration it carried out, where it wrote, what it checked."""

    report: Report  # the scan of the input
    migration: Migration
    out: Path | None  # None for a dry run
    tensors_checked: int = 0
    rescan: Report | None = None
    comparison: Any = None  # verify.Comparison when verify=True (its module imports torch)
    replaced_entries: int = 0  # files and folders of the previous `out` that --force replaced
    files_checked: int = 0  # files copied as they were, each compared byte for byte with its source


def prepare(source: Path, *, head_name: str | None = None, head_type: str | None = None,
            num_choices: int | None = None, to: str = "flex", head: str | None = None,
            adapter: str | None = None, base: Path | str | None = None,
            token: str | None = None) -> tuple[Report, Migration]:
    """Scan and plan, writing nothing. Raises NotConvertibleError unless convertible or already flex (with
    `to="transformers"` or "peft": NotExportableError unless exportable or native; an adapter folder's `base`, a
    folder or a Hub repository id, is fetched then, `token` reading a private one)."""
    facts = build_facts(source)  # read once: the plan needs the same facts the verdict came from
    if to in EXPORT_TARGETS:  # each planner is imported on use: a flex migrate runs without them
        if to == "transformers":
            from .export_plan import prepare_export

            report, migration = prepare_export(facts, head=head, adapter=adapter, base=base, token=token)
        else:
            from .peft_plan import prepare_peft_export

            report, migration = prepare_peft_export(facts, base=base, token=token)
        if migration is None:
            raise NotExportableError(report, to)
        return report, migration
    report = scan_facts(facts, head_type)
    if report.verdict is Verdict.ALREADY_FLEX:  # nothing to rewrite: the output is a checked copy
        return report, Migration(report.kind, (), (), (), {}, None)
    if report.verdict is not Verdict.CONVERTIBLE:
        raise NotConvertibleError(report)
    return report, plan_for(report, facts, head_name=head_name, num_choices=num_choices)


def migrate(source: Path, out: Path, *, head_name: str | None = None, head_type: str | None = None,
            num_choices: int | None = None, force: bool = False, verify: bool = False,
            base: Path | str | None = None, on_bytes: Callable[[int], None] | None = None,
            on_stage: Callable[[str], None] | None = None,
            accept: Callable[[Path], None] | None = None, to: str = "flex", head: str | None = None,
            adapter: str | None = None, token: str | None = None) -> MigrateResult:
    """Write the flex-head checkpoint to `out` (`to="transformers"`: the checkpoint as transformers' own class,
    `head` / `adapter` choosing where it carries several; an adapter folder's export reads its `base`, a folder or
    a Hub repository id, `token` for a private one). With `verify`, original and result are loaded with
    transformers/adapters (`base`: the base model of an adapter folder) and must give the same outputs and
    loss (`on_stage` hears when that starts: loading two models reports no bytes); `accept(folder)` may
    check the finished output too. Both run before the output is renamed into
    place, and a failure (MigrationError) discards it."""
    source, out = Path(source).resolve(), Path(out).resolve()
    if out == source or source in out.parents:
        raise OutputExistsError(f"{out}: --out must not be the input folder or inside it")
    with _exclusive(out):
        _recover_stale(out)
        if out.exists() and not out.is_dir():
            raise OutputExistsError(f"{out} is a file; --out must be a folder (--force replaces only folders)")
        replaced = sum(1 for _ in out.iterdir()) if out.exists() else 0
        if replaced and not force:
            raise OutputExistsError(f"{out} exists and is not empty (use --force to replace it)")
        if verify and to == "peft":  # raised before anything is read or written
            raise VerifyUnavailableError("--verify compares with transformers or adapters (--to flex, transformers); "
                                         "PEFT exports are proven by headcheck's tests (README: As a PEFT adapter)")
        compare = _verifier("compare_export" if to == "transformers" else "compare") if verify else None
        report, migration = prepare(source, head_name=head_name, head_type=head_type, num_choices=num_choices,
                                    to=to, head=head, adapter=adapter, base=base, token=token)
        if compare is not None and to == "transformers":  # the original runs the exported head
            export = report.export(to)
            compare = functools.partial(compare, head=export.head_name, adapter=export.adapter)
        comparisons: list = []
        base = migration.root or base  # an export's original loads onto the very base it was planned on
        checks = [_verify_check(compare, source, base, report, comparisons, on_stage)] if compare else []
        checks += [accept] if accept is not None else []
        return _run(source, out, report, migration, checks, comparisons, replaced, on_bytes)


def _run(source, out, report, migration, checks, comparisons, replaced, on_bytes) -> MigrateResult:
    tmp = out.parent / f".{out.name}.headcheck-{os.getpid()}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        tmp.mkdir(parents=True)
        root = migration.root or source  # an adapter folder's export reads and copies from its base model
        digests = _write(root, tmp, migration, on_bytes)
        copied = _copy_rest(root, tmp, migration)
        checked = _check_bytes(tmp, migration, digests) + _check_duplicates(root, migration)
        files_checked = _check_copies(root, tmp, copied)
        rescan = scan_path(tmp)
        if migration.target != "flex":
            problem = _export_rescan_problem(rescan, migration)
            if problem:
                raise MigrationError(problem)
        elif rescan.verdict is not Verdict.ALREADY_FLEX:
            raise MigrationError(f"the rewritten checkpoint scans as {rescan.verdict.value}, not already-flex: "
                                 + "; ".join(f"{f.rule} {f.message}" for f in rescan.findings))
        for check in checks:
            check(tmp)
        _replace(tmp, out)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, MigrationError):
            raise
        raise OutputWriteError.of(out, exc) from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    # the output is the checked folder, renamed: its rescan only needs the new name
    return MigrateResult(report, migration, out, checked, dataclasses.replace(rescan, source=str(out)),
                         comparisons[0] if comparisons else None, replaced, files_checked)


def _export_rescan_problem(rescan: Report, migration: Migration) -> str | None:
    if migration.target == "transformers":
        from .export_plan import export_rescan_problem

        return export_rescan_problem(rescan, migration.export)
    from .peft_plan import peft_rescan_problem

    return peft_rescan_problem(rescan)


def verify_stack_problem() -> str | None:
    """Why the installed packages cannot run verify (the 'verify' extra's pins), or None when they can.

    Read from package metadata, so a wrong stack is told before torch is imported."""
    from importlib import metadata

    from packaging.requirements import Requirement

    try:
        declared = metadata.requires("headcheck") or []
    except metadata.PackageNotFoundError:  # run from a source tree: the import below decides
        return None
    problems = []
    for requirement in map(Requirement, declared):
        if requirement.marker is None or not requirement.marker.evaluate({"extra": "verify"}):
            continue
        try:
            found = metadata.version(requirement.name)
        except metadata.PackageNotFoundError:
            problems.append(f"{requirement.name} is not installed")
            continue
        if not requirement.specifier.contains(found, prereleases=True):
            problems.append(f"{requirement.name} {found} is installed, verify needs "
                            f"{requirement.name}{requirement.specifier}")
    return "; ".join(sorted(problems, key=lambda p: "not installed" in p)) or None


def _verifier(name: str = "compare") -> Callable[..., Any]:
    """verify.compare (or compare_export), or VerifyUnavailableError saying what this environment lacks (before
    any writing)."""
    fix = ("keep the verifying stack in a tool environment of its own (README: Verify next to transformers 5), "
           "or pip install 'headcheck[verify]'")
    if problem := verify_stack_problem():
        raise VerifyUnavailableError(f"--verify cannot run in this environment: {problem}; {fix}")
    try:
        from . import verify
    except ImportError as exc:
        raise VerifyUnavailableError(f"--verify cannot run in this environment ({exc}); {fix}") from None
    return getattr(verify, name)


def _first_mismatch(error: str) -> str:
    """torch lists every mismatched tensor on its own line; the first (and how many) says what does not fit."""
    lines = [line.strip() for line in error.splitlines() if line.strip().startswith("size mismatch for")]
    if not lines:
        return error.strip().splitlines()[0] if error.strip() else "it cannot be loaded"
    first = re.sub(r"copying a param with shape torch\.Size\((\[.*?\])\) from checkpoint, the shape in current "
                   r"model is torch\.Size\((\[.*?\])\)\.?", r"\1 in the checkpoint, \2 in the base", lines[0])
    return first + (f" (and {len(lines) - 1} more)" if len(lines) > 1 else "")


def _verify_check(compare, source: Path, base: Path | str | None, report: Report, comparisons: list,
                  on_stage: Callable[[str], None] | None) -> Callable[[Path], None]:
    """The outputs comparison as a check of the finished output, before it is renamed into place (the original
    loads with its own class, and the settings the plan writes for transformers 4.57, HC133)."""

    def check(folder: Path) -> None:
        if on_stage is not None:
            on_stage("verify: loading the original and the result, comparing outputs")
        try:
            comparison = compare(source, folder, base=base, original_class=report.head.architecture,
                                 plan=report.plan)
        except (ValueError, OSError) as exc:  # no base model to load an adapter onto, or it cannot be loaded
            raise VerifyFailedError(f"--verify: {str(exc).splitlines()[0]} (see --base)") from None
        except RuntimeError as exc:  # torch's load_state_dict: the base model is of another size
            raise VerifyFailedError(f"--verify: the base model {base or 'named in adapter_config.json'} does not "
                                    f"fit the checkpoint: {_first_mismatch(str(exc))}; nothing written") from None
        comparisons.append(comparison)
        if not comparison.ok:
            raise VerifyFailedError("--verify: outputs differ beyond tolerance; nothing written", comparison)

    return check


def _write(source: Path, tmp: Path, migration: Migration, on_bytes) -> dict[tuple[str, str], bytes]:
    """Write every output; return the digest of each tensor's bytes as written, by (file, tensor)."""
    digests = {}
    if computed := [tensor for output in migration.outputs for tensor in output.computed]:
        from .merge import numpy_meanwhile  # only an export computes tensors (its planner imported merge already)

        numpy_meanwhile(computed)
    for output in migration.outputs:
        pending = [
            PendingTensor(m.target, m.source.dtype, m.shape, nbytes(m.source.dtype, m.source.shape),
                          functools.partial(tensor_chunks, source, m.source),
                          (source / m.source.file, m.source.span[0]) if m.source.storage is None and m.source.span
                          else None)
            for m in output.moves
        ]
        for added in output.added:
            length = nbytes(added.dtype, added.shape)
            pending.append(PendingTensor(added.target, added.dtype, added.shape, length,
                                         functools.partial(zero_chunks, length)))
        for merged in output.computed:  # the digest is of the computed bytes, which the byte check compares
            pending.append(PendingTensor(merged.target, merged.dtype, merged.shape, nbytes(merged.dtype, merged.shape),
                                         functools.partial(merged.chunks, source)))
        if output.is_pickle:  # a head in torch.save's format: its writer and reader (pickletools, tarfile) on use
            from .torch_zip_writer import write_torch_zip

            written = write_torch_zip(tmp / output.name, pending, on_bytes)
        else:
            written = write_safetensors(tmp / output.name, pending, on_bytes)
        digests.update(((output.name, name), digest) for name, digest in written.items())
    if migration.index_file:
        _write_index(tmp, migration)
    for name, content in migration.configs.items():
        (tmp / name).write_text(dump_json(content, indent=2) + "\n", encoding="utf-8")
    return digests


def _copy_rest(source: Path, tmp: Path, migration: Migration) -> dict[Path, bytes]:
    """Copy every entry the plan does not rewrite (tokenizer, card, ...); return the digest of each regular file's
    source bytes, by its path in the folder (each file, in sub-folders too, is digested while it is copied: read
    once). Links inside sub-folders stay links."""
    replaced = set(migration.replaced_files) | set(migration.configs) | {o.name for o in migration.outputs}
    copied = {}

    def copy(src, dst) -> None:
        src = Path(src)
        if not src.is_file():  # a FIFO or device (or a link to one) would be copied without end
            raise InputError(f"{src}: not a regular file; nothing written")
        copied[src.relative_to(source)] = _copy_file(src, Path(dst))

    for entry in sorted(source.iterdir()):
        if entry.name in replaced:
            continue
        if entry.is_dir():
            shutil.copytree(entry, tmp / entry.name, symlinks=True, copy_function=copy)
        else:
            copy(entry, tmp / entry.name)
    return copied


def _copy_file(source: Path, target: Path) -> bytes:
    """shutil.copy2, digesting the bytes on their way (the byte check then re-reads only the copy)."""
    with open(target, "wb") as out:
        digest = digest_of(file_chunks(source), out.write)
    shutil.copystat(source, target)
    return digest


def _check_copies(source: Path, tmp: Path, copied: dict[Path, bytes]) -> int:
    """Each copied file must hold its source's bytes (an already-flex migrate is nothing but such copies)."""
    for name, digest in copied.items():
        if digest_of(file_chunks(tmp / name)) != digest:
            raise MigrationError(f"{tmp / name}: the copy differs from {source / name}; nothing written")
    return len(copied)


def _write_index(tmp: Path, migration: Migration) -> None:
    weight_map = {}
    total = 0
    for output in migration.outputs:
        for name, info in read_safetensors_index(tmp / output.name, output.name)[0].items():
            weight_map[name] = output.name
            total += info.span[1] - info.span[0]
    index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
    (tmp / migration.index_file).write_text(json.dumps(index, indent=2) + "\n", encoding="utf-8")


def _check_bytes(tmp: Path, migration: Migration, digests: dict[tuple[str, str], bytes]) -> int:
    """Re-read the written headers and every written tensor's bytes; each must match the digest of what was
    read from the source while writing. The tensors are digested in two halves on two threads, as they were
    written (digesting releases the GIL)."""
    checked = 0
    for output in migration.outputs:
        path = tmp / output.name
        if output.is_pickle:
            from ..read.pickle_index import read_pickle_index

            written = read_pickle_index(path, output.name)
        else:
            written = read_safetensors_index(path, output.name)[0]
        planned = {m.target: (m.source.dtype, m.shape) for m in output.moves}
        planned.update((a.target, (a.dtype, a.shape)) for a in output.added)
        planned.update((c.target, (c.dtype, c.shape)) for c in output.computed)
        if {name: (info.dtype, info.shape) for name, info in written.items()} != planned:
            raise MigrationError(f"{output.name}: written tensors differ from the plan (names, dtypes or shapes)")

        def differing(group: list[tuple[str, TensorInfo]]) -> list[str]:
            if output.is_pickle:  # zip members, each read as a stream of its own
                found = [digest_of(tensor_chunks(tmp, info)) for _, info in group]
            else:
                found = span_digests(path, [info.span for _, info in group])
            return [name for (name, _), digest in zip(group, found) if digest != digests[output.name, name]]

        items = list(written.items())
        if not output.is_pickle:
            items.sort(key=lambda item: item[1].span)  # span_digests reads the file front to back
        halves = split_by_bytes(items, WRITERS, lambda item: nbytes(item[1].dtype, item[1].shape))
        if bad := [name for half in on_threads(differing, halves) for name in half]:
            raise MigrationError(f"{output.name}: bytes of {bad[0]} differ from the source")
        checked += len(written)
    return checked


def _check_duplicates(source: Path, migration: Migration) -> int:
    """Each tensor left out as a tied duplicate must hold the bytes of the one placed in its stead."""
    for dup in migration.duplicates:
        same = (dup.source.dtype, dup.source.shape) == (dup.kept.dtype, dup.kept.shape)
        if not (same and digest_of(tensor_chunks(source, dup.source)) == digest_of(tensor_chunks(source, dup.kept))):
            raise MigrationError(
                f"{dup.source.file}: {dup.source.name} and {dup.kept.name} differ, though the class that saved them "
                f"ties them (one parameter); adapters' own conversion would load {dup.kept.name} (as {dup.target}) "
                f"and ignore {dup.source.name}; make the two equal, or re-save the checkpoint, then migrate")
    return len(migration.duplicates)


@contextlib.contextmanager
def _exclusive(out: Path):
    """One migrate per --out at a time: an flock on a hidden file beside it, removed when done."""
    path = out.parent / f".{out.name}.headcheck.lock"
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        lock = open(path, "a")
    except OSError as exc:
        raise OutputWriteError.of(out, exc) from exc
    busy = OutputBusyError(f"{out}: another headcheck migrate is writing it right now")
    with lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise busy from None
        try:  # the holder before us may have removed the file after we opened it: then ours is stale
            if os.stat(path).st_ino != os.fstat(lock.fileno()).st_ino:
                raise busy
        except FileNotFoundError:
            raise busy from None
        try:
            yield
        finally:
            path.unlink(missing_ok=True)


def _recover_stale(out: Path) -> None:
    """A migrate killed mid-way leaves siblings named after its pid: its unfinished temporary folder is
    removed, and a previous --out it had moved aside but not yet replaced is put back."""
    for sibling in out.parent.glob(f".{glob.escape(out.name)}.headcheck-*"):
        pid = sibling.name.removesuffix(".tmp").rpartition("-")[2]
        if not pid.isdigit() or _alive(int(pid)):
            continue
        if sibling.name.endswith(".tmp") or out.exists():
            shutil.rmtree(sibling, ignore_errors=True)
        else:
            sibling.rename(out)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _replace(tmp: Path, out: Path) -> None:
    if out.exists():
        backup = out.parent / f".{out.name}.headcheck-old-{os.getpid()}"
        out.rename(backup)
        tmp.rename(out)
        shutil.rmtree(backup, ignore_errors=True) if backup.is_dir() else backup.unlink()
    else:
        tmp.rename(out)
