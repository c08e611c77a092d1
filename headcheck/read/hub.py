"""A Hugging Face Hub repository as a Source: listing and JSON files through huggingface_hub's cache,
weight headers through Range requests, kept under HF_HUB_CACHE so that offline scans can answer too.

Settings are read when a scan starts (not when huggingface_hub is imported): HF_ENDPOINT, HF_TOKEN,
HF_HUB_OFFLINE, HF_HUB_CACHE; HEADCHECK_HUB_TIMEOUT and HEADCHECK_HUB_RETRIES tune the network.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import struct
import time
from pathlib import Path
from typing import Any, Callable, TypeVar

from huggingface_hub import HfApi, constants, errors, hf_hub_download, hf_hub_url
from huggingface_hub.file_download import repo_folder_name
from huggingface_hub.utils import build_hf_headers, hf_raise_for_status

from ..errors import InputError
from . import hub_http
from .base_model import BaseModelNameError, base_model
from .local import looks_like_repo_id, read_card_file, read_json_file
from .pickle_index import read_pickle_index
from .safetensors_header import MAX_HEADER_BYTES, parse_header
from .tensor_info import TensorIndex, TensorInfo

# First ranged read of a safetensors file: most headers fit; the budget is "headers + 64 KB".
FIRST_RANGE = 64 * 1024
BLOCK = 64 * 1024  # ranged reads of pickle zips go in blocks of this size
RETRY_STATUS = (429, 500, 502, 503, 504)
T = TypeVar("T")


def _setting(name: str, default: str) -> str:
    return os.environ.get(name) or default


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").upper() in ("1", "ON", "YES", "TRUE")


class HubAccess:
    """One Hub model repository's settings, retries and error explanations, before (or without) its listing."""

    def __init__(self, target: str, revision: str | None = None, token: str | None = None,
                 subfolder: str | None = None, label: str | None = None):
        path, _, at_revision = target.partition("@")
        org, name, *inner = path.split("/")
        self.repo_id = f"{org}/{name}"
        # org/name/sub/folder names a checkpoint in a subfolder, as from_pretrained(..., subfolder=) reads it
        self.subfolder = "/".join([*inner, *filter(None, (subfolder or "").strip("/").split("/"))])
        self.revision = revision or at_revision or "main"
        where = "/".join(filter(None, (self.repo_id, self.subfolder)))
        self.label = label or (f"{where}@{self.revision}" if self.revision != "main" else where)
        self.token = token or os.environ.get("HF_TOKEN") or None
        self.endpoint = _setting("HF_ENDPOINT", constants.ENDPOINT).rstrip("/")
        self.cache_dir = Path(_setting("HF_HUB_CACHE", constants.HF_HUB_CACHE))
        self.timeout = float(_setting("HEADCHECK_HUB_TIMEOUT", "10"))
        self.retries = int(_setting("HEADCHECK_HUB_RETRIES", "3"))
        self.offline = offline()
        self.storage = repo_folder_name(repo_id=self.repo_id, repo_type="model")  # its folder names in the cache

    def path_in_repo(self, rel: str) -> str:
        return f"{self.subfolder}/{rel}" if self.subfolder else rel

    def fetch(self, rel: str, revision: str, optional: bool = False) -> Path | None:
        """The file, whole, through huggingface_hub's cache at `revision` (offline: from the cache alone). None for
        an `optional` file the offline cache lacks."""

        def call() -> Path | None:
            try:
                return Path(hf_hub_download(self.repo_id, self.path_in_repo(rel), revision=revision,
                                            cache_dir=self.cache_dir, token=self.token, endpoint=self.endpoint,
                                            local_files_only=self.offline, etag_timeout=self.timeout))
            except errors.LocalEntryNotFoundError:  # online it would mean the Hub could not be reached
                if optional and self.offline:
                    return None
                raise

        return self._guard(rel, call)

    def snapshot_commit(self, fetched: Path) -> str:
        """The commit a fetched file was read at: huggingface_hub keeps it under snapshots/<commit>/."""
        return fetched.relative_to(self.cache_dir / self.storage / "snapshots").parts[0]

    # --- errors and retries
    def _retrying(self, call: Callable[[], Any]) -> Any:
        for attempt in range(self.retries + 1):
            response = call()
            if response.status_code not in RETRY_STATUS or attempt == self.retries:
                return response
            time.sleep(_backoff(attempt, response))
        return response

    def _guard(self, rel: str | None, call: Callable[[], T]) -> T:
        """Run a Hub call with retries on 429/5xx; turn every failure into one actionable InputError."""
        for attempt in range(self.retries + 1):
            try:
                return call()
            except errors.HfHubHTTPError as exc:
                status = status_of(exc)
                if status in RETRY_STATUS and attempt < self.retries and not isinstance(
                        exc, (errors.RepositoryNotFoundError, errors.EntryNotFoundError)):
                    time.sleep(_backoff(attempt, exc.response))
                    continue
                raise self._explain(exc, rel) from None
            except (errors.LocalEntryNotFoundError, *hub_http.transport_errors(), OSError) as exc:
                raise self._explain(exc, rel) from None
        raise AssertionError("unreachable")

    def _explain(self, exc: Exception, rel: str | None) -> InputError:
        what = f"{self.label}" + (f": {rel}" if rel else "")
        if isinstance(exc, errors.GatedRepoError):
            return InputError(f"{self.label}: gated repository: accept its conditions on the Hub, then set HF_TOKEN "
                              "(or --token) to a token of that account")
        if isinstance(exc, errors.RepositoryNotFoundError):
            return InputError(f"{self.label}: no such local path, and no such Hub repository, or it is private "
                              "(set HF_TOKEN or --token to read private repositories)")
        if isinstance(exc, errors.RevisionNotFoundError):
            return InputError(f"{self.label}: revision {self.revision!r} not found")
        if isinstance(exc, errors.LocalEntryNotFoundError):  # before EntryNotFoundError: one of its kind
            if self.offline:
                return InputError(f"{what}: not in the local cache (HF_HUB_OFFLINE=1); run once online to cache it")
            return InputError(f"{what}: cannot reach {self.endpoint} ({first_line(exc)})")
        if isinstance(exc, errors.EntryNotFoundError):
            return InputError(f"{what}: listed but no longer on the Hub (changed between listing and read); "
                              "scan again")
        if isinstance(exc, errors.HfHubHTTPError):
            status = status_of(exc) or "?"
            if status == 429:
                return InputError(f"{what}: rate limited by the Hub (429) after {self.retries} retries; "
                                  "wait, or set HF_TOKEN for a higher limit")
            return InputError(f"{what}: the Hub answered HTTP {status} after {self.retries} retries")
        failure = hub_http.failure_kind(exc)
        if failure == "timeout":
            return InputError(f"{what}: timed out after {self.timeout:g}s talking to {self.endpoint} "
                              "(HEADCHECK_HUB_TIMEOUT raises the limit)")
        if failure == "connect":
            return InputError(f"{what}: cannot connect to {self.endpoint} (offline? set HF_HUB_OFFLINE=1 to use "
                              "the local cache)")
        return InputError(f"{what}: {first_line(exc)}")


class HubRepo(HubAccess):
    """Source over one revision of a Hub model repository."""

    def __init__(self, target: str, revision: str | None = None, token: str | None = None,
                 subfolder: str | None = None, label: str | None = None):
        super().__init__(target, revision, token, subfolder, label)
        self._index_dir = self.cache_dir / "headcheck" / self.storage
        self.sha, self.listing = self._resolve()
        prefix = f"{self.subfolder}/" if self.subfolder else ""
        self._files = tuple(sorted(f[len(prefix):] for f in self.listing
                                   if f.startswith(prefix) and "/" not in f[len(prefix):]))

    def checkpoint_subfolders(self) -> tuple[str, ...]:
        """Subfolders below this one that hold a config headcheck reads, for a root that holds none."""
        prefix = f"{self.subfolder}/" if self.subfolder else ""
        configs = ("config.json", "adapter_config.json", "head_config.json")
        return tuple(sorted({f[len(prefix):].rpartition("/")[0] for f in self.listing if f.startswith(prefix)
                             and "/" in f[len(prefix):] and f.rpartition("/")[2] in configs}))

    # --- Source
    def files(self) -> tuple[str, ...]:
        return self._files

    def read_json(self, rel: str) -> Any:
        return read_json_file(self.download(rel), rel)

    def read_card(self, rel: str) -> dict[str, Any] | None:
        try:
            return read_card_file(self.download(rel))
        except InputError:  # a card is context only
            return None

    def read_weights(self, rel: str) -> dict[str, TensorInfo]:
        cached = self._index_dir / self.sha / f"{self.path_in_repo(rel)}.tensors-v4.json"  # v4: with the notes
        if cached.exists():
            stored = json.loads(cached.read_text())
            index = TensorIndex((t[0], _tensor_from_json(t)) for t in stored["tensors"])
            index.notes = tuple(stored["notes"])
            return index
        if self.offline:
            raise InputError(f"{self.label}: the header of {rel} is not in the local cache (HF_HUB_OFFLINE=1); "
                             "scan once online to cache it")
        tensors = self._guard(rel, lambda: self._read_remote_weights(rel))
        cached.parent.mkdir(parents=True, exist_ok=True)
        # positional rows: dataclasses.asdict was a quarter of a bulk scan's CPU
        rows = [[t.name, t.dtype, t.shape, t.file, t.span, t.storage, t.transposed] for t in tensors.values()]
        cached.write_text(json.dumps({"tensors": rows, "notes": list(getattr(tensors, "notes", ()))}))
        return tensors

    def base_model_config(self, base: str) -> dict[str, Any] | None:
        """config.json of an adapter's base model, or None when it cannot be reached (never fatal)."""
        if not looks_like_repo_id(base):
            return None
        try:
            return base_model(base, weights=False, token=self.token).config()
        except (InputError, BaseModelNameError):
            return None

    # --- resolution and caching
    def _resolve(self) -> tuple[str, tuple[str, ...]]:
        refs = self._index_dir / "refs" / self.revision
        if self.offline:
            if not refs.exists():
                raise InputError(f"{self.label}: not in the local cache (HF_HUB_OFFLINE=1): no listing of revision "
                                 f"{self.revision!r} under {self.cache_dir}; scan once online to cache it")
            sha = refs.read_text().strip()
            return sha, tuple(json.loads((self._index_dir / sha / "files.json").read_text()))
        info = self._guard(None, lambda: HfApi(endpoint=self.endpoint, token=self.token).model_info(
            self.repo_id, revision=self.revision, timeout=self.timeout))
        files = tuple(sorted(s.rfilename for s in info.siblings or ()))
        (self._index_dir / info.sha).mkdir(parents=True, exist_ok=True)
        (self._index_dir / info.sha / "files.json").write_text(json.dumps(files))
        refs.parent.mkdir(parents=True, exist_ok=True)
        refs.write_text(info.sha)
        return info.sha, files

    def download(self, rel: str) -> Path:
        """The file, whole, at the scanned commit (configs, cards, and for migrate the weights)."""
        return self.fetch(rel, self.sha)

    # --- ranged reads (hub_http.py says why they are not huggingface_hub's own)
    def _get_range(self, rel: str, start: int, end: int | None) -> tuple[bytes, int]:
        """Bytes start..end (inclusive; end None = suffix of -start bytes) and the file's total size."""
        url = hf_hub_url(self.repo_id, self.path_in_repo(rel), revision=self.sha, endpoint=self.endpoint)
        spec = f"bytes={start}-{end}" if end is not None else f"bytes=-{start}"
        headers = {**build_hf_headers(token=self.token), "Range": spec}
        response = self._retrying(lambda: hub_http.ranged_get(url, headers, self.timeout))
        hf_raise_for_status(response)
        total = response.headers.get("Content-Range", "").rpartition("/")[2]
        if response.status_code != 206 or not total.isdigit():
            raise InputError(f"{self.label}: the server ignored the Range request for {rel}")
        return response.content, int(total)

    def _read_remote_weights(self, rel: str) -> dict[str, TensorInfo]:
        if rel.endswith(".safetensors"):
            return self._remote_safetensors(rel)
        with contextlib.closing(RangeFile(self, rel)) as stream:
            return read_pickle_index(io.BufferedReader(stream, BLOCK), rel)

    def _remote_safetensors(self, rel: str) -> dict[str, TensorInfo]:
        # the 64 KB of speculative reading is shared by all shards, so sharded repos stay within the budget
        shards = sum(name.endswith(".safetensors") for name in self._files) or 1
        head, total = self._get_range(rel, 0, max(4096, FIRST_RANGE // shards) - 1)
        if len(head) < 8:
            raise InputError(f"{rel}: truncated safetensors file ({total} bytes, no header)")
        (length,) = struct.unpack("<Q", head[:8])
        if length > min(total - 8, MAX_HEADER_BYTES):
            raise InputError(f"{rel}: corrupt or truncated safetensors file "
                             f"(header length {length} past the end of a {total}-byte file)")
        if 8 + length > len(head):
            rest, _ = self._get_range(rel, len(head), 8 + length - 1)
            head += rest
        return parse_header(head[8:8 + length], total - 8 - length, rel)[0]

class RangeFile(io.RawIOBase):
    """A remote file as a seekable stream of cached 64 KB blocks, so zipfile reads only what it needs."""

    def __init__(self, repo: HubRepo, rel: str):
        self.repo, self.rel, self.pos = repo, rel, 0
        # The zip's end records live in the last bytes: read them first, which also tells the size.
        self.tail, self.size = repo._get_range(rel, BLOCK, None)
        self.tail_start = self.size - len(self.tail)
        self.blocks: dict[int, bytes] = {}

    def _block(self, index: int) -> bytes:
        if index not in self.blocks:
            start, end = index * BLOCK, min((index + 1) * BLOCK, self.size)
            if start >= self.tail_start:
                self.blocks[index] = self.tail[start - self.tail_start:end - self.tail_start]
            else:
                self.blocks[index] = self.repo._get_range(self.rel, start, end - 1)[0]
        return self.blocks[index]

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.size}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def readinto(self, buffer) -> int:
        if self.pos >= self.size:
            return 0
        block = self._block(self.pos // BLOCK)
        offset = self.pos % BLOCK
        chunk = block[offset:offset + len(buffer)]
        buffer[:len(chunk)] = chunk
        self.pos += len(chunk)
        return len(chunk)


def _tensor_from_json(row: list) -> TensorInfo:
    name, dtype, shape, file, span, storage, transposed = row
    return TensorInfo(name, dtype, None if shape is None else tuple(shape), file,
                      None if span is None else tuple(span), storage, transposed)


def _backoff(attempt: int, response) -> float:
    base = float(_setting("HEADCHECK_HUB_BACKOFF", "1"))
    retry_after = response.headers.get("Retry-After", "") if response is not None else ""
    return min(float(retry_after) if retry_after.isdigit() else base * 2 ** attempt, 30.0)


def status_of(exc: errors.HfHubHTTPError) -> int | None:
    return exc.response.status_code if exc.response is not None else None


def first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
