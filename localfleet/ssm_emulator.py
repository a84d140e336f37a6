"""An SSM Run Command emulator that real boto3 clients talk to over loopback HTTP.

    with SsmEmulator() as ssm:
        ssm.register_document("EcrFleetAuth", content)
        ssm.register_instance("i-0123456789abcdef0", executor=CannedExecutor(stdout=line))
        client = boto3.client("ssm", endpoint_url=ssm.endpoint_url, region_name="eu-west-1")
        command_id = client.send_command(...)["Command"]["CommandId"]
        ssm.wait_idle(10)

The wire protocol is SSM's JSON 1.1 (``POST /``, ``X-Amz-Target:
AmazonSSM.<Operation>``); every request is validated against botocore's
service model and answered in the model's output shapes, errors as HTTP 400
``{"__type": code, "message": ...}``. Signatures are not checked.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections import Counter
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .commands import CommandEngine
from .documents import Document
from .executors import Executor
from .fleet import ManagedInstance, TagResolver, tags_resolver
from .operations import RunCommandService
from .protocol import (
    JSON_CONTENT_TYPE,
    TARGET_PREFIX,
    SsmError,
    operation_model,
    shape_output,
    validate_input,
)

_log = logging.getLogger(__name__)


class SsmEmulator:
    """SSM Run Command on ``127.0.0.1`` at a port chosen when it starts.

    ``tag_resolver(key, values)`` answers which instance ids carry tag ``key``
    with one of ``values`` (any value when empty); SendCommand ``tag:`` Targets
    and DescribeInstanceInformation tag filters use it. Without one, the tags
    given to ``register_instance`` are used. ``delivery_time_scale`` multiplies
    SendCommand's TimeoutSeconds (tests use a small scale to see "Delivery
    Timed Out" within the model's 30 s minimum). ``worker_limit`` caps the
    threads one command runs at once, whatever its MaxConcurrency.
    """

    def __init__(
        self,
        tag_resolver: TagResolver | None = None,
        delivery_time_scale: float = 1.0,
        worker_limit: int = 256,
    ) -> None:
        self.engine = CommandEngine(worker_limit=worker_limit, delivery_time_scale=delivery_time_scale)
        self.service = RunCommandService(self.engine, tag_resolver or tags_resolver(self._instances))
        self.calls: Counter[str] = Counter()
        self._calls_lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle -------------------------------------------------------------------
    def start(self) -> SsmEmulator:
        if self._server is not None:
            return self
        server = _Server(("127.0.0.1", 0), _handler_for(self))
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},  # stop() waits for one poll; keep it short for tests
            name="ssm-emulator",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and cancel every invocation that has not started (running scripts finish)."""
        self.engine.stop()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> SsmEmulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def endpoint_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the emulator is not running; call start()")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until every command has finished sending and running; False on timeout."""
        return self.engine.wait_idle(timeout)

    # --- the simulated account ------------------------------------------------------
    def register_document(self, name: str, content: str | Mapping[str, Any]) -> None:
        """Add a Command document (version "1") as CreateDocument would."""
        self.service.add_document(Document.from_content(name, content))

    def register_instance(
        self,
        instance_id: str,
        executor: Executor,
        *,
        ping_status: str = "Online",
        platform_type: str = "Linux",
        platform_name: str = "Amazon Linux",
        platform_version: str = "2023",
        agent_version: str = "3.3.1142.0",
        ip_address: str = "10.0.0.1",
        computer_name: str = "",
        tags: Mapping[str, str] | None = None,
        delivery_delay: float = 0.0,
    ) -> ManagedInstance:
        """Make ``instance_id`` a managed node whose shell steps ``executor`` runs.

        Registering an id again replaces it (e.g. to take an instance offline).
        """
        instance = ManagedInstance(
            instance_id=instance_id,
            executor=executor,
            ping_status=ping_status,
            platform_type=platform_type,
            platform_name=platform_name,
            platform_version=platform_version,
            agent_version=agent_version,
            ip_address=ip_address,
            computer_name=computer_name,
            tags=dict(tags or {}),
            delivery_delay=delivery_delay,
        )
        self.service.add_instance(instance)
        return instance

    def _instances(self) -> list[ManagedInstance]:
        return self.service.all_instances()

    # --- one request -----------------------------------------------------------------
    def handle(self, target: str, body: bytes) -> tuple[int, dict[str, Any]]:
        """(HTTP status, JSON body) for one request; also what the HTTP handler serves."""
        try:
            if not target.startswith(TARGET_PREFIX):
                raise SsmError("UnknownOperationException", f"Unknown target {target!r}")
            operation = operation_model(target[len(TARGET_PREFIX) :])
            with self._calls_lock:
                self.calls[operation.name] += 1
            try:
                params = json.loads(body or b"{}")
            except ValueError:
                raise SsmError("SerializationException", "request body is not JSON") from None
            if not isinstance(params, dict):
                raise SsmError("SerializationException", "request body must be a JSON object")
            validate_input(operation, params)
            result = self.service.handler(operation.name)(params)
            return 200, shape_output(operation, result)
        except SsmError as error:
            return error.status, {"__type": error.code, "message": error.message}
        except Exception as error:  # an emulator bug: answer as the service would, and say where
            _log.exception("SSM emulator failed on %s", target)
            return 500, {"__type": "InternalServerError", "message": f"emulator error: {error!r}"}


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # a benchmark's burst of connections must not be refused
    daemon_threads = True


def _handler_for(emulator: SsmEmulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as botocore's connection pool expects
        # Headers and body go out in two writes; with Nagle on, keep-alive requests wait ~40 ms
        # for the client's delayed ACK.
        disable_nagle_algorithm = True

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            status, payload = emulator.handle(self.headers.get("X-Amz-Target", ""), body)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", JSON_CONTENT_TYPE)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: tests and the demo print their own reports

    return Handler
