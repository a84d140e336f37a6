"""SSM Run Command over loopback HTTP, on a real clock: what real boto3 clients and the AWS CLI talk to.

    with SsmEmulator() as ssm:
        ssm.register_document("EcrFleetAuth", content)
        ssm.register_instance("i-0123456789abcdef0", executor=CannedExecutor(stdout=line))
        client = boto3.client("ssm", endpoint_url=ssm.endpoint_url, region_name="eu-west-1")
        command_id = client.send_command(...)["Command"]["CommandId"]
        ssm.wait_idle(10)

The service (``RunCommandService``), its wire (``SsmWire``) and the endpoint's
faults are the ones the in-process transport serves too; only the clock and the
transport differ.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from ..clocks import Clock, RealClock
from ..transport.endpoint import ServiceEndpoint
from ..transport.http_server import LoopbackServer
from .models.agent_interface import Executor
from .models.documents import Document
from .models.engine import CommandEngine
from .models.managed_nodes import ManagedInstance, TagResolver
from .models.service import RunCommandService
from .responses import SsmWire


class SsmEmulator:
    """SSM Run Command on ``127.0.0.1`` at a port chosen when it starts.

    ``tag_resolver``: see ``RunCommandService``. ``delivery_time_scale`` multiplies
    the delivery deadline (tests use a small scale to see "Delivery Timed Out"
    within the model's 30 s minimum). ``worker_limit`` caps the executors running
    at once (threads), whatever the commands' MaxConcurrency.
    """

    def __init__(
        self,
        tag_resolver: TagResolver | None = None,
        delivery_time_scale: float = 1.0,
        worker_limit: int = 256,
        clock: Clock | None = None,
    ) -> None:
        self.clock = clock or RealClock(workers=worker_limit)
        self.service = RunCommandService(self.clock, tag_resolver, delivery_time_scale=delivery_time_scale)
        self.endpoint = ServiceEndpoint(SsmWire(self.service.handler))
        self._server = LoopbackServer(self.endpoint)

    # --- lifecycle -------------------------------------------------------------------
    def start(self) -> SsmEmulator:
        self._server.start()
        return self

    def stop(self) -> None:
        """Stop serving and cancel every invocation that has not started (running scripts finish)."""
        self.service.engine.stop()
        self._server.stop()
        self.clock.close()

    def __enter__(self) -> SsmEmulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def endpoint_url(self) -> str:
        if not self._server.running:
            raise RuntimeError("the emulator is not running; call start()")
        return self._server.url

    @property
    def engine(self) -> CommandEngine:
        return self.service.engine

    @property
    def calls(self) -> Counter[str]:
        """Requests received by operation, retries included."""
        return self.endpoint.calls

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until every command has finished sending and running; False on timeout."""
        return self.service.wait_idle(timeout)

    # --- the simulated account ------------------------------------------------------
    def register_document(self, name: str, content: str | Mapping[str, Any]) -> Document:
        """Add a Command document (version "1") as CreateDocument would."""
        return self.service.register_document(name, content)

    def register_instance(self, instance_id: str, executor: Executor, **options: Any) -> ManagedInstance:
        """Make ``instance_id`` a managed node (``RunCommandService.register_instance``)."""
        return self.service.register_instance(instance_id, executor, **options)
