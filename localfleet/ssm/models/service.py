"""The SSM Run Command service: documents, managed nodes and commands behind the operations boto3 calls
(and each managed node's compliance, ``compliance_store.py``).

Each operation takes a request dict (already validated against the model by
``responses.SsmWire``) and returns a result dict; the engine (``engine.py``) does
the commands' work. The same service is reached over HTTP (``server``) and
in-process (``localfleet.transport``), on a real or a simulated clock.

Knobs for what the documentation says a client must expect:
``list_commands_lag`` — ListCommands is eventually consistent: a new command is
listed only that many seconds after it was sent (HARSHER: also when asked by
CommandId, which then answers an empty list, as for a command that does not exist
yet); ``engine.target_resolution_seconds`` — tag targets resolve late.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from ...clocks import Clock
from ...identity import ACCOUNT
from ...transport.endpoint import ServiceError
from ...transport.paging import page
from .agent_interface import Executor
from .compliance_store import ComplianceStore
from .documents import Document
from .engine import Command, CommandEngine, Invocation, PluginResult, iso_time
from .managed_nodes import (
    GONE_STATES,
    ManagedInstance,
    TagResolver,
    filter_instances,
    filters_from_request,
    tags_resolver,
)

DEFAULT_PAGE_SIZE = 50  # CHOICE: ListCommands / ListCommandInvocations document no default; 50 is the max
T = TypeVar("T")
COMMAND_STATUSES = ("Pending", "InProgress", "Success", "Cancelled", "Failed", "TimedOut", "Cancelling")
# ListCommands InvokedAfter/InvokedBefore, as the API reference's example writes them (HARSHER: only so).
FILTER_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
INVALID_NEXT_TOKEN = ServiceError("InvalidNextToken", "The specified token isn't valid.")


class RunCommandService:
    """Documents, managed nodes and commands, behind the operations boto3 calls.

    ``tag_resolver(key, values)`` answers which instance ids carry tag ``key`` with
    one of ``values`` (any value when empty); SendCommand ``tag:`` Targets and
    DescribeInstanceInformation tag filters use it. Without one, the tags given to
    ``register_instance`` (SSM's own view) are used.
    """

    def __init__(
        self,
        clock: Clock,
        tag_resolver: TagResolver | None = None,
        *,
        delivery_time_scale: float = 1.0,
        target_resolution_seconds: float = 0.0,
        list_commands_lag: float = 0.0,
    ) -> None:
        self.clock = clock
        self.documents: dict[str, Document] = {}
        self.instances: dict[str, ManagedInstance] = {}
        self.lock = threading.RLock()
        self.resolve_tags = tag_resolver or tags_resolver(self.all_instances)
        self.engine = CommandEngine(
            clock,
            self.instance,
            delivery_time_scale=delivery_time_scale,
            target_resolution_seconds=target_resolution_seconds,
        )
        self.list_commands_lag = list_commands_lag
        self.compliance = ComplianceStore(self._compliance_resource)

    def handler(self, operation: str) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
        handlers: dict[str, Callable[[Mapping[str, Any]], dict[str, Any]]] = {
            "CreateDocument": self.create_document,
            "DescribeDocument": self.describe_document,
            "GetDocument": self.get_document,
            "ListDocuments": self.list_documents,
            "DescribeInstanceInformation": self.describe_instance_information,
            "SendCommand": self.send_command,
            "ListCommands": self.list_commands,
            "ListCommandInvocations": self.list_command_invocations,
            "GetCommandInvocation": self.get_command_invocation,
            "CancelCommand": self.cancel_command,
            "PutComplianceItems": self.compliance.put_items,
            "ListComplianceItems": self.list_compliance_items,
            "ListComplianceSummaries": self.list_compliance_summaries,
            "ListResourceComplianceSummaries": self.list_resource_compliance_summaries,
        }
        if operation not in handlers:
            raise ServiceError("UnknownOperationException", f"{operation} is not emulated")
        handle = handlers[operation]

        def settled(params: Mapping[str, Any]) -> dict[str, Any]:
            self.clock.settle()  # what was due by now has happened before anyone looks
            return handle(params)

        return settled

    # --- the simulated account ------------------------------------------------------
    def register_document(self, name: str, content: str | Mapping[str, Any]) -> Document:
        """Add a Command document (version "1") as CreateDocument would."""
        document = Document.from_content(name, content)
        self.add_document(document)
        return document

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
        state: str = "running",
        commandable: bool = True,
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
            state=state,
            commandable=commandable,
        )
        self.add_instance(instance)
        return instance

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until every command has finished sending and running; False on timeout."""
        return self.engine.wait_idle(timeout)

    # --- documents -------------------------------------------------------------------
    def add_document(self, document: Document) -> None:
        document.created = self.clock.time()  # CreatedDate on the service's clock
        with self.lock:
            if document.name in self.documents:
                raise ServiceError("DocumentAlreadyExists", "The specified document already exists.")
            self.documents[document.name] = document

    def create_document(self, params: Mapping[str, Any]) -> dict[str, Any]:
        if params.get("DocumentType", "Command") != "Command":
            raise ServiceError("InvalidDocumentContent", "the emulator stores Command documents only")
        if params.get("DocumentFormat", "JSON") != "JSON":
            raise ServiceError("InvalidDocumentContent", "the emulator reads JSON documents only")
        document = Document.from_content(params["Name"], params["Content"])
        self.add_document(document)
        return {"DocumentDescription": self._describe_document(document)}

    def delete_document(self, name: str) -> None:
        """What DeleteDocument (or CloudFormation deleting the document's resource) does."""
        with self.lock:
            self.documents.pop(name, None)

    def list_documents(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The documents the filters select, as DocumentIdentifiers. Filters (DocumentKeyValuesFilter):
        ``Owner`` (``Self``: this account's; every document here is), ``Name`` ("you can use a name
        prefix to return a list of documents"), ``DocumentType``; other keys are refused (CHOICE: not
        used by the stack). Several values of a key: any of them; several keys: all of them."""
        if params.get("DocumentFilterList"):
            raise ServiceError("ValidationException", "DocumentFilterList is not emulated: use Filters")
        with self.lock:
            documents = sorted(self.documents.values(), key=lambda d: d.name)
        for found in params.get("Filters", []):
            key, values = found["Key"], found.get("Values", [])
            if key == "Owner":
                if values not in (["Self"], ["Private"]):
                    documents = []
            elif key == "Name":
                documents = [d for d in documents if any(d.name.startswith(v) for v in values)]
            elif key == "DocumentType":
                documents = documents if "Command" in values else []
            else:
                raise ServiceError("InvalidFilterKey", f"Filter key {key} is not emulated")
        page, token = paginate(documents, params, "ListDocuments")
        return {"DocumentIdentifiers": [self._identify_document(d) for d in page], "NextToken": token}

    @staticmethod
    def _identify_document(document: Document) -> dict[str, Any]:
        return {
            "Name": document.name,
            "CreatedDate": document.created,
            "Owner": ACCOUNT,
            "PlatformTypes": document.platform_types(),
            "DocumentVersion": document.version,
            "DocumentType": "Command",
            "SchemaVersion": document.content["schemaVersion"],
            "DocumentFormat": "JSON",
        }

    def describe_document(self, params: Mapping[str, Any]) -> dict[str, Any]:
        document = self._document(params["Name"], params.get("DocumentVersion"))
        return {"Document": self._describe_document(document)}

    def get_document(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """SSM API reference, GetDocument: the document's ``Content`` as stored (the emulator keeps JSON
        documents only, so ``DocumentFormat`` JSON is what it was created in)."""
        document = self._document(params["Name"], params.get("DocumentVersion"))
        if params.get("DocumentFormat", "JSON") != "JSON":
            raise ServiceError("InvalidDocumentContent", "the emulator converts no document to YAML or TEXT")
        return {
            "Name": document.name,
            "CreatedDate": document.created,
            "DocumentVersion": document.version,
            "Status": "Active",
            "Content": document.content_text,
            "DocumentType": "Command",
            "DocumentFormat": "JSON",
        }

    def _document(self, name: str, version: str | None) -> Document:
        # DocumentName may be an ARN: arn:aws:ssm:<region>:<account>:document/<name>.
        short_name = name.rsplit("document/", 1)[-1]
        with self.lock:
            document = self.documents.get(short_name)
        if document is None:
            raise ServiceError("InvalidDocument", f"Document with name {name} does not exist.")
        if not document.accepts_version(version):
            raise ServiceError("InvalidDocumentVersion", f"Document {name} has no version {version}.")
        return document

    @staticmethod
    def _describe_document(document: Document) -> dict[str, Any]:
        return {
            "Name": document.name,
            "Hash": document.hash,
            "HashType": "Sha256",
            "Owner": ACCOUNT,
            "CreatedDate": document.created,
            "Status": "Active",
            "DocumentVersion": document.version,
            "Description": document.content.get("description"),
            "Parameters": [
                {
                    "Name": p.name,
                    "Type": p.type,
                    "Description": p.description,
                    "DefaultValue": None if p.default is None else ",".join(p.default_values()),
                }
                for p in document.parameters().values()
            ],
            "PlatformTypes": document.platform_types(),
            "DocumentType": "Command",
            "SchemaVersion": document.content["schemaVersion"],
            "LatestVersion": document.version,
            "DefaultVersion": document.version,
            "DocumentFormat": "JSON",
        }

    # --- instances -------------------------------------------------------------------
    def add_instance(self, instance: ManagedInstance) -> None:
        with self.lock:
            previous = self.instances.get(instance.instance_id)
            instance.registered = previous.registered if previous else len(self.instances)
            self.instances[instance.instance_id] = instance

    def instance(self, instance_id: str) -> ManagedInstance | None:
        with self.lock:
            return self.instances.get(instance_id)

    def all_instances(self) -> list[ManagedInstance]:
        with self.lock:
            return list(self.instances.values())

    def describe_instance_information(self, params: Mapping[str, Any]) -> dict[str, Any]:
        with self.lock:
            instances = dict(self.instances)
        selected = filter_instances(instances, filters_from_request(params), self.resolve_tags)
        # MaxResults: "The default value is 10 items."
        page, token = paginate(selected, params, "DescribeInstanceInformation", default_size=10)
        return {"InstanceInformationList": [i.describe() for i in page], "NextToken": token}

    # --- commands --------------------------------------------------------------------
    def send_command(self, params: Mapping[str, Any]) -> dict[str, Any]:
        if bool(params.get("InstanceIds")) == bool(params.get("Targets")):
            # CHOICE: the reference says to specify one or the other; the error code is not documented.
            raise ServiceError(
                "ValidationException", "Specify either InstanceIds or Targets, not both or neither."
            )
        document = self._document(params["DocumentName"], params.get("DocumentVersion"))
        values = document.resolve_parameters(params.get("Parameters", {}))
        targets: list[ManagedInstance] | Callable[[], list[ManagedInstance]]
        if params.get("InstanceIds"):
            targets = self._commandable(self._managed(list(dict.fromkeys(params["InstanceIds"]))))
        else:
            wanted = list(params["Targets"])
            self._check_targets(wanted)
            targets = lambda: self._resolve_targets(wanted)  # noqa: E731 - resolved as the engine decides
        with self.engine.lock:
            command = self.engine.send(document, params, values, targets)
            return {"Command": self._describe_command(command)}  # as sent, before anything ran

    def _managed(self, instance_ids: list[str]) -> list[ManagedInstance]:
        with self.lock:
            invalid = [
                i for i in instance_ids if i not in self.instances or self.instances[i].state in GONE_STATES
            ]
            if invalid:
                # What the service answers for ids that are not managed nodes (not registered,
                # shutting down, terminated, or another account's): the whole call fails.
                raise ServiceError(
                    "InvalidInstanceId",
                    f"Instances [[{', '.join(invalid)}]] not in a valid state for account {ACCOUNT}",
                )
            return [self.instances[i] for i in instance_ids]

    @staticmethod
    def _commandable(instances: list[ManagedInstance]) -> list[ManagedInstance]:
        denied = [i.instance_id for i in instances if not i.commandable]
        if denied:
            # IAM refuses the whole call when the caller may not command one of the instances.
            raise ServiceError(
                "AccessDeniedException",
                f"not authorized to perform: ssm:SendCommand on resource: instance/{denied[0]}",
            )
        return instances

    @staticmethod
    def _check_targets(targets: Sequence[Mapping[str, Any]]) -> None:
        for target in targets:
            key = target.get("Key", "")
            if key != "InstanceIds" and not key.startswith("tag:") and key != "tag-key":
                raise ServiceError(
                    "ValidationException", f"Target key {key!r} is not supported by the emulator"
                )

    def _resolve_targets(self, targets: Sequence[Mapping[str, Any]]) -> list[ManagedInstance]:
        """Managed nodes matching every Target, in registration order.

        CHOICE: AND across keys, OR across values. A node that is shutting down or
        terminated (``GONE_STATES``) is no longer a target: it gets no invocation.
        """
        chosen: set[str] | None = None
        for target in targets:
            key, values = target.get("Key", ""), list(target.get("Values", []))
            if key == "InstanceIds":
                matched = {i for i in values if self.instance(i) is not None}
            elif key.startswith("tag:"):
                matched = set(self.resolve_tags(key[len("tag:") :], values))
            else:
                matched = {i for tag_key in values for i in self.resolve_tags(tag_key, [])}
            chosen = matched if chosen is None else chosen & matched
        # Only managed nodes are targets: a tagged EC2 instance without the agent gets no invocation.
        return [
            i
            for i in self.all_instances()
            if chosen is not None and i.instance_id in chosen and i.state not in GONE_STATES
        ]

    def _command(self, command_id: str) -> Command:
        with self.engine.lock:
            command = self.engine.commands.get(command_id)
        if command is None:
            raise ServiceError("InvalidCommandId", f"Command {command_id} does not exist")
        return command

    def _listed(self, command: Command) -> bool:
        """Whether ListCommands shows ``command`` yet (``list_commands_lag`` after it was sent)."""
        return self.clock.monotonic() >= command.requested_at + self.list_commands_lag

    def list_commands(self, params: Mapping[str, Any]) -> dict[str, Any]:
        with self.engine.lock:
            if "CommandId" in params:
                commands = [self._command(params["CommandId"])]
            else:
                commands = list(reversed(self.engine.commands.values()))  # newest first
            commands = [c for c in commands if self._listed(c)]
            if "InstanceId" in params:
                commands = [c for c in commands if params["InstanceId"] in c.invocations]
            filters = params.get("Filters", [])
            commands = [c for c in commands if _matches_filters(filters, c, c.status())]
            page, token = paginate(commands, params, "ListCommands")
            return {"Commands": [self._describe_command(c) for c in page], "NextToken": token}

    def list_command_invocations(self, params: Mapping[str, Any]) -> dict[str, Any]:
        details = bool(params.get("Details", False))
        filters = params.get("Filters", [])
        with self.engine.lock:
            if "CommandId" in params:
                commands = [self._command(params["CommandId"])]
            else:
                commands = list(reversed(self.engine.commands.values()))
            selected = [
                invocation
                for command in commands
                for invocation in self._invocations_of(command, params.get("InstanceId"))
                if not filters or _matches_filters(filters, command, invocation.status)
            ]
            page, token = paginate(selected, params, "ListCommandInvocations")
            return {
                "CommandInvocations": [self._describe_invocation(i, details) for i in page],
                "NextToken": token,
            }

    @staticmethod
    def _invocations_of(command: Command, instance_id: str | None) -> list[Invocation]:
        if instance_id is None:
            return list(command.invocations.values())
        found = command.invocations.get(instance_id)
        return [found] if found is not None else []

    def get_command_invocation(self, params: Mapping[str, Any]) -> dict[str, Any]:
        with self.engine.lock:
            command = self.engine.commands.get(params["CommandId"])
            invocation = command.invocations.get(params["InstanceId"]) if command else None
            if command is None or invocation is None:
                raise ServiceError(
                    "InvocationDoesNotExist", "An invocation with that command and instance does not exist"
                )
            return self._invocation_detail(command, invocation, params.get("PluginName"))

    def cancel_command(self, params: Mapping[str, Any]) -> dict[str, Any]:
        command = self._command(params["CommandId"])
        instance_ids = list(params.get("InstanceIds", []))
        unknown = [i for i in instance_ids if i not in command.invocations]
        if unknown:
            raise ServiceError(
                "InvalidInstanceId", f"Instances [[{', '.join(unknown)}]] are not targets of the command"
            )
        self.engine.cancel(command, instance_ids or None)
        return {}

    # --- compliance (``compliance_store.py``) -------------------------------------------------
    def _compliance_resource(self, instance_id: str) -> bool:
        """A managed node compliance may be recorded on: registered here, not shutting down or terminated."""
        instance = self.instance(instance_id)
        return instance is not None and instance.state not in GONE_STATES

    def list_compliance_items(self, params: Mapping[str, Any]) -> dict[str, Any]:
        # MaxResults 1-50 (the model); CHOICE: the reference gives no default, 10 is taken.
        page, token = paginate(self.compliance.list_items(params), params, "ListComplianceItems", 10)
        return {"ComplianceItems": page, "NextToken": token}

    def list_compliance_summaries(self, params: Mapping[str, Any]) -> dict[str, Any]:
        # "Currently, you can specify null or 50": pages of 50.
        summaries = self.compliance.list_summaries(params)
        page, token = paginate(summaries, params, "ListComplianceSummaries")
        return {"ComplianceSummaryItems": page, "NextToken": token}

    def list_resource_compliance_summaries(self, params: Mapping[str, Any]) -> dict[str, Any]:
        # MaxResults 5-50 (the model); CHOICE: pages of 50 by default.
        summaries = self.compliance.list_resource_summaries(params)
        page, token = paginate(summaries, params, "ListResourceComplianceSummaries", 50)
        return {"ResourceComplianceSummaryItems": page, "NextToken": token}

    # --- shapes ----------------------------------------------------------------------
    @staticmethod
    def _describe_command(command: Command) -> dict[str, Any]:
        request = command.request
        invocations = command.invocations.values()
        return {
            "CommandId": command.command_id,
            "DocumentName": request["DocumentName"],
            "DocumentVersion": request.get("DocumentVersion", "$DEFAULT"),
            "Comment": request.get("Comment", ""),
            "ExpiresAfter": command.requested + command.timeout_seconds,
            "Parameters": request.get("Parameters", {}),
            "InstanceIds": list(request.get("InstanceIds", [])),
            "Targets": list(request.get("Targets", [])),
            "RequestedDateTime": command.requested,
            "Status": command.status(),
            "StatusDetails": command.status_details(),
            "OutputS3Region": request.get("OutputS3Region"),
            "OutputS3BucketName": request.get("OutputS3BucketName"),
            "OutputS3KeyPrefix": request.get("OutputS3KeyPrefix"),
            "MaxConcurrency": request.get("MaxConcurrency", "50"),
            "MaxErrors": request.get("MaxErrors", "0"),
            "TargetCount": len(invocations),
            "CompletedCount": command.ended,
            "ErrorCount": command.errors,
            "DeliveryTimedOutCount": sum(i.details == "Delivery Timed Out" for i in invocations),
            "ServiceRole": request.get("ServiceRoleArn"),
            "NotificationConfig": request.get("NotificationConfig"),
            "CloudWatchOutputConfig": request.get("CloudWatchOutputConfig"),
            "TimeoutSeconds": command.timeout_seconds,
        }

    @staticmethod
    def _describe_invocation(invocation: Invocation, details: bool) -> dict[str, Any]:
        command, request = invocation.command, invocation.command.request
        item: dict[str, Any] = {
            "CommandId": command.command_id,
            "InstanceId": invocation.instance_id,
            "InstanceName": invocation.instance_name,
            "Comment": request.get("Comment", ""),
            "DocumentName": request["DocumentName"],
            "DocumentVersion": request.get("DocumentVersion", "$DEFAULT"),
            "RequestedDateTime": command.requested,
            "Status": invocation.status,
            "StatusDetails": invocation.details,
            "TraceOutput": "",
            "StandardOutputUrl": "",
            "StandardErrorUrl": "",
            "CommandPlugins": [],
            "ServiceRole": request.get("ServiceRoleArn"),
            "NotificationConfig": request.get("NotificationConfig"),
            "CloudWatchOutputConfig": request.get("CloudWatchOutputConfig"),
        }
        if details:
            item["CommandPlugins"] = [_describe_plugin(p) for p in invocation.plugins]
        return item

    @staticmethod
    def _invocation_detail(
        command: Command, invocation: Invocation, plugin_name: str | None
    ) -> dict[str, Any]:
        if plugin_name is not None:
            plugins = [p for p in invocation.plugins if p.name == plugin_name]
            if not plugins:
                raise ServiceError("InvalidPluginName", f"The plugin name {plugin_name} is not valid")
            plugin: PluginResult | None = plugins[0]
        else:
            # Without PluginName only a single-step document's output is returned.
            plugin = invocation.plugins[0] if len(invocation.plugins) == 1 else None
        source: PluginResult | Invocation = plugin if plugin is not None else invocation
        elapsed = (
            (source.finished or 0) - (source.started or 0) if source.started and source.finished else None
        )
        request = command.request
        return {
            "CommandId": command.command_id,
            "InstanceId": invocation.instance_id,
            "Comment": request.get("Comment", ""),
            "DocumentName": request["DocumentName"],
            "DocumentVersion": request.get("DocumentVersion", "$DEFAULT"),
            "PluginName": plugin.name if plugin is not None else None,
            "ResponseCode": source.response_code,
            "ExecutionStartDateTime": iso_time(source.started) or "",
            "ExecutionElapsedTime": f"PT{elapsed:.3f}S" if elapsed is not None else "",
            "ExecutionEndDateTime": iso_time(source.finished) or "",
            "Status": source.status,
            "StatusDetails": source.details,
            # "If the command hasn't finished running ... then this string is empty."
            "StandardOutputContent": plugin.stdout_content if plugin is not None else "",
            "StandardOutputUrl": "",
            "StandardErrorContent": plugin.stderr_content if plugin is not None else "",
            "StandardErrorUrl": "",
            "CloudWatchOutputConfig": request.get("CloudWatchOutputConfig"),
        }


def _describe_plugin(plugin: PluginResult) -> dict[str, Any]:
    return {
        "Name": plugin.name,
        "Status": plugin.status,
        "StatusDetails": plugin.details,
        "ResponseCode": plugin.response_code,
        "ResponseStartDateTime": plugin.started,
        "ResponseFinishDateTime": plugin.finished,
        "Output": plugin.output,
        "StandardOutputUrl": "",
        "StandardErrorUrl": "",
    }


def _matches_filters(filters: Sequence[Mapping[str, str]], command: Command, status: str) -> bool:
    """ListCommands / ListCommandInvocations filters (key, value); all must hold."""
    for item in filters:
        key, value = item["key"], item["value"]
        if key in ("InvokedAfter", "InvokedBefore"):
            try:
                moment = dt.datetime.strptime(value, FILTER_TIME_FORMAT).replace(tzinfo=dt.UTC).timestamp()
            except ValueError:
                raise ServiceError(
                    "InvalidFilterKey", f"{key} wants YYYY-MM-DDTHH:MM:SSZ, got {value!r}"
                ) from None
            if (key == "InvokedAfter") != (command.requested >= moment):
                return False
        elif key == "Status":
            if value not in COMMAND_STATUSES:
                raise ServiceError(
                    "InvalidFilterKey", f"Status filter value must be one of {', '.join(COMMAND_STATUSES)}"
                )
            if status != value:
                return False
        elif key == "ExecutionStage":
            stage = "Complete" if command.complete else "Executing"
            if value not in ("Executing", "Complete"):
                raise ServiceError(
                    "InvalidFilterKey", "ExecutionStage filter value must be Executing or Complete"
                )
            if stage != value:
                return False
        elif key == "DocumentName" and command.request["DocumentName"] != value:
            return False
    return True


def paginate(
    items: list[T], params: Mapping[str, Any], operation: str, default_size: int = DEFAULT_PAGE_SIZE
) -> tuple[list[T], str | None]:
    """A page of ``items`` from ``NextToken`` and ``MaxResults``."""
    size = int(params.get("MaxResults", default_size))
    return page(items, token=params.get("NextToken"), size=size, scope=operation, invalid=INVALID_NEXT_TOKEN)
