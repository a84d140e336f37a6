"""A ``ServiceEndpoint`` served over HTTP on 127.0.0.1, at a port chosen when it starts.

Signatures are not checked. A connection failure injected at the endpoint closes
the connection without an answer (the client sees the connection closed, whatever
failure was named: a server cannot refuse a connection it has accepted).
"""

from __future__ import annotations

import logging
import socketserver
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .endpoint import Answering, Reply, ServiceError, TransportFailure

_log = logging.getLogger(__name__)


class ServingThread:
    """A server on loopback served by a daemon thread until ``stop``: what every simulated service
    served over HTTP runs on (an endpoint's ``LoopbackServer``, moto's application)."""

    def __init__(self, server: socketserver.TCPServer, name: str, poll_interval: float = 0.5) -> None:
        self.server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": poll_interval}, name=name, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def stop(self, timeout: float | None = None) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout)


class LoopbackServer:
    def __init__(self, endpoint: Answering) -> None:
        self.endpoint = endpoint
        self._serving: ServingThread | None = None

    def start(self) -> LoopbackServer:
        if self._serving is None:
            server = _Server(("127.0.0.1", 0), _handler_for(self.endpoint))
            # stop() waits for one poll; keep it short for tests
            self._serving = ServingThread(server, f"{self.endpoint.service}-server", poll_interval=0.05)
        return self

    def stop(self) -> None:
        if self._serving is not None:
            self._serving.stop()
            self._serving = None

    @property
    def running(self) -> bool:
        return self._serving is not None

    @property
    def url(self) -> str:
        if self._serving is None:
            raise RuntimeError(f"the {self.endpoint.service} server is not running; call start()")
        return self._serving.url


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # a benchmark's burst of connections must not be refused
    daemon_threads = True


def _handler_for(endpoint: Answering) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as botocore's connection pool expects
        # Headers and body go out in two writes; with Nagle on, keep-alive requests wait ~40 ms
        # for the client's delayed ACK.
        disable_nagle_algorithm = True

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            try:
                reply = endpoint.handle(dict(self.headers.items()), body)
            except TransportFailure:
                self.close_connection = True
                return
            except Exception as error:  # a simulator bug: answer as a service would, and say where
                _log.exception("%s simulator failed", endpoint.service)
                reply = endpoint.wire.error(
                    ServiceError("InternalServerError", f"simulator error: {error!r}", 500)
                )
            self._send(reply)

        def _send(self, reply: Reply) -> None:
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
            self.end_headers()
            self.wfile.write(reply.body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: tests and the demo print their own reports

    return Handler
