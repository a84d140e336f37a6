"""Step Functions (and the S3 its Map reads) over HTTP on loopback, for a world on a real clock.

moto's server application, in this process, behind ``LambdaTasks.middleware``: Invoke reaches this
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
from typing import Any

from werkzeug.serving import WSGIRequestHandler, make_server

from ..transport.http_server import ServingThread
from .models.lambda_tasks import LambdaTasks
from .models.machines import MOTO_CONFIG

MOTO_PORT = "MOTO_PORT"


class _Quiet(WSGIRequestHandler):
    """No access log: the interpreter's every call would be a line of ``make demo``'s output."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


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
            "127.0.0.1", 0, self.lambda_tasks.middleware(application), threaded=True, request_handler=_Quiet
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
