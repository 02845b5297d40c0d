"""A stand-in for the Hugging Face Hub, used only by tests.

Tests here have no network to the real Hub, so this module serves Hub repositories from local folders over
plain HTTP on the loopback interface. It implements only the endpoints that ``huggingface_hub.snapshot_download``
and ``hf_hub_download`` use, with the response headers and error shapes those clients read:

* ``GET /api/{models|datasets}/{repo_id}/revision/{revision}`` -- repo info (``id``, ``sha``, ``siblings``, ...).
* ``GET /api/{models|datasets}/{repo_id}/tree/{revision}[/{path}]`` -- file listing (``?recursive=``, one page).
* ``HEAD``/``GET /[datasets/]{repo_id}/resolve/{revision}/{path}`` -- file metadata and content, with
  ``X-Repo-Commit``, ``ETag`` (the quoted git blob id), ``Content-Length`` and single ``Range`` requests.

``repo_id`` is ``name`` or ``org/name``; ``revision`` is a branch name or the branch's commit sha. Xet storage is
never advertised, so clients take their plain HTTP download path. Errors carry the Hub's ``X-Error-Code`` /
``X-Error-Message`` headers and a ``{"error": ...}`` body: unknown repo -> 404 ``RepoNotFound``, unknown revision ->
404 ``RevisionNotFound``, unknown file -> 404 ``EntryNotFound``; a repo added with a token answers 401 to requests
without ``Authorization: Bearer <token>`` (``RepoNotFound`` when no token is sent, "Invalid credentials" otherwise).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import Literal
from urllib.parse import parse_qs, unquote, urlsplit

RepoType = Literal["model", "dataset"]

_REPO = r"(?P<repo>[^/]+(?:/[^/]+)?)"
_INFO_RE = re.compile(rf"^/api/(?P<kind>models|datasets)/{_REPO}/revision/(?P<rev>[^/]+)$")
_TREE_RE = re.compile(rf"^/api/(?P<kind>models|datasets)/{_REPO}/tree/(?P<rev>[^/]+)(?:/(?P<path>.*))?$")
_RESOLVE_RE = re.compile(rf"^/(?P<kind>datasets/)?{_REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)$")
_RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")
_TIMESTAMP = "2024-01-01T00:00:00.000Z"


def _blob_oid(data: bytes) -> str:
    """Return the git blob id of ``data``, which the Hub uses as the ETag of a regular (non-LFS) file."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class _HubError(Exception):
    """An error answer in the Hub's shape; ``commit`` becomes ``X-Repo-Commit`` when known."""

    def __init__(self, status: int, code: str | None, message: str, commit: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.commit = status, code, message, commit


@dataclass
class _Revision:
    """One branch of a repo: its fake commit sha and its files (repo path -> file on disk)."""

    sha: str
    files: dict[str, Path]


@dataclass
class _Repo:
    """A repo: the token it is private to (if any) and its branches."""

    token: str | None = None
    branches: dict[str, _Revision] = field(default_factory=dict)

    def find(self, rev: str) -> _Revision | None:
        """Resolve a branch name or a commit sha."""
        return self.branches.get(rev) or next((r for r in self.branches.values() if r.sha == rev), None)


class _Server(ThreadingHTTPServer):
    """The HTTP server, with a back reference to the stand-in its handlers serve from."""

    daemon_threads = True
    hub: HubStandIn


class _Handler(BaseHTTPRequestHandler):
    """Routes one request to the Hub endpoint it names and answers it as the Hub would."""

    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        """Keep test output quiet; the stand-in's own request log is ``HubStandIn.requests``."""

    def do_GET(self) -> None:
        self._handle(send_body=True)

    def do_HEAD(self) -> None:
        self._handle(send_body=False)

    def _handle(self, *, send_body: bool) -> None:
        hub = self.server.hub
        hub._log(self.command, self.path)
        url = urlsplit(self.path)
        try:
            if m := _INFO_RE.match(url.path):
                repo_type: RepoType = "model" if m["kind"] == "models" else "dataset"
                repo_id = unquote(m["repo"])
                rev = self._revision(repo_type, repo_id, unquote(m["rev"]))
                self._send_json(send_body, hub._info(repo_type, repo_id, rev))
            elif m := _TREE_RE.match(url.path):
                repo_type = "model" if m["kind"] == "models" else "dataset"
                rev = self._revision(repo_type, unquote(m["repo"]), unquote(m["rev"]))
                recursive = parse_qs(url.query).get("recursive", ["false"])[0].lower() in ("true", "1")
                self._send_json(send_body, _tree(rev, unquote(m["path"] or "").strip("/"), recursive))
            elif m := _RESOLVE_RE.match(url.path):
                repo_type = "dataset" if m["kind"] else "model"
                repo_id = unquote(m["repo"])
                rev = self._revision(repo_type, repo_id, unquote(m["rev"]))
                file = rev.files.get(unquote(m["path"]))
                if file is None:
                    raise _HubError(404, "EntryNotFound", "Entry not found", rev.sha)
                self._send_file(send_body, file.read_bytes(), rev.sha)
                if send_body:
                    hub._count_download(repo_type, repo_id)
            else:
                raise _HubError(404, None, "Sorry, we can't find the page you are looking for.")
        except _HubError as err:
            self._send_error(send_body, err)

    def _revision(self, repo_type: RepoType, repo_id: str, rev: str) -> _Revision:
        hub = self.server.hub
        with hub._lock:
            repo = hub._repos.get((repo_type, repo_id))
            token, found = (repo.token, repo.find(rev)) if repo is not None else (None, None)
        if repo is None:
            raise _HubError(404, "RepoNotFound", "Repository not found")
        if token is not None:
            auth = self.headers.get("Authorization")
            if auth is None:
                raise _HubError(401, "RepoNotFound", "Invalid username or password.")
            if auth != f"Bearer {token}":
                raise _HubError(401, None, "Invalid credentials in Authorization header")
        if found is None:
            raise _HubError(404, "RevisionNotFound", "Invalid rev id: " + rev)
        return found

    def _respond(self, send_body: bool, status: int, headers: dict[str, str], body: bytes) -> None:
        self.send_response(status)
        for name, value in {**headers, "Content-Length": str(len(body))}.items():
            self.send_header(name, value)
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def _send_json(self, send_body: bool, payload: object) -> None:
        self._respond(send_body, 200, {"Content-Type": "application/json"}, json.dumps(payload).encode())

    def _send_error(self, send_body: bool, err: _HubError) -> None:
        headers = {"Content-Type": "application/json", "X-Error-Message": err.message}
        if err.code is not None:
            headers["X-Error-Code"] = err.code
        if err.commit is not None:
            headers["X-Repo-Commit"] = err.commit
        self._respond(send_body, err.status, headers, json.dumps({"error": err.message}).encode())

    def _send_file(self, send_body: bool, data: bytes, commit: str) -> None:
        status, start, end = 200, 0, len(data)
        if (header := self.headers.get("Range")) is not None:
            m = _RANGE_RE.match(header.strip())
            if m is None or m.groups() == ("", ""):
                raise _HubError(416, None, "Range Not Satisfiable")
            if m[1]:
                start = int(m[1])
                end = min(int(m[2]) + 1, len(data)) if m[2] else len(data)
            else:  # suffix range: the last N bytes
                start = max(len(data) - int(m[2]), 0)
            if start >= len(data) or start >= end:
                raise _HubError(416, None, "Range Not Satisfiable")
            status = 206
        headers = {
            "Content-Type": "application/octet-stream",
            "ETag": f'"{_blob_oid(data)}"',
            "X-Repo-Commit": commit,
            "Accept-Ranges": "bytes",
        }
        if status == 206:
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{len(data)}"
        self._respond(send_body, status, headers, data[start:end])


def _tree(rev: _Revision, folder: str, recursive: bool) -> list[dict[str, object]]:
    """List the files and folders under ``folder`` ('' for the root), as the Hub's tree API does."""
    prefix = f"{folder}/" if folder else ""
    under = sorted(p for p in rev.files if p.startswith(prefix))
    if folder and not under:
        raise _HubError(404, "EntryNotFound", f"{folder} does not exist on {rev.sha}", rev.sha)
    entries: dict[str, dict[str, object]] = {}
    for path in under:
        parts = path[len(prefix) :].split("/")
        depth = len(parts) if recursive else 1
        for i in range(1, min(depth, len(parts) - 1) + 1):  # the folders on the way to the file
            name = prefix + "/".join(parts[:i])
            oid = hashlib.sha1(f"{rev.sha}:{name}".encode()).hexdigest()
            entries.setdefault(name, {"type": "directory", "oid": oid, "size": 0, "path": name})
        if recursive or len(parts) == 1:
            data = rev.files[path].read_bytes()
            entries[path] = {"type": "file", "oid": _blob_oid(data), "size": len(data), "path": path}
    return list(entries.values())


class HubStandIn:
    """A local Hub serving repos added with :meth:`add_repo`; starts at construction, stops on ``close()``/exit."""

    def __init__(self, root: Path, host: str = "127.0.0.1", port: int = 0) -> None:
        self.root = Path(root)
        self._host = host
        self._repos: dict[tuple[RepoType, str], _Repo] = {}
        self._lock = threading.Lock()
        self._requests: list[tuple[str, str]] = []
        self._downloads: Counter[tuple[RepoType, str]] = Counter()
        self._server = _Server((host, port), _Handler)
        self._server.hub = self
        serve = self._server.serve_forever
        self._thread = threading.Thread(target=serve, args=(0.05,), name="hub-standin", daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        """The TCP port the server listens on (chosen by the OS when ``port=0``)."""
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The endpoint to pass as ``endpoint=`` or ``HF_ENDPOINT``, e.g. ``http://127.0.0.1:PORT``.

        When listening on all interfaces (``host="0.0.0.0"``) this is the loopback URL; a container reaches the
        stand-in at ``http://<host address>:{port}`` instead.
        """
        host = "127.0.0.1" if self._host in ("", "0.0.0.0") else self._host
        return f"http://{host}:{self.port}"

    @property
    def requests(self) -> list[tuple[str, str]]:
        """A copy of the ``(method, raw path with query)`` of every request received so far."""
        with self._lock:
            return list(self._requests)

    def downloads(self, repo_id: str, repo_type: RepoType | None = None) -> int:
        """How many file contents (``GET .../resolve/...`` answered 200/206) were served from ``repo_id``."""
        with self._lock:
            return sum(n for (kind, rid), n in self._downloads.items() if rid == repo_id and repo_type in (None, kind))

    def add_repo(
        self,
        repo_id: str,
        files: Mapping[str, bytes],
        repo_type: RepoType = "model",
        revision: str = "main",
        token: str | None = None,
    ) -> str:
        """Add (or replace) branch ``revision`` of a repo with ``files`` and return its fake commit sha.

        Files are written under ``root``. A ``token`` makes the whole repo private to that token; ``None`` keeps
        the repo's current token (public for a new repo).
        """
        if repo_type not in ("model", "dataset") or not 1 <= len(parts := repo_id.split("/")) <= 2 or not all(parts):
            raise ValueError(f"unsupported repo: {repo_type} {repo_id!r}")
        digest = hashlib.sha1(f"{repo_type}/{repo_id}@{revision}".encode())
        for path in sorted(files):
            if not path or path.startswith("/") or ".." in PurePosixPath(path).parts:
                raise ValueError(f"invalid file path in repo: {path!r}")
            digest.update(f"\0{path}\0{_blob_oid(files[path])}".encode())
        sha = digest.hexdigest()
        folder = self.root / f"{repo_type}s" / repo_id / sha
        stored: dict[str, Path] = {}
        for path, data in files.items():
            target = folder.joinpath(*path.split("/"))
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            stored[path] = target
        with self._lock:
            repo = self._repos.setdefault((repo_type, repo_id), _Repo())
            repo.token = token if token is not None else repo.token
            repo.branches[revision] = _Revision(sha=sha, files=stored)
        return sha

    def close(self) -> None:
        """Stop serving and free the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> HubStandIn:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _log(self, method: str, path: str) -> None:
        with self._lock:
            self._requests.append((method, path))

    def _count_download(self, repo_type: RepoType, repo_id: str) -> None:
        with self._lock:
            self._downloads[(repo_type, repo_id)] += 1

    def _info(self, repo_type: RepoType, repo_id: str, rev: _Revision) -> dict[str, object]:
        with self._lock:
            private = self._repos[(repo_type, repo_id)].token is not None
        info: dict[str, object] = {
            "_id": rev.sha[:24],
            "id": repo_id,
            "author": repo_id.split("/", maxsplit=1)[0] if "/" in repo_id else None,
            "sha": rev.sha,
            "lastModified": _TIMESTAMP,
            "createdAt": _TIMESTAMP,
            "private": private,
            "gated": False,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "siblings": [{"rfilename": path} for path in sorted(rev.files)],
        }
        if repo_type == "model":
            info["modelId"] = repo_id
        return info
