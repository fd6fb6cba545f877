"""A small, stateful, loopback stand-in for the GitHub REST endpoints dkb's GitHub forge uses.

This is NOT GitHub. No GitHub-compatible server can be installed here, so the forge tests drive the
real PyGithub client against this fake. It models only what `dkbuild.gitops.github` calls, with
the response shapes PyGithub needs and the error statuses/messages GitHub documents for them:

  GET    /repos/{o}/{r}
  GET    /repos/{o}/{r}/git/ref/heads/{b}   (and the older /git/refs/heads/{b})
  POST   /repos/{o}/{r}/git/refs            422 "Reference already exists"
  GET    /repos/{o}/{r}/contents/{path}?ref=b  (b a branch or a commit sha)
  GET    /repos/{o}/{r}/git/trees/{sha}?recursive=1
  GET    /repos/{o}/{r}/commits?sha=&path=  commits whose snapshot of path differs from their parent's
  PUT    /repos/{o}/{r}/contents/{path}     create, or update with the current blob sha
  GET    /repos/{o}/{r}/pulls?state=&head=&base=
  POST   /repos/{o}/{r}/pulls               422 when an open PR for head/base exists
  GET    /repos/{o}/{r}/pulls/{n}
  PATCH  /repos/{o}/{r}/pulls/{n}
  POST   /repos/{o}/{r}/issues/{n}/labels   unknown labels are accepted (GitHub creates them)
  POST   /repos/{o}/{r}/pulls/{n}/requested_reviewers

State: branches (name -> commit sha), files per branch (path -> bytes; blob sha is the real git
blob sha1), a snapshot and first parent per commit, pull requests. Each PUT makes a new fake commit
on its branch. Every request is recorded (method, path, query, body, headers). Requests need
`Authorization: token|Bearer <token>` (401 "Bad credentials" otherwise). `fail_next(n, status)`
makes the next n requests fail, to test retries; `merge(number)` merges a pull request the way a
reviewer would (a merge commit on the base with the branch's changes). Not modelled: pagination,
permissions, rate-limit headers, forks, merge conflicts.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit


def blob_sha(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class FakeGitHub:
    def __init__(self, owner: str = "acme", repo: str = "gitops", token: str = "t0ken",
                 files: dict[str, str] | None = None, base: str = "main") -> None:
        self.owner, self.repo, self.token = owner, repo, token
        self.lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []
        self.branches: dict[str, str] = {}
        self.files: dict[str, dict[str, bytes]] = {}
        self.commits: dict[str, str] = {}           # sha -> message
        self.snapshots: dict[str, dict[str, bytes]] = {}
        self.parents: dict[str, str | None] = {}
        self.forks: dict[str, str] = {}             # branch -> the commit it was created from
        self.pulls: list[dict[str, Any]] = []
        self._failures: list[tuple[int, dict[str, Any]]] = []
        self._counter = 0
        self.files[base] = {p: c.encode() for p, c in (files or {}).items()}
        self.branches[base] = self._commit("initial commit", base)
        self.base = base

        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def _handle(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode(errors="replace")
                split = urlsplit(self.path)
                with fake.lock:
                    record = {"method": self.command, "path": split.path,
                              "query": {k: v[0] for k, v in parse_qs(split.query).items()},
                              "body": body, "headers": dict(self.headers)}
                    fake.requests.append(record)
                    status, payload, extra = fake._dispatch(record)
                data = b"" if payload is None else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for k, v in extra.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    # ---- test controls -------------------------------------------------------------------------

    def fail_next(self, n: int, status: int = 502, message: str = "Bad Gateway",
                  headers: dict[str, str] | None = None) -> None:
        with self.lock:
            self._failures.extend([(status, {"message": message, "headers": headers or {}})] * n)

    def calls(self) -> list[tuple[str, str]]:
        """(method, path) of every recorded request, in order."""
        return [(r["method"], r["path"]) for r in self.requests]

    def clear(self) -> None:
        with self.lock:
            self.requests.clear()

    def read(self, branch: str, path: str) -> str:
        return self.files[branch][path].decode()

    def merge(self, number: int) -> str:
        """Merge pull request `number`: apply what its branch changed since it forked onto the base."""
        with self.lock:
            pr = next(p for p in self.pulls if p["number"] == number)
            head, base = pr["head"], pr["base"]
            fork = self.snapshots[self.forks.get(head, self.branches[base])]
            for path, data in self.files[head].items():
                if fork.get(path) != data:
                    self.files[base][path] = data
            sha = self._commit(f"Merge pull request #{number} from {self.owner}/{head}", base)
            self.branches[base] = sha
            pr.update(state="closed", merged=True, merged_at="2026-01-02T03:04:05Z")
            return sha

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # ---- state helpers -------------------------------------------------------------------------

    def _commit(self, message: str, branch: str) -> str:
        self._counter += 1
        tree = json.dumps({p: blob_sha(c) for p, c in sorted(self.files[branch].items())})
        sha = hashlib.sha1(f"{self._counter}\n{message}\n{tree}".encode()).hexdigest()
        self.commits[sha] = message
        self.snapshots[sha] = dict(self.files[branch])
        self.parents[sha] = self.branches.get(branch)
        return sha

    def _snapshot(self, ref: str) -> dict[str, bytes] | None:
        """Files at a branch or a commit sha."""
        if ref in self.branches:
            return self.files[ref]
        return self.snapshots.get(ref)

    def _api(self, suffix: str = "") -> str:
        return f"{self.url}/repos/{self.owner}/{self.repo}{suffix}"

    def _repo_json(self) -> dict[str, Any]:
        return {"id": 1, "name": self.repo, "full_name": f"{self.owner}/{self.repo}",
                "owner": {"login": self.owner, "id": 1, "type": "Organization"},
                "private": True, "default_branch": "main", "url": self._api(),
                "html_url": f"{self.url}/{self.owner}/{self.repo}"}

    def _ref_json(self, branch: str) -> dict[str, Any]:
        sha = self.branches[branch]
        return {"ref": f"refs/heads/{branch}", "url": self._api(f"/git/refs/heads/{branch}"),
                "object": {"sha": sha, "type": "commit", "url": self._api(f"/git/commits/{sha}")}}

    def _content_json(self, branch: str, path: str) -> dict[str, Any]:
        data = (self._snapshot(branch) or {})[path]
        return {"type": "file", "encoding": "base64", "size": len(data),
                "name": path.rsplit("/", 1)[-1], "path": path, "sha": blob_sha(data),
                "content": base64.encodebytes(data).decode(),
                "url": self._api(f"/contents/{path}?ref={branch}"),
                "html_url": f"{self.url}/{self.owner}/{self.repo}/blob/{branch}/{path}"}

    def _pr_json(self, pr: dict[str, Any]) -> dict[str, Any]:
        n = pr["number"]
        head_sha = self.branches.get(pr["head"], "")
        return {"id": 1000 + n, "number": n, "state": pr["state"], "title": pr["title"],
                "body": pr["body"], "url": self._api(f"/pulls/{n}"),
                "issue_url": self._api(f"/issues/{n}"),
                "html_url": f"{self.url}/{self.owner}/{self.repo}/pull/{n}",
                "head": {"ref": pr["head"], "label": f"{self.owner}:{pr['head']}", "sha": head_sha,
                         "repo": self._repo_json()},
                "base": {"ref": pr["base"], "label": f"{self.owner}:{pr['base']}",
                         "sha": self.branches.get(pr["base"], ""), "repo": self._repo_json()},
                "labels": [{"name": lb, "url": self._api(f"/labels/{lb}")} for lb in pr["labels"]],
                "requested_reviewers": [{"login": u, "id": 7} for u in pr["reviewers"]],
                "draft": False, "merged": pr.get("merged", False), "merged_at": pr.get("merged_at")}

    # ---- routing -------------------------------------------------------------------------------

    def _dispatch(self, req: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        if self._failures:
            status, info = self._failures.pop(0)
            return status, {"message": info["message"]}, info["headers"]
        auth = req["headers"].get("Authorization", "")
        if auth not in (f"token {self.token}", f"Bearer {self.token}"):
            return 401, {"message": "Bad credentials",
                         "documentation_url": "https://docs.github.com/rest"}, {}
        m = re.fullmatch(r"/repos/([^/]+)/([^/]+)(/.*)?", req["path"])
        if not m or (m[1], m[2]) != (self.owner, self.repo):
            return 404, {"message": "Not Found"}, {}
        rest, method, body = m[3] or "", req["method"], req["body"] or {}
        if rest == "" and method == "GET":
            return 200, self._repo_json(), {}
        if (mm := re.fullmatch(r"/git/refs?/heads/(.+)", rest)) and method == "GET":
            branch = unquote(mm[1])
            if branch not in self.branches:
                return 404, {"message": "Not Found"}, {}
            return 200, self._ref_json(branch), {}
        if rest == "/git/refs" and method == "POST":
            return self._create_ref(body)
        if mm := re.fullmatch(r"/contents/(.+)", rest):
            path = unquote(mm[1])
            if method == "GET":
                branch = req["query"].get("ref", "main")
                snapshot = self._snapshot(branch)
                if snapshot is None:
                    return 404, {"message": f"No commit found for the ref {branch}"}, {}
                if path not in snapshot:
                    return 404, {"message": "Not Found"}, {}
                return 200, self._content_json(branch, path), {}
            if method == "PUT":
                return self._put_content(path, body)
        if (mm := re.fullmatch(r"/git/trees/([0-9a-f]{40})", rest)) and method == "GET":
            return self._tree(mm[1], req["query"])
        if rest == "/commits" and method == "GET":
            return self._list_commits(req["query"])
        if rest == "/pulls" and method == "GET":
            return 200, self._list_pulls(req["query"]), {}
        if rest == "/pulls" and method == "POST":
            return self._create_pull(body)
        if mm := re.fullmatch(r"/(pulls|issues)/(\d+)(/.*)?", rest):
            pr = next((p for p in self.pulls if p["number"] == int(mm[2])), None)
            if pr is None:
                return 404, {"message": "Not Found"}, {}
            kind, sub = mm[1], mm[3] or ""
            if kind == "pulls" and sub == "" and method == "GET":
                return 200, self._pr_json(pr), {}
            if kind == "pulls" and sub == "" and method == "PATCH":
                for key in ("title", "body", "state"):
                    if key in body:
                        pr[key] = body[key]
                return 200, self._pr_json(pr), {}
            if kind == "issues" and sub == "/labels" and method == "POST":
                labels = body.get("labels", []) if isinstance(body, dict) else body
                for lb in labels:
                    if lb not in pr["labels"]:
                        pr["labels"].append(lb)
                return 200, [{"name": lb, "url": self._api(f"/labels/{lb}")}
                             for lb in pr["labels"]], {}
            if kind == "pulls" and sub == "/requested_reviewers" and method == "POST":
                for u in body.get("reviewers", []):
                    if u not in pr["reviewers"]:
                        pr["reviewers"].append(u)
                return 201, self._pr_json(pr), {}
        return 404, {"message": f"Not Found (fake does not implement {method} {rest})"}, {}

    def _create_ref(self, body: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        ref, sha = body.get("ref", ""), body.get("sha", "")
        if not ref.startswith("refs/") or ref.count("/") < 2:
            return 422, {"message": "Reference name must start with 'refs/' and have at least two slashes."}, {}
        if sha not in self.commits:
            return 422, {"message": "Object does not exist"}, {}
        branch = ref.removeprefix("refs/heads/")
        if branch in self.branches:
            return 422, {"message": "Reference already exists"}, {}
        source = next(b for b, s in self.branches.items() if s == sha) if sha in self.branches.values() else None
        self.files[branch] = dict(self.files[source]) if source else dict(self.snapshots[sha])
        self.branches[branch] = sha
        self.forks[branch] = sha
        return 201, self._ref_json(branch), {}

    def _tree(self, sha: str, query: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        if sha not in self.snapshots:
            return 404, {"message": "Not Found"}, {}
        if query.get("recursive") not in ("1", "true"):
            return 404, {"message": "Not Found (fake models only recursive trees)"}, {}
        tree = [{"path": path, "mode": "100644", "type": "blob", "sha": blob_sha(data), "size": len(data),
                 "url": self._api(f"/git/blobs/{blob_sha(data)}")}
                for path, data in sorted(self.snapshots[sha].items())]
        return 200, {"sha": sha, "url": self._api(f"/git/trees/{sha}"), "tree": tree, "truncated": False}, {}

    def _list_commits(self, query: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        start = query.get("sha", self.base)
        sha: str | None = self.branches.get(start, start)
        if sha not in self.snapshots:
            return 404, {"message": f"No commit found for SHA: {start}"}, {}
        path, out = query.get("path"), []
        while sha is not None:
            parent = self.parents[sha]
            before = self.snapshots[parent].get(path) if parent and path else None
            if path is None or self.snapshots[sha].get(path) != before:
                out.append({"sha": sha, "url": self._api(f"/commits/{sha}"),
                            "commit": {"message": self.commits[sha], "url": self._api(f"/git/commits/{sha}")}})
            sha = parent
        return 200, out, {}

    def _put_content(self, path: str, body: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        branch = body.get("branch", "main")
        if branch not in self.branches:
            return 404, {"message": f"Branch {branch} not found"}, {}
        if "message" not in body or "content" not in body:
            return 422, {"message": "Invalid request.\n\n\"message\", \"content\" weren't supplied."}, {}
        files = self.files[branch]
        if path in files:
            if "sha" not in body:
                return 422, {"message": "Invalid request.\n\n\"sha\" wasn't supplied."}, {}
            if body["sha"] != blob_sha(files[path]):
                return 409, {"message": f"{path} does not match {body['sha']}"}, {}
        status = 200 if path in files else 201
        files[path] = base64.b64decode(body["content"])
        sha = self._commit(body["message"], branch)
        self.branches[branch] = sha
        return status, {"content": self._content_json(branch, path),
                        "commit": {"sha": sha, "message": body["message"],
                                   "url": self._api(f"/git/commits/{sha}")}}, {}

    def _list_pulls(self, query: dict[str, str]) -> list[dict[str, Any]]:
        state = query.get("state", "open")
        out = []
        for pr in self.pulls:
            if state != "all" and pr["state"] != state:
                continue
            if "head" in query and query["head"] != f"{self.owner}:{pr['head']}":
                continue
            if "base" in query and query["base"] != pr["base"]:
                continue
            out.append(self._pr_json(pr))
        return out

    def _create_pull(self, body: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        head = body.get("head", "").removeprefix(f"{self.owner}:")
        base = body.get("base", "")
        if not body.get("title"):
            return 422, {"message": "Validation Failed",
                         "errors": [{"resource": "PullRequest", "field": "title", "code": "missing_field"}]}, {}
        if head not in self.branches or base not in self.branches:
            return 422, {"message": "Validation Failed",
                         "errors": [{"resource": "PullRequest", "field": "head" if head not in self.branches else "base",
                                     "code": "invalid"}]}, {}
        if any(p["state"] == "open" and p["head"] == head and p["base"] == base for p in self.pulls):
            return 422, {"message": "Validation Failed",
                         "errors": [{"resource": "PullRequest", "code": "custom",
                                     "message": f"A pull request already exists for {self.owner}:{head}."}]}, {}
        pr = {"number": len(self.pulls) + 1, "state": "open", "title": body["title"],
              "body": body.get("body", ""), "head": head, "base": base, "labels": [], "reviewers": []}
        self.pulls.append(pr)
        return 201, self._pr_json(pr), {}
