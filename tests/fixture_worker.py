"""TEST FIXTURE, not part of dkb: a minimal Remote Workers API (v1test2) bot for BuildGrid.

No REAPI worker is packaged for this machine (buildbox-worker is not in Debian or PyPI, and
BuildGrid dropped its Python bot), so the remote-execution tests run BuildGrid for real and this
small bot stands in for a production worker. Each of `--bots` threads holds one bot session of
capacity 1: it takes a lease, fetches the Action, Command and input root from CAS (ByteStream),
materialises the tree read-only (as buildbox-casd stages it), runs the Command, uploads its output
files, stdout and stderr, and completes the lease with the ActionResult.

Every start and end of an execution is appended to `--events` as a JSON line, so tests can count
executions and see how many ran at once.

    python tests/fixture_worker.py --server 127.0.0.1:PORT --instance dkb --events FILE \
        --property dkb-image-backend=buildah [--bots N]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import stat
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

# tests/ holds a module named `buildgrid` (the server fixture): keep it from shadowing the package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import grpc  # noqa: E402
from buildgrid.common.protos.build.bazel.remote.execution.v2 import remote_execution_pb2 as re_pb2  # noqa: E402
from buildgrid.common.protos.google.bytestream import bytestream_pb2, bytestream_pb2_grpc  # noqa: E402
from buildgrid.common.protos.google.devtools.remoteworkers.v1test2 import (  # noqa: E402
    bots_pb2,
    bots_pb2_grpc,
    worker_pb2,
)
from buildgrid.common.protos.google.rpc import code_pb2  # noqa: E402

CHUNK = 1 << 20
POLL_SECONDS = 5.0


class Cas:
    """ByteStream reads and writes, every read checked against its digest."""

    def __init__(self, channel: grpc.Channel, instance: str):
        self.stub = bytestream_pb2_grpc.ByteStreamStub(channel)
        self.instance = instance

    def _prefix(self) -> str:
        return f"{self.instance}/" if self.instance else ""

    def read(self, digest: re_pb2.Digest) -> bytes:
        if digest.size_bytes == 0:
            return b""
        name = f"{self._prefix()}blobs/{digest.hash}/{digest.size_bytes}"
        data = b"".join(r.data for r in self.stub.Read(bytestream_pb2.ReadRequest(resource_name=name)))
        if hashlib.sha256(data).hexdigest() != digest.hash:
            raise RuntimeError(f"CAS blob {digest.hash} does not match its digest")
        return data

    def write(self, data: bytes) -> re_pb2.Digest:
        digest = re_pb2.Digest(hash=hashlib.sha256(data).hexdigest(), size_bytes=len(data))
        if not data:
            return digest
        name = f"{self._prefix()}uploads/{uuid.uuid4()}/blobs/{digest.hash}/{digest.size_bytes}"

        def chunks():
            for offset in range(0, len(data), CHUNK):
                end = min(offset + CHUNK, len(data))
                yield bytestream_pb2.WriteRequest(resource_name=name if offset == 0 else "", write_offset=offset,
                                                  data=data[offset:end], finish_write=end == len(data))
        self.stub.Write(chunks())
        return digest

    def message(self, digest: re_pb2.Digest, message_type):  # type: ignore[no-untyped-def]
        message = message_type()
        message.ParseFromString(self.read(digest))
        return message


def materialise(cas: Cas, digest: re_pb2.Digest, dest: Path) -> None:
    """Stage a Directory tree read-only, as production workers do (files 0444/0555)."""
    directory = cas.message(digest, re_pb2.Directory)
    dest.mkdir(exist_ok=True)
    for node in directory.files:
        path = dest / node.name
        path.write_bytes(cas.read(node.digest))
        os.chmod(path, 0o555 if node.is_executable else 0o444)
    for link in directory.symlinks:
        os.symlink(link.target, dest / link.name)
    for child in directory.directories:
        materialise(cas, child.digest, dest / child.name)


class Bot:
    def __init__(self, args: argparse.Namespace, index: int, log_lock: threading.Lock):
        self.args = args
        self.channel = grpc.insecure_channel(args.server)
        self.bots = bots_pb2_grpc.BotsStub(self.channel)
        self.cas = Cas(self.channel, args.instance)
        self.bot_id = f"dkb-fixture-worker-{os.getpid()}-{index}"
        self.log_lock = log_lock

    def log(self, **event: object) -> None:
        with self.log_lock, open(self.args.events, "a") as handle:
            handle.write(json.dumps({"time": time.time(), "bot": self.bot_id, **event}) + "\n")

    def session(self) -> bots_pb2.BotSession:
        device = worker_pb2.Device(handle=self.bot_id, properties=[
            worker_pb2.Device.Property(key=key, value=value) for key, value in self.args.property])
        worker = worker_pb2.Worker(devices=[device], configs=[worker_pb2.Worker.Config(key="capacity", value="1")])
        return bots_pb2.BotSession(bot_id=self.bot_id, status=bots_pb2.OK, worker=worker)

    def run_forever(self) -> None:
        session: bots_pb2.BotSession | None = None
        while True:
            try:
                if session is None:
                    session = self.bots.CreateBotSession(bots_pb2.CreateBotSessionRequest(
                        parent=self.args.instance, bot_session=self.session()), timeout=POLL_SECONDS)
                    self.log(event="session", name=session.name)
                session = self._step(session)
            except grpc.RpcError as exc:
                # A cut connection: send the same session (and any finished lease) again. A session
                # the server no longer knows: start a new one.
                if exc.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT):
                    session = None
                time.sleep(0.2)

    def _step(self, session: bots_pb2.BotSession) -> bots_pb2.BotSession:
        # BuildGrid hands a lease out ACTIVE; the spec's PENDING -> ACTIVE step is acknowledged too.
        for lease in session.leases:
            if lease.state == bots_pb2.PENDING:
                lease.state = bots_pb2.ACTIVE
                return self._update(session)
        self._run_leases(session)
        return self._update(session)

    def _update(self, session: bots_pb2.BotSession) -> bots_pb2.BotSession:
        return self.bots.UpdateBotSession(bots_pb2.UpdateBotSessionRequest(name=session.name, bot_session=session),
                                          timeout=POLL_SECONDS)

    def _run_leases(self, session: bots_pb2.BotSession) -> None:
        for lease in session.leases:
            if lease.state != bots_pb2.ACTIVE:
                continue
            try:
                result = self.execute(lease)
                lease.result.Pack(result)
                lease.status.code = code_pb2.OK
            except Exception as exc:  # report, never leave the lease hanging
                lease.status.code = code_pb2.INTERNAL
                lease.status.message = f"fixture worker: {exc}"
            lease.state = bots_pb2.COMPLETED

    def execute(self, lease: bots_pb2.Lease) -> re_pb2.ActionResult:
        action = re_pb2.Action()
        if lease.payload.Is(re_pb2.Action.DESCRIPTOR):
            lease.payload.Unpack(action)
        else:
            digest = re_pb2.Digest()
            lease.payload.Unpack(digest)
            action = self.cas.message(digest, re_pb2.Action)
        action_hash = hashlib.sha256(action.SerializeToString()).hexdigest()
        command = self.cas.message(action.command_digest, re_pb2.Command)
        self.log(event="start", action=action_hash, lease=lease.id)
        with tempfile.TemporaryDirectory(prefix="dkb-fixture-worker-", dir=self.args.workdir) as tmp:
            root = Path(tmp) / "root"
            materialise(self.cas, action.input_root_digest, root)
            cwd = root / command.working_directory
            outputs = list(command.output_paths) or [*command.output_files, *command.output_directories]
            for rel in outputs:
                (cwd / rel).parent.mkdir(parents=True, exist_ok=True)
            env = {v.name: v.value for v in command.environment_variables}
            scratch = Path(tmp) / "tmp"
            scratch.mkdir()
            env.setdefault("TMPDIR", str(scratch))
            done = subprocess.run(list(command.arguments), cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                  capture_output=True, check=False)
            result = re_pb2.ActionResult(exit_code=done.returncode, stdout_digest=self.cas.write(done.stdout),
                                         stderr_digest=self.cas.write(done.stderr))
            for rel in outputs:
                path = cwd / rel
                if path.is_file() and not path.is_symlink():
                    mode = path.stat().st_mode
                    result.output_files.add(path=rel, digest=self.cas.write(path.read_bytes()),
                                            is_executable=bool(mode & stat.S_IXUSR))
            _make_removable(root)
        self.log(event="end", action=action_hash, lease=lease.id, exit_code=done.returncode)
        return result


def _make_removable(root: Path) -> None:
    for directory, _dirs, _files in os.walk(root):
        os.chmod(directory, 0o755)


def main() -> None:
    parser = argparse.ArgumentParser(description="TEST FIXTURE: a minimal Remote Workers API bot")
    parser.add_argument("--server", required=True)
    parser.add_argument("--instance", default="")
    parser.add_argument("--events", required=True)
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--bots", type=int, default=1)
    parser.add_argument("--property", action="append", default=[], type=lambda s: tuple(s.split("=", 1)))
    args = parser.parse_args()
    lock = threading.Lock()
    threads = [threading.Thread(target=Bot(args, i, lock).run_forever, daemon=True) for i in range(args.bots)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


if __name__ == "__main__":
    main()
