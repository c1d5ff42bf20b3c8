"""A loopback Hugging Face Hub for tests: the endpoints the real ``huggingface_hub`` client calls.

Standard library only (``http.server`` in a thread). It implements what ``create_repo``,
``upload_folder`` (with ``HF_HUB_DISABLE_XET=1``: validate-yaml, preupload, the Git LFS batch API,
commit), ``model_info``, ``list_repo_tree``, ``hf_hub_download`` and ``snapshot_download`` need:

- ``POST /api/repos/create``, ``POST /api/validate-yaml``, ``GET /api/whoami-v2``
- ``POST /api/models/{repo}/preupload/{rev}``, ``POST /api/models/{repo}/commit/{rev}`` (NDJSON)
- ``POST /{repo}.git/info/lfs/objects/batch`` and ``.../verify``; uploads go to a second server on
  another port that plays the storage CDN, as S3 does for the real Hub
- ``GET /api/models/{repo}[/revision/{rev}]``, ``GET /api/models/{repo}/tree/{rev}[/{path}]``
- ``HEAD|GET /{repo}/resolve/{rev}/{path}``: regular files answer directly with ``ETag`` (git blob
  sha1), ``X-Repo-Commit`` and ``Content-Length``; LFS files redirect to the CDN with
  ``X-Linked-Etag`` (sha256), ``X-Linked-Size`` and ``X-Repo-Commit``

Errors carry the ``X-Error-Code`` headers the client maps to its exceptions (``RepoNotFound``,
``RevisionNotFound``, ``EntryNotFound``). :meth:`HubServer.fail_next` injects server errors.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

#: The patterns the Hub's default ``.gitattributes`` stores with Git LFS (abridged).
LFS_PATTERNS = (
    "*.7z", "*.arrow", "*.bin", "*.bz2", "*.ckpt", "*.ftz", "*.gz", "*.h5", "*.joblib", "*.lfs.*", "*.mlmodel",
    "*.model", "*.msgpack", "*.npy", "*.npz", "*.onnx", "*.ot", "*.parquet", "*.pb", "*.pickle", "*.pkl", "*.pt",
    "*.pth", "*.rar", "*.safetensors", "*.tar.*", "*.tar", "*.tflite", "*.tgz", "*.wasm", "*.xz", "*.zip", "*.zst",
    "*tfevents*", "*.mp4",
)
GITATTRIBUTES = "".join(f"{pattern} filter=lfs diff=lfs merge=lfs -text\n" for pattern in LFS_PATTERNS)
#: Files this large always go through LFS, whatever their name (as on the Hub).
LFS_SIZE_THRESHOLD = 10 * 1024 * 1024
_REPO = r"(?P<repo>[\w.\-]+/[\w.\-]+)"


def git_blob_sha1(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


@dataclass
class StoredFile:
    size: int
    content: bytes | None = None  # regular file
    sha256: str | None = None  # LFS file (content in HubState.lfs_objects)

    @property
    def pointer(self) -> bytes:
        assert self.sha256 is not None
        return lfs_pointer(self.sha256, self.size)

    @property
    def blob_id(self) -> str:
        return git_blob_sha1(self.pointer if self.sha256 else self.content or b"")


@dataclass
class Commit:
    oid: str
    title: str
    files: dict[str, StoredFile]
    date: float


@dataclass
class Repo:
    repo_id: str
    private: bool
    commits: list[Commit] = field(default_factory=list)

    @property
    def head(self) -> Commit:
        return self.commits[-1]

    def at(self, revision: str) -> Commit | None:
        if revision in ("main", "HEAD"):
            return self.head
        return next((commit for commit in self.commits if commit.oid == revision), None)


@dataclass
class Failure:
    method: str
    pattern: re.Pattern
    status: int
    remaining: int


class HubState:
    """Everything the fake Hub stores; shared by the API and the CDN server."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.repos: dict[str, Repo] = {}
        self.lfs_objects: dict[str, bytes] = {}
        self.requests: list[tuple[str, str]] = []
        self.failures: list[Failure] = []
        self.valid_tokens: set[str] | None = None  # None: any non-empty token is accepted
        self.user = "alice"

    def reset(self) -> None:
        with self.lock:
            self.repos.clear()
            self.lfs_objects.clear()
            self.requests.clear()
            self.failures.clear()
            self.valid_tokens = None

    def commit(self, repo: Repo, title: str, files: dict[str, StoredFile]) -> Commit:
        seed = f"{repo.repo_id}\n{len(repo.commits)}\n{title}\n{time.time_ns()}".encode()
        commit = Commit(hashlib.sha1(seed).hexdigest(), title, files, time.time())
        repo.commits.append(commit)
        return commit


class HubServer:
    """The fake Hub (API) and its storage CDN, each on a loopback port, served from threads."""

    def __init__(self) -> None:
        self.state = HubState()
        self.api = _Server(("127.0.0.1", 0), _ApiHandler, self)
        self.cdn = _Server(("127.0.0.1", 0), _CdnHandler, self)
        self._threads = [threading.Thread(target=server.serve_forever, daemon=True) for server in (self.api, self.cdn)]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.api.server_address[1]}"

    @property
    def cdn_url(self) -> str:
        return f"http://127.0.0.1:{self.cdn.server_address[1]}"

    def start(self) -> HubServer:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        for server in (self.api, self.cdn):
            server.shutdown()
            server.server_close()

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # Test helpers -------------------------------------------------------------------------

    def fail_next(self, method: str, path_regex: str, status: int = 503, count: int = 1) -> None:
        """Answer the next ``count`` requests matching ``method`` and ``path_regex`` with ``status``."""
        with self.state.lock:
            self.state.failures.append(Failure(method.upper(), re.compile(path_regex), status, count))

    def files(self, repo_id: str, revision: str = "main") -> dict[str, bytes]:
        """The content of every file of a repo at ``revision``."""
        with self.state.lock:
            commit = self.state.repos[repo_id].at(revision)
            assert commit is not None
            return {path: self._content(stored) for path, stored in commit.files.items()}

    def upload_modes(self, repo_id: str) -> dict[str, str]:
        with self.state.lock:
            return {path: "lfs" if stored.sha256 else "regular" for path, stored in self.state.repos[repo_id].head.files.items()}

    def _content(self, stored: StoredFile) -> bytes:
        if stored.sha256 is not None:
            return self.state.lfs_objects[stored.sha256]
        return stored.content or b""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: type, hub: HubServer) -> None:
        super().__init__(address, handler)
        self.hub = hub


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass

    @property
    def hub(self) -> HubServer:
        return self.server.hub

    @property
    def state(self) -> HubState:
        return self.server.hub.state

    # Plumbing -------------------------------------------------------------------------------

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None,
              content_type: str = "application/json", length: int | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(payload).encode(), headers)

    def _error(self, status: int, message: str, code: str | None = None, headers: dict[str, str] | None = None) -> None:
        extra = {"X-Error-Message": message, **(headers or {})}
        if code:
            extra["X-Error-Code"] = code
        self._json(status, {"error": message}, extra)

    def _injected_failure(self, path: str) -> bool:
        with self.state.lock:
            for failure in self.state.failures:
                if failure.remaining > 0 and failure.method in (self.command, "*") and failure.pattern.search(path):
                    failure.remaining -= 1
                    self._body()
                    self._error(failure.status, f"injected failure {failure.status}")
                    return True
        return False

    def _dispatch(self) -> None:
        path = urlsplit(self.path).path
        with self.state.lock:
            self.state.requests.append((self.command, self.path))
        if self._injected_failure(path):
            return
        try:
            self.route(path)
        except Exception as error:  # a bug here must show up in the client as a 500, not a hang
            self._error(500, f"{type(error).__name__}: {error}")

    def route(self, path: str) -> None:
        raise NotImplementedError

    do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = _dispatch

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.path).query)


class _ApiHandler(_Handler):
    def route(self, path: str) -> None:
        routes = [
            ("POST", r"/api/repos/create", self.create_repo),
            ("POST", r"/api/validate-yaml", self.validate_yaml),
            ("GET", r"/api/whoami-v2", self.whoami),
            ("GET", r"/api/agent-harnesses", lambda: self._json(200, {})),
            ("POST", rf"/api/models/{_REPO}/preupload/(?P<rev>[^/]+)", self.preupload),
            ("POST", rf"/api/models/{_REPO}/commit/(?P<rev>[^/]+)", self.commit),
            ("GET", rf"/api/models/{_REPO}/tree/(?P<rev>[^/]+)(?:/(?P<path>.*))?", self.tree),
            ("GET", rf"/api/models/{_REPO}(?:/revision/(?P<rev>[^/]+))?", self.model_info),
            ("POST", rf"/{_REPO}\.git/info/lfs/objects/batch", self.lfs_batch),
            ("POST", rf"/{_REPO}\.git/info/lfs/objects/verify", self.lfs_verify),
            ("HEAD", rf"/{_REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)", self.resolve),
            ("GET", rf"/{_REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)", self.resolve),
        ]
        for method, pattern, handler in routes:
            match = re.fullmatch(pattern, path)
            if method == self.command and match:
                kwargs = {key: unquote(value) for key, value in match.groupdict().items() if value is not None}
                handler(**kwargs)
                return
        self._body()
        self._error(404, f"no route for {self.command} {path}")

    # Auth ------------------------------------------------------------------------------------

    def _token(self) -> str | None:
        header = self.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            return None
        return header[len("Bearer "):].strip() or None

    def _require_write(self) -> bool:
        token = self._token()
        if token is None:
            self._error(401, "Invalid credentials in Authorization header")
            return False
        if self.state.valid_tokens is not None and token not in self.state.valid_tokens:
            self._error(401, "Invalid credentials in Authorization header")
            return False
        return True

    def _repo(self, repo_id: str) -> Repo | None:
        """The repo if it exists and the caller may read it; else answers 404/401 like the Hub."""
        repo = self.state.repos.get(repo_id)
        if repo is None or (repo.private and self._token() is None):
            self._error(401 if repo is not None else 404, "Repository not found", "RepoNotFound")
            return None
        return repo

    def _commit_at(self, repo: Repo, revision: str) -> Commit | None:
        commit = repo.at(unquote(revision))
        if commit is None:
            self._error(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return commit

    # Endpoints -------------------------------------------------------------------------------

    def whoami(self) -> None:
        if not self._require_write():
            return
        self._json(200, {"type": "user", "name": self.state.user, "fullname": self.state.user, "orgs": [],
                         "auth": {"type": "access_token", "accessToken": {"role": "write"}}})

    def create_repo(self) -> None:
        payload = json.loads(self._body() or b"{}")
        if not self._require_write():
            return
        if payload.get("type", "model") != "model":
            self._error(400, "this fake Hub only hosts model repos")
            return
        name, organization = payload["name"], payload.get("organization") or self.state.user
        repo_id = f"{organization}/{name}"
        with self.state.lock:
            if repo_id in self.state.repos:
                # The Hub's 409 carries the repo url, which create_repo(exist_ok=True) returns.
                self._json(409, {"error": "You already created this model repo", "url": f"{self.hub.url}/{repo_id}"},
                           {"X-Error-Message": "You already created this model repo"})
                return
            repo = Repo(repo_id, private=payload.get("visibility") == "private" or bool(payload.get("private")))
            self.state.repos[repo_id] = repo
            self.state.commit(repo, "initial commit",
                              {".gitattributes": StoredFile(len(GITATTRIBUTES), GITATTRIBUTES.encode())})
        self._json(200, {"url": f"{self.hub.url}/{repo_id}", "name": repo_id, "id": repo_id})

    def validate_yaml(self) -> None:
        payload = json.loads(self._body() or b"{}")
        errors = validate_model_card(payload.get("content", ""))
        self._json(400 if errors else 200, {"errors": [{"message": error} for error in errors], "warnings": []})

    def preupload(self, repo: str, rev: str) -> None:
        payload = json.loads(self._body() or b"{}")
        if not self._require_write():
            return
        with self.state.lock:
            found = self._repo(repo)
            if found is None or self._commit_at(found, rev) is None:
                return
            head = found.at(unquote(rev))
            assert head is not None
            files = []
            for item in payload["files"]:
                sample = base64.b64decode(item["sample"])
                lfs = (any(fnmatch.fnmatch(item["path"].rsplit("/", 1)[-1], p) for p in LFS_PATTERNS)
                       or item["size"] >= LFS_SIZE_THRESHOLD or b"\0" in sample)
                existing = head.files.get(item["path"])
                oid = None
                if existing is not None:
                    oid = existing.sha256 if existing.sha256 else existing.blob_id
                files.append({"path": item["path"], "uploadMode": "lfs" if lfs else "regular",
                              "shouldIgnore": False, "oid": oid})
        self._json(200, {"files": files, "commitOid": head.oid})

    def lfs_batch(self, repo: str) -> None:
        payload = json.loads(self._body() or b"{}")
        if not self._require_write():
            return
        with self.state.lock:
            if self._repo(repo) is None:
                return
            objects = []
            for item in payload.get("objects", []):
                entry: dict[str, Any] = {"oid": item["oid"], "size": item["size"], "authenticated": True}
                if item["oid"] not in self.state.lfs_objects:
                    entry["actions"] = {
                        "upload": {"href": f"{self.hub.cdn_url}/upload/{item['oid']}?size={item['size']}"},
                        "verify": {"href": f"{self.hub.url}/{repo}.git/info/lfs/objects/verify"},
                    }
                objects.append(entry)
        self._send(200, json.dumps({"transfer": "basic", "objects": objects}).encode(),
                   content_type="application/vnd.git-lfs+json")

    def lfs_verify(self, repo: str) -> None:
        payload = json.loads(self._body() or b"{}")
        stored = self.state.lfs_objects.get(payload.get("oid", ""))
        if stored is None or len(stored) != payload.get("size"):
            self._error(404, "object not uploaded")
            return
        self._json(200, {"success": True})

    def commit(self, repo: str, rev: str) -> None:
        lines = [json.loads(line) for line in self._body().splitlines() if line.strip()]
        if not self._require_write():
            return
        with self.state.lock:
            found = self._repo(repo)
            if found is None:
                return
            parent = self._commit_at(found, rev)
            if parent is None:
                return
            files = dict(parent.files)
            title = "Upload"
            for line in lines:
                key, value = line["key"], line["value"]
                if key == "header":
                    title = value.get("summary") or title
                    expected = value.get("parentCommit")
                    if expected and expected != found.head.oid:
                        self._error(412, "A commit has happened since. Please refresh and try again.")
                        return
                elif key == "file":
                    content = base64.b64decode(value["content"]) if value.get("encoding") == "base64" else \
                        value["content"].encode()
                    files[value["path"]] = StoredFile(len(content), content=content)
                elif key == "lfsFile":
                    data = self.state.lfs_objects.get(value["oid"])
                    if data is None:
                        self._error(422, f"LFS object {value['oid']} of {value['path']} was never uploaded")
                        return
                    files[value["path"]] = StoredFile(len(data), sha256=value["oid"])
                elif key == "deletedFile":
                    if files.pop(value["path"], None) is None:
                        self._error(404, "A file with this name doesn't exist", "EntryNotFound")
                        return
                elif key == "deletedFolder":
                    prefix = value["path"].rstrip("/") + "/"
                    files = {path: stored for path, stored in files.items() if not path.startswith(prefix)}
                else:
                    self._error(400, f"unknown commit operation {key!r}")
                    return
            commit = self.state.commit(found, title, files)
        self._json(200, {"success": True, "commitOid": commit.oid, "commitUrl": f"{self.hub.url}/{repo}/commit/{commit.oid}",
                         "commitMessage": title, "pullRequestUrl": None})

    def model_info(self, repo: str, rev: str | None = None) -> None:
        with self.state.lock:
            found = self._repo(repo)
            if found is None:
                return
            commit = self._commit_at(found, rev or "main")
            if commit is None:
                return
            card = card_data(commit.files["README.md"].content or b"") if "README.md" in commit.files else None
            info = {
                "_id": hashlib.md5(repo.encode()).hexdigest()[:24], "id": repo, "modelId": repo,
                "author": repo.split("/")[0], "sha": commit.oid, "private": found.private, "disabled": False,
                "gated": False, "downloads": 0, "likes": 0, "tags": (card or {}).get("tags", []),
                "library_name": (card or {}).get("library_name"),
                "lastModified": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(commit.date)),
                "createdAt": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(found.commits[0].date)),
                "siblings": [{"rfilename": path} for path in sorted(commit.files)],
            }
            if card is not None:
                info["cardData"] = card
        self._json(200, info)

    def tree(self, repo: str, rev: str, path: str = "") -> None:
        with self.state.lock:
            found = self._repo(repo)
            if found is None:
                return
            commit = self._commit_at(found, rev)
            if commit is None:
                return
            recursive = self.query.get("recursive", ["false"])[0].lower() in ("true", "1")
            prefix = path.strip("/") + "/" if path.strip("/") else ""
            entries: dict[str, dict[str, Any]] = {}
            for file_path, stored in sorted(commit.files.items()):
                if not file_path.startswith(prefix):
                    continue
                parts = file_path[len(prefix):].split("/")
                for depth in range(1, len(parts)):
                    folder = prefix + "/".join(parts[:depth])
                    if recursive or depth == 1:
                        entries.setdefault(folder, {"type": "directory", "oid": hashlib.sha1(folder.encode()).hexdigest(),
                                                    "size": 0, "path": folder})
                if recursive or len(parts) == 1:
                    entry: dict[str, Any] = {"type": "file", "oid": stored.blob_id, "size": stored.size, "path": file_path}
                    if stored.sha256 is not None:
                        entry["lfs"] = {"oid": stored.sha256, "size": stored.size, "pointerSize": len(stored.pointer)}
                    entries[file_path] = entry
            if prefix and not entries:
                self._error(404, f"{path} does not exist", "EntryNotFound")
                return
        self._json(200, list(entries.values()))

    def resolve(self, repo: str, rev: str, path: str) -> None:
        with self.state.lock:
            found = self._repo(repo)
            if found is None:
                return
            commit = self._commit_at(found, rev)
            if commit is None:
                return
            stored = commit.files.get(path)
            headers = {"X-Repo-Commit": commit.oid}
            if stored is None:
                self._error(404, "Entry not found", "EntryNotFound", headers)
                return
            if stored.sha256 is not None:
                headers.update({
                    "Location": f"{self.hub.cdn_url}/lfs/{stored.sha256}",
                    "X-Linked-Etag": f'"{stored.sha256}"',
                    "X-Linked-Size": str(stored.size),
                    "ETag": f'"{stored.blob_id}"',
                })
                self._send(302, b"", headers)
                return
            content = stored.content or b""
            headers["ETag"] = f'"{stored.blob_id}"'
        self._send(200, content, headers, content_type="application/octet-stream")


class _CdnHandler(_Handler):
    """The storage host: LFS uploads (PUT) and downloads (GET, with byte ranges)."""

    def route(self, path: str) -> None:
        upload = re.fullmatch(r"/upload/(?P<oid>[0-9a-f]{64})", path)
        download = re.fullmatch(r"/lfs/(?P<oid>[0-9a-f]{64})", path)
        if self.command == "PUT" and upload:
            data = self._body()
            if hashlib.sha256(data).hexdigest() != upload["oid"]:
                self._error(400, "sha256 mismatch")
                return
            with self.state.lock:
                self.state.lfs_objects[upload["oid"]] = data
            self._send(200, b"", {"ETag": f'"{hashlib.md5(data).hexdigest()}"'})
        elif self.command in ("GET", "HEAD") and download:
            data = self.state.lfs_objects.get(download["oid"])
            if data is None:
                self._error(404, "no such object")
                return
            byte_range = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
            if byte_range:
                start = int(byte_range[1])
                end = int(byte_range[2]) if byte_range[2] else len(data) - 1
                self._send(206, data[start:end + 1], {"Content-Range": f"bytes {start}-{end}/{len(data)}"},
                           content_type="application/octet-stream")
            else:
                self._send(200, data, {"ETag": f'"{download["oid"]}"'}, content_type="application/octet-stream")
        else:
            self._body()
            self._error(404, f"no route for {self.command} {path}")


# Model card checks (what the Hub's validate-yaml rejects) ------------------------------------


def card_data(readme: bytes) -> dict[str, Any] | None:
    text = readme.decode("utf-8", errors="replace")
    match = re.match(r"^\s*---\s*\n(.*?)\n---\s*(\n|$)", text, re.DOTALL)
    if not match:
        return None
    data = yaml.safe_load(match.group(1))
    return data if isinstance(data, dict) else None


def validate_model_card(content: str) -> list[str]:
    """The errors the Hub would report for a README's metadata (the checks rlhub's cards must pass)."""
    try:
        data = card_data(content.encode())
    except yaml.YAMLError as error:
        return [f"YAML metadata is not valid YAML: {error}"]
    if data is None:
        return []
    errors = []
    if "tags" in data and not (isinstance(data["tags"], list) and all(isinstance(tag, str) for tag in data["tags"])):
        errors.append('"tags" must be a list of strings')
    if "library_name" in data and not isinstance(data["library_name"], str):
        errors.append('"library_name" must be a string')
    model_index = data.get("model-index")
    if model_index is not None:
        if not isinstance(model_index, list):
            return errors + ['"model-index" must be an array']
        for model in model_index:
            if not isinstance(model, dict) or not isinstance(model.get("name"), str):
                errors.append('"model-index[].name" is required and must be a string')
                continue
            for result in model.get("results") or []:
                if not isinstance(result.get("task", {}).get("type"), str):
                    errors.append('"model-index[].results[].task.type" is required')
                dataset = result.get("dataset") or {}
                if not (isinstance(dataset.get("name"), str) and isinstance(dataset.get("type"), str)):
                    errors.append('"model-index[].results[].dataset" needs "name" and "type"')
                for metric in result.get("metrics") or []:
                    if not isinstance(metric.get("type"), str) or "value" not in metric:
                        errors.append('"model-index[].results[].metrics[]" needs "type" and "value"')
    return errors


# Pointing the real client at the fake Hub ---------------------------------------------------

TEST_TOKEN = "hf_rlhub_loopback_test_token"


def point_client_at(server: HubServer, home: Any, monkeypatch: Any) -> dict[str, str]:
    """Aim ``huggingface_hub`` (this process and subprocesses) at ``server``; return the variables set.

    The client reads its settings into ``huggingface_hub.constants`` at import, so the constants of
    this process are patched too; subprocesses read the environment variables.
    """
    import huggingface_hub.constants as constants

    home = str(home)
    variables = {
        "HF_ENDPOINT": server.url,
        "HF_HUB_DISABLE_XET": "1",
        "HF_TOKEN": TEST_TOKEN,
        "HF_HOME": home,
        "HF_HUB_CACHE": f"{home}/hub",
        "HF_HUB_OFFLINE": "0",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    }
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("HUGGINGFACE_CO_STAGING", raising=False)
    monkeypatch.delenv("HF_HUB_ENABLE_HF_TRANSFER", raising=False)
    old_home = constants.HF_HOME
    for name in dir(constants):  # every path under the old HF_HOME (cache, token, xet, ...) moves to home
        value = getattr(constants, name)
        if name.isupper() and isinstance(value, str) and value.startswith(old_home):
            monkeypatch.setattr(constants, name, home + value[len(old_home):])
    monkeypatch.setattr(constants, "HF_HUB_CACHE", f"{home}/hub")
    monkeypatch.setattr(constants, "ENDPOINT", server.url)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", server.url + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    return variables


if __name__ == "__main__":  # python tests/hub_server.py: a fake Hub to try rlhub against by hand
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    arguments = parser.parse_args()
    hub = HubServer()
    hub.api.server_close()
    hub.api = _Server(("127.0.0.1", arguments.port), _ApiHandler, hub)
    hub._threads[0] = threading.Thread(target=hub.api.serve_forever, daemon=True)
    with hub:
        print(f"export HF_ENDPOINT={hub.url} HF_HUB_DISABLE_XET=1 HF_TOKEN=hf_dummy", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
