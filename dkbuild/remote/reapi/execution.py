"""Remote execution of one REAPI Action: look it up in the action cache, else upload what the CAS
lacks and stream Execute until the operation is done.

At most `jobs` Execute streams are open at once (BuildGrid, like other servers, caps them and
answers RESOURCE_EXHAUSTED beyond that). A stream the server or the network cuts is resumed with
WaitExecution on the operation's name, so the action is not run twice; RESOURCE_EXHAUSTED and
UNAVAILABLE are retried with capped exponential backoff. A server that stays unreachable marks the
executor down for the rest of the run, so later actions fail at once instead of each waiting.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dkbuild.remote.reapi.client import ReapiClient
from dkbuild.remote.reapi.digest import Digest
from dkbuild.remote.reapi.errors import ReapiError, ReapiUnavailable, from_rpc_error
from dkbuild.remote.reapi.gate import Gate
from dkbuild.remote.reapi.merkle import InputTree
from dkbuild.remote.reapi.stubs import stubs

# Worth another try on the same operation (or the same Execute): the server is cut off or busy.
RETRYABLE = {"UNAVAILABLE", "RESOURCE_EXHAUSTED", "CANCELLED", "ABORTED"}
MAX_RETRIES = 8                 # consecutive failures without any answer from the server
# How long one action may take from Execute to its result, queueing included
# (DKB_REMOTE_EXEC_TIMEOUT seconds): a queue no worker serves must not hang the build.
DEFAULT_TIMEOUT = 3600.0
BACKOFF_START, BACKOFF_CAP = 0.2, 5.0


@dataclass(frozen=True)
class Executed:
    action: Digest
    result: Any               # the ActionResult proto
    cached: bool              # answered by the server's action cache: nothing ran
    reconnects: int = 0       # Execute streams resumed with WaitExecution
    retries: dict[str, int] = field(default_factory=dict)   # status code -> calls retried after it

    def to_json(self) -> dict[str, Any]:
        return {"action": str(self.action), "source": "action-cache" if self.cached else "executed",
                "reconnects": self.reconnects, "retries": self.retries}


def action_blobs(arguments: Sequence[str], env: Mapping[str, str], platform: Mapping[str, str],
                 tree: InputTree, output_paths: Sequence[str]) -> tuple[Digest, dict[Digest, bytes]]:
    """The Action digest and every blob it needs in the CAS (Command, Action, input tree). Lists are
    sorted as REAPI requires, so the same inputs always give the same Action digest."""
    re = stubs().re
    properties = [re.Platform.Property(name=k, value=platform[k]) for k in sorted(platform)]
    command = re.Command(
        arguments=list(arguments),
        environment_variables=[re.Command.EnvironmentVariable(name=k, value=env[k]) for k in sorted(env)],
        output_paths=sorted(output_paths), platform=re.Platform(properties=properties))
    blobs = dict(tree.blobs)
    command_data = command.SerializeToString(deterministic=True)
    command_digest = Digest.of(command_data)
    blobs[command_digest] = command_data
    action = re.Action(command_digest=command_digest.proto(), input_root_digest=tree.root.proto(),
                       platform=re.Platform(properties=properties))
    action_data = action.SerializeToString(deterministic=True)
    action_digest = Digest.of(action_data)
    blobs[action_digest] = action_data
    return action_digest, blobs


@dataclass
class RemoteExecutor:
    client: ReapiClient
    jobs: int
    timeout: float = DEFAULT_TIMEOUT
    streams: Gate = field(init=False)
    down: str | None = None          # why the server is considered unreachable for this run
    retries: int = 0                 # over all actions
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.streams = Gate(max(self.jobs, 1))
        self._stub = stubs().re_grpc.ExecutionStub(self.client.channel)

    @classmethod
    def open(cls, url: str, jobs: int, env: dict[str, str] | None = None) -> "RemoteExecutor":
        """EndpointError for a bad URL or DKB_REMOTE_EXEC_TIMEOUT; no network call yet."""
        from dkbuild.remote.reapi.endpoint import positive_setting

        env = dict(os.environ) if env is None else env
        timeout = positive_setting(env, "DKB_REMOTE_EXEC_TIMEOUT", DEFAULT_TIMEOUT, float)
        return cls(ReapiClient.open(url, env), jobs, timeout)

    @property
    def url(self) -> str:
        return self.client.endpoint.url

    def run(self, action: Digest, blobs: Mapping[Digest, bytes]) -> Executed:
        """The action's result: from the action cache when its outputs are all still in the CAS,
        else executed (ReapiUnavailable when the server cannot be reached, ReapiError otherwise)."""
        if self.down is not None:
            raise ReapiUnavailable(self.down)
        try:
            cached = self.client.get_action_result(action)
            if cached is not None and cached.exit_code == 0 and not self.client.find_missing(output_digests(cached)):
                return Executed(action, cached, True)
            self.client.upload_missing(blobs)
            return self._execute(action, skip_cache_lookup=cached is not None)
        except ReapiUnavailable as exc:
            with self._lock:
                self.down = self.down or str(exc)
            raise

    def _execute(self, action: Digest, skip_cache_lookup: bool) -> Executed:
        s = stubs()
        request = s.re.ExecuteRequest(instance_name=self.client.instance, action_digest=action.proto(),
                                      skip_cache_lookup=skip_cache_lookup)
        name: str | None = None
        reconnects = failures = 0
        retries: dict[str, int] = {}
        deadline = time.monotonic() + self.timeout
        metadata = self.client.endpoint.metadata()
        with self.streams.slot():
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ReapiError(f"Execute: no result within {self.timeout:g} s (DKB_REMOTE_EXEC_TIMEOUT); "
                                     "is a worker that matches the action's platform connected?")
                try:
                    stream = self._stub.Execute(request, timeout=left, metadata=metadata) if name is None \
                        else self._stub.WaitExecution(s.re.WaitExecutionRequest(name=name), timeout=left,
                                                      metadata=metadata)
                    for operation in stream:
                        name, failures = operation.name, 0
                        if operation.done:
                            response = _response(operation)
                            return Executed(action, response.result, response.cached_result, reconnects, retries)
                except s.grpc.RpcError as exc:
                    code = exc.code().name if exc.code() is not None else "UNKNOWN"
                    if code == "DEADLINE_EXCEEDED" and time.monotonic() >= deadline:
                        continue                 # our own deadline: reported above
                    if code == "NOT_FOUND" and name is not None:
                        name = None              # the server forgot the operation: execute again
                    elif code not in RETRYABLE:
                        raise from_rpc_error(exc, "Execute") from None
                    failures += 1
                    if failures > MAX_RETRIES:
                        raise from_rpc_error(exc, f"Execute (after {MAX_RETRIES} retries)") from None
                    retries[code] = retries.get(code, 0) + 1
                    with self._lock:
                        self.retries += 1
                    time.sleep(_backoff(failures))
                if name is not None:
                    reconnects += 1              # the stream ended before the operation did


def output_digests(result: Any) -> list[Digest]:
    return [Digest.from_proto(f.digest) for f in result.output_files]


def _response(operation: Any) -> Any:
    # Failures of the action itself (a timeout, a lost worker) are not an unreachable server.
    s = stubs()
    if operation.HasField("error"):
        code = s.code.Code.Name(operation.error.code)
        raise ReapiError(f"Execute: {code}: {operation.error.message or 'no details'}")
    response = s.re.ExecuteResponse()
    if not operation.response.Unpack(response):
        raise ReapiError(f"Execute: operation {operation.name} answered {operation.response.type_url}")
    if response.status.code != 0:
        code = s.code.Code.Name(response.status.code)
        raise ReapiError(f"Execute: {code}: {response.status.message or 'no details'}")
    return response


def _backoff(failures: int) -> float:
    return min(BACKOFF_START * 2 ** (failures - 1), BACKOFF_CAP) * random.uniform(0.5, 1.0)
