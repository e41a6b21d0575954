"""A minimal Hub endpoint on 127.0.0.1 that accepts uploads (no installable server does).

It answers what huggingface_hub's create_repo, create_branch, upload_folder (regular and
LFS files) and snapshot_download call (see shared/HUB-TESTING.md), keeps repos in memory
(commits as {path: bytes}), checks bearer tokens when asked to, and can inject faults:
`faults["truncate"] = True` cuts file downloads short, `faults["status"] = 503` answers every
request with that status, `faults["delay"] = 2.0` waits that many seconds before answering any
request (outside the server's lock, so delayed requests overlap), and
`faults["meet"] = ("model.safetensors", threading.Barrier(2, timeout=T))` holds each HEAD of that
file until as many clients have asked for it (proof that their downloads overlap).
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

#: Files stored through the LFS protocol; the rest are sent inline in the commit.
LFS_SUFFIXES = (".safetensors", ".png")


@dataclass
class Repo:
    private: bool = False
    branches: dict[str, str] = field(default_factory=dict)
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)
    lfs: set[str] = field(default_factory=set)

    def resolve(self, revision: str) -> str | None:
        if revision in self.branches:
            return self.branches[revision]
        return revision if revision in self.commits else None


class HubServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int = 0, write_token: str | None = None, read_only_token: str | None = None) -> None:
        super().__init__(("127.0.0.1", port), Handler)
        self.repos: dict[str, Repo] = {}
        self.lfs_objects: dict[str, bytes] = {}
        self.write_token = write_token
        self.read_only_token = read_only_token
        self.faults: dict[str, object] = {}
        self.requests: list[str] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def start(self) -> HubServer:
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def handle_error(self, request, client_address) -> None:
        """A client that gave up (timed out, exited) is expected here; anything else is printed."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

    def create_repo(self, repo_id: str, private: bool = False) -> Repo:
        repo = Repo(private=private)
        root = hashlib.sha1(repo_id.encode()).hexdigest()
        repo.commits[root] = {".gitattributes": b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"}
        repo.branches["main"] = root
        self.repos[repo_id] = repo
        return repo

    def add_commit(self, repo_id: str, branch: str, files: dict[str, bytes], deleted: tuple[str, ...] = ()) -> str:
        """Commit `files` on top of `branch` (created from main if missing); returns the sha."""
        repo = self.repos[repo_id]
        parent = repo.branches.get(branch) or repo.branches["main"]
        tree = {k: v for k, v in repo.commits[parent].items() if k not in deleted} | files
        sha = hashlib.sha1(f"{parent}{sorted((k, hashlib.sha256(v).hexdigest()) for k, v in tree.items())}".encode())
        oid = sha.hexdigest()
        repo.commits[oid] = tree
        repo.branches[branch] = oid
        return oid


class Handler(BaseHTTPRequestHandler):
    server: HubServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    # ------------------------------------------------------------ plumbing
    def _send(self, status: int, body: bytes | dict | list = b"", headers: dict[str, str] | None = None) -> None:
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            headers = {"Content-Type": "application/json", **(headers or {})}
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, status: int, code: str, message: str) -> None:
        self._send(status, {"error": message}, {"X-Error-Code": code, "X-Error-Message": message})

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _token_ok(self, write: bool, repo: Repo | None = None) -> bool:
        """Answer 401/403 and return False when the request lacks the rights it needs."""
        token = (self.headers.get("Authorization") or "").removeprefix("Bearer ").strip()
        needed = write or (repo is not None and repo.private)
        if not needed or self.server.write_token is None:
            return True
        if token == self.server.write_token:
            return True
        if token and token == self.server.read_only_token:
            if write:
                self._error(403, "Forbidden", "this token is read-only")
                return False
            return True
        self._error(401, "RepoNotFound" if not write else "Unauthorized", "Invalid credentials in Authorization header")
        return False

    def _route(self) -> None:
        self.server.requests.append(f"{self.command} {self.path}")
        delay = self.server.faults.get("delay")
        if delay:
            deadline = time.monotonic() + float(delay)
            while time.monotonic() < deadline:
                if not self.server.faults.get("delay"):  # the test is over: hang up without an answer
                    self.close_connection = True
                    return
                time.sleep(0.05)
        meet = self.server.faults.get("meet")
        if meet and self.command == "HEAD" and "/resolve/" in self.path and self.path.endswith(f"/{meet[0]}"):
            meet[1].wait()
        status = self.server.faults.get("status")
        if status:
            self._body()
            return self._error(int(status), "Fault", f"injected {status}")
        parts = urlsplit(self.path).path.strip("/").split("/")
        with self.server.lock:
            if parts[:2] == ["api", "repos"] and parts[2:] == ["create"]:
                return self._create_repo()
            if parts[:2] == ["api", "validate-yaml"]:
                self._body()
                return self._send(200, {"errors": [], "warnings": []})
            if parts[:2] == ["api", "models"] and len(parts) >= 4:
                return self._api(f"{parts[2]}/{parts[3]}", parts[4:])
            if parts[0] == "lfs-upload" and len(parts) == 2:
                return self._lfs_upload(parts[1])
            if len(parts) >= 5 and parts[2] == "info" and parts[1].endswith(".git"):
                return self._lfs_batch(f"{parts[0]}/{parts[1].removesuffix('.git')}")
            if len(parts) >= 5 and parts[2] == "resolve":
                return self._resolve(f"{parts[0]}/{parts[1]}", unquote(parts[3]), unquote("/".join(parts[4:])))
        self._error(404, "NotFound", f"no route {self.command} {self.path}")

    do_GET = do_POST = do_PUT = do_HEAD = _route

    # ------------------------------------------------------------ writes
    def _create_repo(self) -> None:
        data = json.loads(self._body() or b"{}")
        if not self._token_ok(write=True):
            return
        repo_id = f"{data.get('organization')}/{data['name']}"
        if repo_id in self.server.repos:
            return self._send(409, {"error": "already exists", "url": f"{self.server.url}/{repo_id}"})
        self.server.create_repo(repo_id, private=bool(data.get("private")) or data.get("visibility") == "private")
        self._send(200, {"url": f"{self.server.url}/{repo_id}", "name": repo_id})

    def _api(self, repo_id: str, rest: list[str]) -> None:
        body = self._body() if self.command in ("POST", "PUT") else b""
        repo = self.server.repos.get(repo_id)
        if repo is None:
            return self._error(404, "RepoNotFound", f"Repository {repo_id} not found")
        write = self.command == "POST"
        if not self._token_ok(write=write, repo=repo):
            return
        action = rest[0] if rest else ""
        revision = unquote(rest[1]) if len(rest) > 1 else "main"
        if action == "branch":
            if revision in repo.branches:
                return self._error(409, "Conflict", f"branch {revision} exists")
            start = json.loads(body or b"{}").get("startingPoint") or "main"
            repo.branches[revision] = repo.resolve(start)
            return self._send(200, {})
        if action == "preupload":
            files = json.loads(body)["files"]
            modes = [
                {"path": f["path"], "uploadMode": "lfs" if f["path"].endswith(LFS_SUFFIXES) else "regular"}
                for f in files
            ]
            return self._send(200, {"files": [{**m, "shouldIgnore": False} for m in modes]})
        if action == "commit":
            return self._commit(repo_id, revision, body)
        commit = repo.resolve(revision)
        if commit is None:
            return self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
        tree = repo.commits[commit]
        if action in ("", "revision"):
            siblings = [{"rfilename": path} for path in sorted(tree)]
            return self._send(200, {"id": repo_id, "sha": commit, "private": repo.private, "siblings": siblings})
        if action == "tree":
            return self._send(200, [self._entry(repo, path, data) for path, data in sorted(tree.items())])
        self._error(404, "NotFound", f"no API {action}")

    def _entry(self, repo: Repo, path: str, data: bytes) -> dict:
        entry = {"type": "file", "path": path, "size": len(data), "oid": hashlib.sha1(data).hexdigest()}
        if path in repo.lfs:
            entry["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 130}
        return entry

    def _commit(self, repo_id: str, branch: str, body: bytes) -> None:
        files, lfs, deleted = {}, set(), []
        for line in body.decode().splitlines():
            item = json.loads(line)
            value = item["value"]
            if item["key"] == "file":
                files[value["path"]] = base64.b64decode(value["content"])
            elif item["key"] == "lfsFile":
                if value["oid"] not in self.server.lfs_objects:
                    return self._error(422, "BadRequest", f"LFS object {value['oid']} was never uploaded")
                files[value["path"]] = self.server.lfs_objects[value["oid"]]
                lfs.add(value["path"])
            elif item["key"] == "deletedFile":
                deleted.append(value["path"])
        repo = self.server.repos[repo_id]
        if branch not in repo.branches:
            return self._error(404, "RevisionNotFound", f"Invalid rev id: {branch}")
        repo.lfs |= lfs
        oid = self.server.add_commit(repo_id, branch, files, tuple(deleted))
        self._send(200, {"commitUrl": f"{self.server.url}/{repo_id}/commit/{oid}", "commitOid": oid})

    def _lfs_batch(self, repo_id: str) -> None:
        request = json.loads(self._body())
        if repo_id not in self.server.repos:
            return self._error(404, "RepoNotFound", f"Repository {repo_id} not found")
        if not self._token_ok(write=True):
            return
        objects = []
        for obj in request["objects"]:
            answer = {"oid": obj["oid"], "size": obj["size"]}
            if obj["oid"] not in self.server.lfs_objects:
                answer["actions"] = {"upload": {"href": f"{self.server.url}/lfs-upload/{obj['oid']}"}}
            objects.append(answer)
        self._send(200, {"transfer": "basic", "objects": objects}, {"Content-Type": "application/vnd.git-lfs+json"})

    def _lfs_upload(self, oid: str) -> None:
        data = self._body()
        if hashlib.sha256(data).hexdigest() != oid:
            return self._error(400, "BadRequest", "sha256 does not match the object id")
        self.server.lfs_objects[oid] = data
        self._send(200)

    # ------------------------------------------------------------ reads
    def _resolve(self, repo_id: str, revision: str, path: str) -> None:
        repo = self.server.repos.get(repo_id)
        if repo is None:
            return self._error(404, "RepoNotFound", f"Repository {repo_id} not found")
        if not self._token_ok(write=False, repo=repo):
            return
        commit = repo.resolve(revision)
        if commit is None:
            return self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
        data = repo.commits[commit].get(path)
        if data is None:
            return self._error(404, "EntryNotFound", f"{path} does not exist on {revision}")
        headers = {"X-Repo-Commit": commit, "ETag": f'"{hashlib.sha1(data).hexdigest()}"'}
        if path in repo.lfs:
            headers |= {"X-Linked-Etag": f'"{hashlib.sha256(data).hexdigest()}"', "X-Linked-Size": str(len(data))}
        if self.command == "GET" and self.server.faults.get("truncate"):
            self.send_response(200)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.close_connection = True
            return
        self._send(200, data, headers)
