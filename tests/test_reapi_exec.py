"""Remote execution of image builds (issue 16, item 2) against a real BuildGrid with its SQL
scheduler on a real PostgreSQL; the worker is tests/fixture_worker.py, a TEST FIXTURE (no REAPI
worker is packaged for this machine). The Merkle-tree tests need neither."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from dkbuild.oci.backends import BadImageRequest
from dkbuild.remote.reapi.digest import Digest
from dkbuild.remote.reapi.errors import ReapiError
from dkbuild.remote.reapi.execution import RemoteExecutor, action_blobs
from dkbuild.remote.reapi.merkle import context_tree
from dkbuild.remote.reapi.stubs import stubs
from tests.buildgrid_exec import FULL_INSTANCE, WORKER_PROPERTIES, FixtureWorker, buildgrid_exec  # noqa: F401
from tests.registry import free_port

IMAGE_FILES = {
    "pipelines/ingest/Dockerfile": "FROM scratch\nCOPY src/ /app/\n",
    "pipelines/ingest/src/run.sh": "#!/bin/sh\necho ingest\n",
}


def directory(tree: Any, digest: Digest) -> Any:
    message = stubs().re.Directory()
    message.ParseFromString(tree.blobs[digest])
    return message


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


# --- the input root: a Merkle tree of exactly the build context ----------------------------------


def test_input_root_follows_reapi_rules(tmp_path: Path) -> None:
    pkg = write(tmp_path / "pkg", {"Dockerfile": "FROM scratch\n", "src/b.py": "b", "src/a.sh": "a", "z.txt": "z"})
    os.chmod(pkg / "src/a.sh", 0o755)
    os.symlink("../z.txt", pkg / "src/link")
    tree = context_tree("//pkg", pkg, ["z.txt", "src/link", "src/b.py", "Dockerfile", "src/a.sh"])
    top = directory(tree, tree.root)
    assert [f.name for f in top.files] == ["Dockerfile", "z.txt"]          # sorted by name
    assert [d.name for d in top.directories] == ["src"] and not top.symlinks
    src = directory(tree, Digest.from_proto(top.directories[0].digest))
    assert [(f.name, f.is_executable) for f in src.files] == [("a.sh", True), ("b.py", False)]
    assert [(s.name, s.target) for s in src.symlinks] == [("link", "../z.txt")]    # kept, not followed
    assert tree.blobs[Digest.from_proto(src.files[0].digest)] == b"a"
    # Every blob is named by its own digest: the CAS would accept each of them.
    assert all(Digest.of(data) == digest for digest, data in tree.blobs.items())


def test_input_root_is_exactly_the_listed_files_and_stable(tmp_path: Path) -> None:
    files = {"Dockerfile": "FROM scratch\n", "src/main.py": "print(1)\n"}
    first = write(tmp_path / "a" / "pkg", {**files, "secret.env": "TOKEN=1", "src/ignored.pyc": "x"})
    root = context_tree("//pkg", first, files).root
    # Another checkout: other place, other mtimes and umask, other unlisted files.
    second = write(tmp_path / "b" / "pkg", {**files, "notes.txt": "not an input"})
    os.utime(second / "src/main.py", (1_000_000_000, 1_000_000_000))
    os.chmod(second / "src/main.py", 0o600)
    assert context_tree("//pkg", second, files).root == root
    (first / "secret.env").write_text("TOKEN=2")           # outside the context: no effect
    assert context_tree("//pkg", first, files).root == root
    (first / "src/main.py").write_text("print(2)\n")        # inside it: a new tree
    assert context_tree("//pkg", first, files).root != root
    os.chmod(second / "src/main.py", 0o700)                 # so does the executable bit
    assert context_tree("//pkg", second, files).root != root


def test_input_root_refuses_paths_outside_the_package(tmp_path: Path) -> None:
    pkg = write(tmp_path / "pkg", {"Dockerfile": "FROM scratch\n"})
    for bad in ("../etc/passwd", "/etc/passwd", "a/./b"):
        with pytest.raises(BadImageRequest, match="not a plain path"):
            context_tree("//pkg", pkg, ["Dockerfile", bad])
    with pytest.raises(BadImageRequest, match="disappeared"):
        context_tree("//pkg", pkg, ["Dockerfile", "gone.txt"])


def test_action_digest_depends_on_command_platform_and_inputs(tmp_path: Path) -> None:
    pkg = write(tmp_path / "pkg", {"Dockerfile": "FROM scratch\n"})
    tree = context_tree("//pkg", pkg, ["Dockerfile"])
    base = action_blobs(["/bin/true"], {"B": "2", "A": "1"}, WORKER_PROPERTIES, tree, ["out"])[0]
    assert action_blobs(["/bin/true"], {"A": "1", "B": "2"}, dict(reversed(WORKER_PROPERTIES.items())), tree,
                        ["out"])[0] == base        # order-insensitive: REAPI sorts both lists
    assert action_blobs(["/bin/false"], {"A": "1", "B": "2"}, WORKER_PROPERTIES, tree, ["out"])[0] != base
    assert action_blobs(["/bin/true"], {"A": "1", "B": "2"}, {**WORKER_PROPERTIES, "dkb-image-backend": "x"},
                        tree, ["out"])[0] != base


# --- against BuildGrid -------------------------------------------------------------------------


def shell_action(tmp_path: Path, name: str, script: str) -> tuple[Digest, dict[Digest, bytes]]:
    pkg = write(tmp_path / name, {"input.txt": name})
    tree = context_tree(f"//{name}", pkg, ["input.txt"])
    return action_blobs(["/bin/sh", "-c", script], {"PATH": "/usr/bin:/bin"}, WORKER_PROPERTIES, tree, ["out.txt"])


def open_executor(url: str, jobs: int, timeout: float = 120) -> RemoteExecutor:
    """An executor whose actions fail after `timeout` s rather than hang a broken test."""
    return RemoteExecutor.open(url, jobs, env={**os.environ, "DKB_REMOTE_EXEC_TIMEOUT": str(timeout)})


def output_text(executor: RemoteExecutor, result: Any) -> str:
    (output,) = result.output_files
    digest = Digest.from_proto(output.digest)
    return executor.client.read_blobs([digest])[digest].decode()


def test_execute_is_bounded_by_jobs_and_resumes_with_wait_execution(buildgrid_exec, tmp_path: Path) -> None:  # noqa: F811
    from concurrent.futures import ThreadPoolExecutor

    executor = open_executor(buildgrid_exec.url, jobs=2)
    before = buildgrid_exec.worker.executions()
    actions = [shell_action(tmp_path, f"job{i}", "sleep 1; cat input.txt input.txt > out.txt") for i in range(5)]
    with ThreadPoolExecutor(max_workers=5) as pool:      # five threads ask at once; two streams open
        done = list(pool.map(lambda a: executor.run(*a), actions))
    assert [output_text(executor, d.result) for d in done] == [f"job{i}job{i}" for i in range(5)]
    assert not any(d.cached for d in done)
    assert executor.streams.peak == 2
    # The worker has four bots free, yet never ran more than two at once: the bound is dkb's.
    assert buildgrid_exec.worker.executions() - before == 5
    assert buildgrid_exec.worker.peak_concurrency() <= 2

    # The server closes connections after 4 s (as deployments do): a longer action's stream is cut
    # and resumed with WaitExecution, and the action runs once.
    slow = shell_action(tmp_path, "slow", "sleep 7; cat input.txt > out.txt")
    result = executor.run(*slow)
    assert result.reconnects >= 1 and output_text(executor, result.result) == "slow"
    assert buildgrid_exec.worker.executions() - before == 6

    # Asked again, the action cache answers: nothing runs.
    again = executor.run(*slow)
    assert again.cached and output_text(executor, again.result) == "slow"
    assert buildgrid_exec.worker.executions() - before == 6


def test_a_full_queue_is_retried_with_backoff(buildgrid_exec, tmp_path: Path) -> None:  # noqa: F811
    """The server refuses a second job while its queue is full (RESOURCE_EXHAUSTED); the client
    backs off and retries until a worker drains the queue, and both actions complete."""
    import time
    from concurrent.futures import ThreadPoolExecutor

    executor = open_executor(buildgrid_exec.server.url(FULL_INSTANCE), jobs=4)
    first, second = (shell_action(tmp_path, name, "cat input.txt > out.txt") for name in ("full1", "full2"))
    with ThreadPoolExecutor(max_workers=2) as pool:
        queued = pool.submit(executor.run, *first)
        deadline = time.monotonic() + 30
        while executor.streams.peak < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)                                   # the first job is in the queue now
        refused = pool.submit(executor.run, *second)
        while executor.retries < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert executor.retries >= 1, "the second Execute was never refused"
        worker = FixtureWorker(tmp_path / "worker", buildgrid_exec.server.address, bots=1,
                               instance=FULL_INSTANCE).start()
        try:
            results = [queued.result(timeout=60), refused.result(timeout=60)]
        finally:
            worker.stop()
    assert [output_text(executor, r.result) for r in results] == ["full1", "full2"]
    assert results[1].retries.get("RESOURCE_EXHAUSTED", 0) >= 1
    assert "RESOURCE_EXHAUSTED" not in results[0].retries

    # With no worker left, an action waits in the queue until DKB_REMOTE_EXEC_TIMEOUT, then fails.
    stranded = open_executor(buildgrid_exec.server.url(FULL_INSTANCE), jobs=1, timeout=2)
    with pytest.raises(ReapiError, match="no result within 2 s"):
        stranded.run(*shell_action(tmp_path, "stranded", "cat input.txt > out.txt"))
    assert stranded.down is None               # the server is up: later actions still go to it


def build_json(dkb, root: Path, *args: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    res = dkb("build", "--image-backend", "buildah", "--output", "json", "//pipelines/ingest", *args, cwd=root,
              env={"DKB_REMOTE_EXEC_TIMEOUT": "120"})
    assert res.code == 0, res
    (target,) = res.json()["targets"]
    return target


def image_blobs(root: Path, manifest_digest: str) -> dict[str, bytes]:
    blobs = root / ".dkb/oci/blobs/sha256"
    raw = (blobs / manifest_digest[7:]).read_bytes()
    manifest = json.loads(raw)
    parts = [manifest["config"]["digest"], *(layer["digest"] for layer in manifest["layers"])]
    return {manifest_digest: raw, **{d: (blobs / d[7:]).read_bytes() for d in parts}}


def test_remote_buildah_image_build_through_execute(buildgrid_exec, workspace, dkb, tmp_path: Path) -> None:  # noqa: F811
    if os.geteuid() != 0 or shutil.which("buildah") is None:
        pytest.fail("the remote image build runs buildah as root on the fixture worker: run the tests as root "
                    "with buildah installed (`make system-deps`)")
    root = workspace(IMAGE_FILES)
    os.chmod(root / "pipelines/ingest/src/run.sh", 0o755)
    remote = ("--remote-executor", buildgrid_exec.url)
    before = buildgrid_exec.worker.executions()

    first = build_json(dkb, root, *remote)
    assert first["status"] == "built" and first["image"]["status"] == "built", first
    assert first["image"]["backend"] == "buildah" and first["image"]["remote"]["source"] == "executed"
    assert buildgrid_exec.worker.executions() - before == 1
    image = first["artifacts"]["image"]
    assert (root / ".dkb/oci/blobs/sha256" / image[7:]).exists()
    assert image in {m["digest"] for m in json.loads((root / ".dkb/oci/index.json").read_text())["manifests"]}

    # A clean workspace: the server's action cache answers, nothing runs, the bytes are the same.
    blobs = image_blobs(root, image)
    shutil.rmtree(root / ".dkb")
    second = build_json(dkb, root, *remote)
    assert second["image"]["remote"]["source"] == "action-cache"
    assert second["image"]["remote"]["action"] == first["image"]["remote"]["action"]
    assert buildgrid_exec.worker.executions() - before == 1
    assert second["action_key"] == first["action_key"] and second["artifacts"] == first["artifacts"]
    assert image_blobs(root, image) == blobs

    # Running remotely changes neither the key nor the image: a local buildah build agrees.
    shutil.rmtree(root / ".dkb")
    local = build_json(dkb, root)
    assert "remote" not in local["image"]
    assert local["action_key"] == first["action_key"] and local["artifacts"] == first["artifacts"]


def test_a_down_executor_is_reported_once_and_the_package_still_builds(workspace, dkb) -> None:
    root = workspace({**IMAGE_FILES, "pipelines/publish/Dockerfile": "FROM scratch\n"})
    url = f"grpc://127.0.0.1:{free_port()}/dkb"
    res = dkb("build", "--remote-executor", url, "--output", "json", cwd=root)
    assert res.code == 0, res                 # under image_failure=auto, as a missing builder is
    targets = {t["label"]: t for t in res.json()["targets"]}
    for label in ("//pipelines/ingest", "//pipelines/publish"):
        image = targets[label]["image"]
        assert image["failure"] == "no-remote-executor" and url in image["reason"], image
        assert "--remote-executor" in image["fix"] and "package" in targets[label]["artifacts"]
    failed = dkb("build", "--remote-executor", url, "--image-failure", "fail", cwd=root)
    assert failed.code == 1 and url in failed.out
    bad = dkb("build", "--remote-executor", "http://nowhere", cwd=root)
    assert bad.code == 2 and "--remote-executor" in bad.err and "grpc://" in bad.err
    bad = dkb("build", "--remote-executor", url, cwd=root, env={"DKB_REMOTE_EXEC_TIMEOUT": "soon"})
    assert bad.code == 2 and "DKB_REMOTE_EXEC_TIMEOUT='soon'" in bad.err and "Traceback" not in bad.err


def test_a_failed_remote_build_fails_with_the_builders_output(buildgrid_exec, workspace, dkb) -> None:  # noqa: F811
    root = workspace({"pipelines/ingest/Dockerfile": "FROM scratch\nCOPY missing/ /app/\n"})
    res = dkb("build", "--remote-executor", buildgrid_exec.url, "--output", "json", "//pipelines/ingest", cwd=root,
              env={"DKB_REMOTE_EXEC_TIMEOUT": "120"})
    assert res.code == 1, res
    (target,) = res.json()["targets"]
    assert target["status"] == "failed" and target["image"]["failure"] == "build-failed"
    assert "buildah build of Dockerfile failed" in target["image"]["reason"]
    assert "missing" in target["image"]["reason"]            # buildah's own stderr, fetched from the CAS
    assert "package" in target["artifacts"]
