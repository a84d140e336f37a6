"""A stand-in for the X-Ray daemon: it keeps the segment documents the X-Ray SDK sends.

The SDK sends each (sub)segment as one UDP datagram to AWS_XRAY_DAEMON_ADDRESS: a
header line ``{"format": "json", "version": 1}``, a newline, then the document. The
real daemon batches them to the X-Ray API; here they are kept so a run's trace can be
read back, and tracing runs locally exactly as it is deployed.
"""

from __future__ import annotations

import json
import socket
import threading
from typing import Any

HEADER = {"format": "json", "version": 1}


class XRayDaemon:
    def __init__(self) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.settimeout(0.2)  # so the receiver notices stop()
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._documents: list[dict[str, Any]] = []
        self.rejected: list[bytes] = []  # datagrams that were not a header and a document
        self._thread = threading.Thread(target=self._receive, name="xray-daemon", daemon=True)

    @property
    def address(self) -> str:
        host, port = self._socket.getsockname()
        return f"{host}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self._socket.close()

    def documents(self, trace_id: str | None = None) -> list[dict[str, Any]]:
        """The segment documents received so far, of one trace if `trace_id` is given."""
        with self._lock:
            kept = list(self._documents)
        return [d for d in kept if trace_id is None or d.get("trace_id") == trace_id]

    def _receive(self) -> None:
        while not self._stopping.is_set():
            try:
                datagram = self._socket.recv(65_535)
            except TimeoutError:
                continue
            except OSError:
                return
            header, _, body = datagram.partition(b"\n")
            try:
                if json.loads(header) != HEADER:
                    raise ValueError("not an X-Ray daemon header")
                document = json.loads(body)
            except ValueError:
                self.rejected.append(datagram)
                continue
            with self._lock:
                self._documents.append(document)
