"""Step Functions (and the S3 its Map reads) over HTTP on loopback, for a world on a real clock.

moto's server application, in this process, behind ``invoke_middleware``: Invoke reaches this
world's functions, every other request moto (Step Functions with its interpreter switched on, S3,
...). moto's interpreter calls AWS at ``http://localhost:$MOTO_PORT`` when no ``mock_aws`` is active
in the process (``moto/settings.py``, ``moto_server_port``), so the server sets ``MOTO_PORT`` to
its own port while it runs: its Map's ItemReader reads this server's S3, its Lambda tasks reach
the functions. The local fleet's runner, started as Lambda starts it, reaches the same Step
Functions and S3 through ``AWS_ENDPOINT_URL_SFN`` and ``AWS_ENDPOINT_URL_S3``.
"""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import unquote

from werkzeug.serving import WSGIRequestHandler, make_server

from ..transport.http_server import ServingThread
from .models.lambda_tasks import INVOKE_PATH, LambdaTasks
from .models.machines import MOTO_CONFIG

MOTO_PORT = "MOTO_PORT"


class _Quiet(WSGIRequestHandler):
    """No access log: the interpreter's every call would be a line of ``make demo``'s output."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


def invoke_middleware(
    lambda_tasks: LambdaTasks, application: Callable[..., Iterable[bytes]]
) -> Callable[..., Iterable[bytes]]:
    """A WSGI application answering Invoke from ``lambda_tasks``, every other request going to
    ``application``."""

    def serve(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
        if not INVOKE_PATH.match(unquote(path)):
            return application(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        status, headers, payload = lambda_tasks.answer(method, path, body)
        start_response(f"{status} {'OK' if status == 200 else 'Error'}", [
            *headers.items(), ("Content-Length", str(len(payload)))
        ])  # fmt: skip
        return [payload]

    return serve


class StepFunctionsServer:
    def __init__(self, lambda_tasks: LambdaTasks) -> None:
        self.lambda_tasks = lambda_tasks
        self._serving: ServingThread | None = None
        self._previous_port: str | None = None

    @property
    def url(self) -> str:
        if self._serving is None:
            raise RuntimeError("the Step Functions server is not running; call start()")
        return self._serving.url

    def start(self) -> StepFunctionsServer:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app  # noqa: PLC0415

        application: Any = DomainDispatcherApplication(create_backend_app)
        server = make_server(
            "127.0.0.1",
            0,
            invoke_middleware(self.lambda_tasks, application),
            threaded=True,
            request_handler=_Quiet,
        )
        self._serving = ServingThread(server, "stepfunctions")
        self._previous_port = os.environ.get(MOTO_PORT)
        os.environ[MOTO_PORT] = str(server.server_address[1])
        request = urllib.request.Request(  # noqa: S310 - our own loopback server
            f"{self.url}/moto-api/config",
            data=json.dumps(MOTO_CONFIG).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10):  # noqa: S310 - as above
            pass
        return self

    def stop(self) -> None:
        if self._serving is not None:
            self._serving.stop(timeout=5)
            self._serving = None
        if self._previous_port is None:
            os.environ.pop(MOTO_PORT, None)
        else:
            os.environ[MOTO_PORT] = self._previous_port
