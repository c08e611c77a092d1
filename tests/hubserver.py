"""A fake Hugging Face Hub on 127.0.0.1, answering the endpoints huggingface_hub 0.x, 1.x and 2.x use.

Serves repositories from local folders, with Range support, a count of body bytes sent per repository,
and switches to provoke the Hub's failure modes.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from werkzeug import Request, Response

API = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)/revision/(?P<rev>[^/]+)$")
RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<file>.+)$")
BRIDGE = re.compile(r"^/xet-bridge/(?P<repo>[^/]+/[^/]+)/(?P<file>.+)$")  # where Xet-backed files redirect
WEIGHT_SUFFIXES = (".safetensors", ".bin")
RANGE = re.compile(r"^bytes=(?P<start>\d*)-(?P<end>\d*)$")


@dataclass
class FakeRepo:
    folder: Path
    revisions: tuple[str, ...] = ("main",)
    gated: bool = False
    private: bool = False
    fail_status: int | None = None  # answer every request with this status...
    fail_times: int = 0  # ...this many times (0: always)
    delay: float = 0.0  # seconds before answering (timeouts)
    vanished: tuple[str, ...] = ()  # listed, but 404 when read
    xet: bool = False  # weight files answer with a redirect to a storage bridge, as Xet-backed files do
    bytes_sent: int = 0
    bridged: int = 0  # requests answered by the storage bridge (after a redirect)
    failures_left: int = field(default=0, init=False)

    def __post_init__(self):
        self.failures_left = self.fail_times

    @property
    def sha(self) -> str:
        return hashlib.sha1(str(self.folder).encode()).hexdigest()


class FakeHub:
    def __init__(self, httpserver):
        self.server = httpserver
        self.repos: dict[str, FakeRepo] = {}
        self.lock = threading.Lock()
        httpserver.expect_request(re.compile(".*")).respond_with_handler(self.handle)

    @property
    def endpoint(self) -> str:
        return self.server.url_for("").rstrip("/")

    def add(self, repo_id: str, folder: Path, **behaviour) -> FakeRepo:
        self.repos[repo_id] = FakeRepo(Path(folder), **behaviour)
        return self.repos[repo_id]

    def bytes_sent(self, repo_id: str) -> int:
        return self.repos[repo_id].bytes_sent

    # --- request handling
    def handle(self, request: Request) -> Response:
        if match := API.match(request.path):
            return self._guarded(match["repo"], match["rev"], lambda repo: self._info(match["repo"], repo))
        if match := RESOLVE.match(request.path):
            return self._guarded(match["repo"], match["rev"],
                                 lambda repo: self._resolve(request, match["repo"], repo, match["file"]))
        if (match := BRIDGE.match(request.path)) and match["repo"] in self.repos:
            repo = self.repos[match["repo"]]
            with self.lock:
                repo.bridged += 1
            return self._file(request, match["repo"], repo, match["file"])
        return Response("not found", status=404)

    def _guarded(self, repo_id: str, revision: str, answer) -> Response:
        repo = self.repos.get(repo_id)
        if repo is None or repo.private:
            return _error(404, "RepoNotFound", "Repository not found")
        if repo.gated:
            return _error(403, "GatedRepo", "Access to this repository is restricted")
        if revision not in repo.revisions and revision != repo.sha:
            return _error(404, "RevisionNotFound", "Invalid rev id")
        if repo.delay:
            time.sleep(repo.delay)
        if repo.fail_status:
            with self.lock:
                failing = repo.fail_times == 0 or repo.failures_left > 0
                repo.failures_left -= 1
            if failing:
                return Response("busy", status=repo.fail_status, headers={"Retry-After": "0"})
        return answer(repo)

    def _info(self, repo_id: str, repo: FakeRepo) -> Response:
        files = sorted(p.name for p in repo.folder.iterdir() if p.is_file())
        body = {"id": repo_id, "modelId": repo_id, "sha": repo.sha, "private": False,
                "siblings": [{"rfilename": name} for name in files]}
        return Response(json.dumps(body), content_type="application/json")

    def _resolve(self, request: Request, repo_id: str, repo: FakeRepo, name: str) -> Response:
        if repo.xet and name.endswith(WEIGHT_SUFFIXES) and request.method == "GET":
            return Response("", status=302, headers={"Location": f"{self.endpoint}/xet-bridge/{repo_id}/{name}"})
        return self._file(request, repo_id, repo, name)

    def _file(self, request: Request, repo_id: str, repo: FakeRepo, name: str) -> Response:
        path = repo.folder / name
        if name in repo.vanished or not path.is_file():
            return _error(404, "EntryNotFound", f"{name} does not exist")
        size = path.stat().st_size
        headers = {"ETag": f'"{hashlib.sha1((str(path) + str(size)).encode()).hexdigest()}"',
                   "X-Repo-Commit": repo.sha, "Accept-Ranges": "bytes"}
        if request.method == "HEAD":  # werkzeug drops the body of HEAD answers but keeps its Content-Length
            return Response(path.read_bytes(), headers=headers)
        start, end, status = 0, size - 1, 200
        if (match := RANGE.match(request.headers.get("Range", ""))) and size:
            if match["start"] == "":  # suffix range: the last N bytes
                start, end = max(0, size - int(match["end"])), size - 1
            else:
                start = int(match["start"])
                end = min(int(match["end"]), size - 1) if match["end"] else size - 1
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        with path.open("rb") as fh:
            fh.seek(start)
            body = fh.read(end - start + 1)
        with self.lock:
            repo.bytes_sent += len(body)
        return Response(body, status=status, headers=headers)


def _error(status: int, code: str, message: str) -> Response:
    return Response(json.dumps({"error": message}), status=status, content_type="application/json",
                    headers={"X-Error-Code": code, "X-Error-Message": message})
