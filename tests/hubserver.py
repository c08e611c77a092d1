"""A fake Hugging Face Hub on 127.0.0.1, answering the endpoints huggingface_hub 0.x, 1.x and 2.x use.

Serves repositories from local folders, with Range support, a count of body bytes sent per repository,
and switches to provoke the Hub's failure modes. It also takes commits as huggingface_hub makes them
(whoami, preupload, the LFS batch API with basic uploads, NDJSON commits with create_pr, refs/pr/N,
discussions, repository creation); each commit becomes a new folder, so every revision stays readable.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

from werkzeug import Request, Response

API = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)/revision/(?P<rev>[^/]+)$")
RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<file>.+)$")
PREUPLOAD = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)/preupload/(?P<rev>[^/]+)$")
COMMIT = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)/commit/(?P<rev>[^/]+)$")
LFS_BATCH = re.compile(r"^/(?P<repo>[^/]+/[^/]+)\.git/info/lfs/objects/batch$")
LFS_STORE = re.compile(r"^/lfs-store/(?P<oid>[0-9a-f]{64})$")
DISCUSSIONS = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)/discussions$")
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
    refs: dict[str, Path] = field(default_factory=dict)  # refs/pr/N and committed branches -> their folder
    discussions: list[dict] = field(default_factory=list)
    commits: int = 0  # commits accepted (pull requests included)

    def __post_init__(self):
        self.failures_left = self.fail_times

    @property
    def sha(self) -> str:
        return sha_of(self.folder)

    def folder_at(self, revision: str) -> Path | None:
        if revision in self.refs:
            return self.refs[revision]
        if revision in self.revisions or revision == self.sha:
            return self.folder
        return next((folder for folder in self.refs.values() if sha_of(folder) == revision), None)


def sha_of(folder: Path) -> str:
    return hashlib.sha1(str(folder).encode()).hexdigest()


class FakeHub:
    def __init__(self, httpserver, tokens: dict[str, str] | None = None):
        self.server = httpserver
        self.repos: dict[str, FakeRepo] = {}
        self.lock = threading.Lock()
        self.tokens = tokens or {}  # token -> role ("write" or "read")
        self.lfs_objects: dict[str, bytes] = {}
        self.storage = Path(tempfile.mkdtemp(prefix="fakehub-"))  # folders of committed revisions
        self.fail_commits: int | None = None  # answer commits with this status
        self.before_commit = None  # called with the repo id just before a commit is applied
        httpserver.expect_request(re.compile(".*")).respond_with_handler(self.handle)

    @property
    def endpoint(self) -> str:
        return self.server.url_for("").rstrip("/")

    def add(self, repo_id: str, folder: Path, **behaviour) -> FakeRepo:
        self.repos[repo_id] = FakeRepo(Path(folder), **behaviour)
        return self.repos[repo_id]

    def bytes_sent(self, repo_id: str) -> int:
        return self.repos[repo_id].bytes_sent

    # --- the commit API
    def _commit_api(self, request: Request, path: str) -> Response | None:
        if path == "/api/whoami-v2":
            role = self._role(request)
            if role is None:
                return _error(401, "Unauthorized", "Invalid user token")
            return _json({"type": "user", "name": "alice", "auth": {"type": "access_token",
                                                                     "accessToken": {"displayName": "t", "role": role}}})
        if path == "/api/repos/create" and request.method == "POST":
            return self._writing(request, lambda: self._create_repo(request))
        if match := LFS_STORE.match(path):
            data = request.get_data()
            if hashlib.sha256(data).hexdigest() != match["oid"]:
                return _error(400, "BadRequest", "content does not match its oid")
            with self.lock:
                self.lfs_objects[match["oid"]] = data
            return Response("", status=200)
        for pattern, handler in ((PREUPLOAD, self._preupload), (LFS_BATCH, self._lfs_batch), (COMMIT, self._commit),
                                 (DISCUSSIONS, self._discussions)):
            if match := pattern.match(path):
                repo = self.repos.get(match["repo"])
                if repo is None or (repo.private and self._role(request) is None):
                    return _error(404, "RepoNotFound", "Repository not found")
                if repo.gated and self._role(request) is None:
                    return _error(403, "GatedRepo", "Access to this repository is restricted")
                if pattern is DISCUSSIONS:
                    return handler(request, match["repo"], repo)
                return self._writing(request, lambda: handler(request, match["repo"], repo,
                                                              unquote(match.groupdict().get("rev") or "main")))
        return None

    def _role(self, request: Request) -> str | None:
        auth = request.headers.get("Authorization", "")
        return self.tokens.get(auth.removeprefix("Bearer ")) if auth.startswith("Bearer ") else None

    def _writing(self, request: Request, answer) -> Response:
        role = self._role(request)
        if role is None:
            return _error(401, "Unauthorized", "Invalid credentials in Authorization header")
        if role != "write":
            return _error(403, "Forbidden", "You don't have the rights to write to this repository")
        return answer()

    def _preupload(self, request: Request, repo_id: str, repo: FakeRepo, revision: str) -> Response:
        files = request.get_json()["files"]
        return _json({"files": [{"path": f["path"], "shouldIgnore": False,
                                 "uploadMode": "lfs" if f["path"].endswith(WEIGHT_SUFFIXES) else "regular"}
                                for f in files]})

    def _lfs_batch(self, request: Request, repo_id: str, repo: FakeRepo, revision: str) -> Response:
        body = request.get_json()
        objects = []
        for obj in body["objects"]:
            entry = {"oid": obj["oid"], "size": obj["size"], "authenticated": True}
            if obj["oid"] not in self.lfs_objects:
                entry["actions"] = {"upload": {"href": f"{self.endpoint}/lfs-store/{obj['oid']}", "header": {}}}
            objects.append(entry)
        return Response(json.dumps({"transfer": "basic", "objects": objects}),
                        content_type="application/vnd.git-lfs+json")

    def _commit(self, request: Request, repo_id: str, repo: FakeRepo, revision: str) -> Response:
        if self.fail_commits:
            return _error(self.fail_commits, "ServerError", "the commit could not be made")
        lines = [json.loads(line) for line in request.get_data().splitlines() if line.strip()]
        header = next(line["value"] for line in lines if line["key"] == "header")
        base = repo.folder_at(revision)
        if base is None:
            return _error(404, "RevisionNotFound", "Invalid rev id")
        if self.before_commit is not None:
            self.before_commit(repo_id)
            base = repo.folder_at(revision)
        if header.get("parentCommit") and header["parentCommit"] != sha_of(base):
            return _error(412, "PreconditionFailed", "A commit has happened since. Please refresh and try again.")
        with self.lock:
            folder = self.storage / f"{repo_id.replace('/', '--')}-{len(list(self.storage.iterdir()))}"
            shutil.copytree(base, folder)
            for line in lines:
                value = line["value"]
                target = folder / value.get("path", "")
                if line["key"] == "file":
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(base64.b64decode(value["content"]))
                elif line["key"] == "lfsFile":
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(self.lfs_objects[value["oid"]])
                elif line["key"] == "deletedFile":
                    target.unlink()
            repo.commits += 1
            answer = {"commitUrl": f"{self.endpoint}/{repo_id}/commit/{sha_of(folder)}", "commitOid": sha_of(folder)}
            if request.args.get("create_pr"):
                num = len(repo.discussions) + 1
                repo.refs[f"refs/pr/{num}"] = folder
                repo.discussions.append({
                    "num": num, "title": header["summary"], "status": "open", "isPullRequest": True,
                    "author": {"name": "alice"}, "createdAt": "2026-12-02T00:00:00.000Z",
                    "repo": {"name": repo_id, "type": "model"}, "description": header.get("description", "")})
                answer["pullRequestUrl"] = f"{self.endpoint}/{repo_id}/discussions/{num}"
            elif revision in repo.revisions:
                repo.folder = folder  # the branch moves to the new commit
            else:
                repo.refs[revision] = folder
        return _json(answer)

    def _discussions(self, request: Request, repo_id: str, repo: FakeRepo) -> Response:
        wanted = [d for d in repo.discussions
                  if request.args.get("type") in (None, "all", "pull_request" if d["isPullRequest"] else "discussion")
                  and request.args.get("status") in (None, "all", d["status"])]
        return _json({"discussions": [{k: v for k, v in d.items() if k != "description"} for d in wanted],
                      "count": len(wanted), "start": 0, "numClosedDiscussions": 0})

    def _create_repo(self, request: Request) -> Response:
        body = request.get_json()
        repo_id = f"{body['organization']}/{body['name']}" if body.get("organization") else body["name"]
        if "/" not in repo_id:
            repo_id = f"alice/{repo_id}"
        if repo_id in self.repos:
            return _error(409, "Conflict", "You already created this model repo")
        folder = self.storage / f"{repo_id.replace('/', '--')}-new"
        folder.mkdir()
        self.add(repo_id, folder, private=bool(body.get("private")) or body.get("visibility") == "private")
        return _json({"url": f"{self.endpoint}/{repo_id}", "name": repo_id})

    # --- request handling
    def handle(self, request: Request) -> Response:
        # the raw path: huggingface_hub sends revisions such as refs/pr/1 percent-encoded as one segment
        path = (request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI") or request.path).split("?")[0]
        if (answer := self._commit_api(request, path)) is not None:
            return answer
        if match := API.match(path):
            rev = unquote(match["rev"])
            return self._guarded(request, match["repo"], rev, lambda repo: self._info(match["repo"], repo, rev))
        if match := RESOLVE.match(path):
            return self._guarded(request, match["repo"], unquote(match["rev"]),
                                 lambda repo: self._resolve(request, match["repo"], repo, unquote(match["file"]),
                                                            unquote(match["rev"])))
        if (match := BRIDGE.match(path)) and match["repo"] in self.repos:
            repo = self.repos[match["repo"]]
            with self.lock:
                repo.bridged += 1
            return self._file(request, match["repo"], repo, match["file"])
        return Response("not found", status=404)

    def _guarded(self, request: Request, repo_id: str, revision: str, answer) -> Response:
        repo = self.repos.get(repo_id)
        if repo is None or (repo.private and self._role(request) is None):
            return _error(404, "RepoNotFound", "Repository not found")
        if repo.gated:
            return _error(403, "GatedRepo", "Access to this repository is restricted")
        if repo.folder_at(revision) is None:
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

    def _info(self, repo_id: str, repo: FakeRepo, revision: str) -> Response:
        folder = repo.folder_at(revision)
        files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
        body = {"id": repo_id, "modelId": repo_id, "sha": sha_of(folder), "private": repo.private,
                "siblings": [{"rfilename": name} for name in files]}
        return Response(json.dumps(body), content_type="application/json")

    def _resolve(self, request: Request, repo_id: str, repo: FakeRepo, name: str, revision: str) -> Response:
        if repo.xet and name.endswith(WEIGHT_SUFFIXES) and request.method == "GET":
            return Response("", status=302, headers={"Location": f"{self.endpoint}/xet-bridge/{repo_id}/{name}"})
        return self._file(request, repo_id, repo, name, repo.folder_at(revision))

    def _file(self, request: Request, repo_id: str, repo: FakeRepo, name: str, folder: Path | None = None) -> Response:
        folder = folder or repo.folder
        path = folder / name
        if name in repo.vanished or not path.is_file():
            return _error(404, "EntryNotFound", f"{name} does not exist")
        size = path.stat().st_size
        headers = {"ETag": f'"{hashlib.sha1((str(path) + str(size)).encode()).hexdigest()}"',
                   "X-Repo-Commit": sha_of(folder), "Accept-Ranges": "bytes"}
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


def _json(body: dict) -> Response:
    return Response(json.dumps(body), content_type="application/json")


def _error(status: int, code: str, message: str) -> Response:
    return Response(json.dumps({"error": message}), status=status, content_type="application/json",
                    headers={"X-Error-Code": code, "X-Error-Message": message})
