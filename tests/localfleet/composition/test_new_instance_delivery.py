"""The new-instance delivery model (``localfleet.composition``): EventBridge rules, the SQS queue and Lambda's
event source mapping as the synthesized template configures them, on a simulated and a real clock."""

from __future__ import annotations

import itertools
import json
import threading
import time
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from localfleet.clocks import RealClock, SimulatedClock
from localfleet.composition import NewInstanceDelivery
from localfleet.eventbridge.models import matches, state_change_event, tag_change_event
from localfleet.lambda_runtime import EsmSettings, EventSourceMapping
from localfleet.sqs import SqsService, SqsWire
from localfleet.transport import InProcessTransport, LoopbackServer, ServiceEndpoint
from tests.support.event_samples import load_event
from tests.support.template import Template, only, resources

ACCOUNT, REGION = "123456789012", "eu-west-1"


def load(name: str) -> dict[str, Any]:
    event: dict[str, Any] = load_event(name)
    return event


class Function:
    """A function the mapping invokes: records what it got; answers, fails or sleeps as told."""

    def __init__(self, clock: SimulatedClock, seconds: float = 0.0) -> None:
        self.clock, self.seconds = clock, seconds
        self.events: list[dict[str, Any]] = []
        self.lineages: list[str] = []
        self.fail_ids: set[str] = set()
        self.raise_error = False
        self.running = self.most_running = 0

    def __call__(self, event: dict[str, Any], *, lineage: str = "") -> dict[str, Any]:
        self.events.append(event)
        self.lineages.append(lineage)
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        self.clock.sleep(self.seconds)
        self.running -= 1
        if self.raise_error:
            raise RuntimeError("the function failed")
        failed = [
            r["messageId"] for r in event["Records"] if json.loads(r["body"]).get("id") in self.fail_ids
        ]
        return {"batchItemFailures": [{"itemIdentifier": m} for m in failed]}


def delivery(template: Template, function: Function) -> NewInstanceDelivery:
    sqs = SqsService(function.clock, ACCOUNT, REGION)
    return NewInstanceDelivery.from_template(template, function.clock, sqs, function)


def running(instance_id: str, clock: SimulatedClock) -> dict[str, Any]:
    return state_change_event(instance_id, "running", account=ACCOUNT, region=REGION, at=clock.now())


def test_settings_and_rules_are_the_templates(synthesized_template: Template) -> None:
    model = delivery(synthesized_template, Function(SimulatedClock()))
    mapping = only(synthesized_template, "AWS::Lambda::EventSourceMapping")["Properties"]
    function = resources(synthesized_template, "AWS::Lambda::Function")[mapping["FunctionName"]["Ref"]]
    assert model.settings == EsmSettings(
        batch_size=mapping["BatchSize"],
        batching_window_seconds=mapping["MaximumBatchingWindowInSeconds"],
        maximum_concurrency=mapping["ScalingConfig"]["MaximumConcurrency"],
        report_batch_item_failures=mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"],
        recursive_loop=function["Properties"].get("RecursiveLoop", "Terminate"),
        function=model.settings.function,
    )
    patterns = sorted(json.dumps(r["Properties"]["EventPattern"], sort_keys=True)
                      for r in resources(synthesized_template, "AWS::Events::Rule").values())  # fmt: skip
    assert sorted(json.dumps(rule.pattern, sort_keys=True) for rule in model.rules) == patterns
    queue = model.queue
    assert queue.visibility_timeout > 0 and queue.dead_letters is not None and queue.max_receive_count >= 5


@pytest.mark.parametrize(
    ("sample", "matched"),
    [
        ("ec2_state_change_running", True),
        ("ec2_state_change_pending", False),
        ("tag_change_added", True),
        ("tag_change_value_changed", True),
        ("tag_change_multi_key", True),
        ("tag_change_removed", False),
    ],
)
def test_the_rules_match_aws_samples_as_eventbridge_would(
    synthesized_template: Template, sample: str, matched: bool
) -> None:
    model = delivery(synthesized_template, Function(SimulatedClock()))
    model.put(load(sample))
    assert model.pending() == int(matched)


def test_built_events_have_the_samples_shape() -> None:
    at = SimulatedClock().now()
    built = state_change_event("i-0123456789abcdef0", "running", account=ACCOUNT, region=REGION, at=at)
    sample = load("ec2_state_change_running")
    assert built.keys() == sample.keys() and built["detail"].keys() == sample["detail"].keys()
    tagged = tag_change_event("i-0123456789abcdef0", ["k"], {"k": "v"}, account=ACCOUNT, region=REGION, at=at)
    sample = load("tag_change_added")
    assert tagged.keys() == sample.keys() and tagged["detail"].keys() == sample["detail"].keys()
    assert matches({"detail": {"tags": {"k": ["v"]}}}, tagged)
    with pytest.raises(ValueError, match="exact values"):
        matches({"detail": {"state": [{"prefix": "run"}]}}, built)


def test_a_batch_waits_for_the_window_and_is_handed_as_sqs_records(synthesized_template: Template) -> None:
    clock = SimulatedClock()
    function = Function(clock)
    model = delivery(synthesized_template, function)
    start = clock.monotonic()
    model.put(running("i-0000000000000000a", clock))
    clock.sleep(5)
    model.put(running("i-0000000000000000b", clock))
    model.run_until_idle()
    # Two pollers read side by side (MaximumConcurrency 2): each gathered a batch from the first
    # visible message until the window closed, and got one of the two.
    window = model.settings.batching_window_seconds
    assert [i.started - start for i in model.invocations] == [window, window]
    records = [record for event in function.events for record in event["Records"]]
    record = records[0]
    assert sorted(json.loads(r["body"])["detail"]["instance-id"] for r in records) == [
        "i-0000000000000000a",
        "i-0000000000000000b",
    ]
    assert record.keys() == load("sqs_batch")["Records"][0].keys()
    assert record["eventSource"] == "aws:sqs" and record["eventSourceARN"] == model.queue.arn
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert model.idle()


def test_at_most_the_maximum_concurrency_runs_at_once(synthesized_template: Template) -> None:
    clock = SimulatedClock()
    function = Function(clock, seconds=100)
    model = delivery(synthesized_template, function)
    for number in range(6):  # a new event every 30 s while batches take 100 s
        model.put(running(f"i-{number:017x}", clock))
        clock.sleep(30)
    model.run_until_idle()
    assert function.most_running == model.settings.maximum_concurrency == 2
    spans = [(i.started, i.ended) for i in model.invocations]
    assert any(b[0] < a[1] for a, b in itertools.pairwise(spans)), "two batches overlapped"
    assert sum(i.records for i in model.invocations) == 6


def test_failed_items_come_back_after_the_visibility_timeout_then_go_to_the_dead_letters(
    synthesized_template: Template,
) -> None:
    clock = SimulatedClock()
    function = Function(clock)
    model = delivery(synthesized_template, function)
    good, bad = running("i-0000000000000000a", clock), running("i-0000000000000000b", clock)
    function.fail_ids = {bad["id"]}
    model.put(good, bad)
    first = model.next_invocation()
    assert first.records == 2 and len(first.kept) == 1 and model.pending() == 1
    second = model.next_invocation(most_seconds=2 * model.queue.visibility_timeout)
    assert second.started - first.started >= model.queue.visibility_timeout
    assert function.events[1]["Records"][0]["attributes"]["ApproximateReceiveCount"] == "2"
    model.run_until_idle(most_seconds=10 * model.queue.visibility_timeout)
    assert len(model.invocations) == model.queue.max_receive_count
    assert model.dead_letters() == 1


def test_a_function_error_keeps_the_whole_batch(synthesized_template: Template) -> None:
    clock = SimulatedClock()
    function = Function(clock)
    function.raise_error = True
    model = delivery(synthesized_template, function)
    model.put(running("i-0000000000000000a", clock), running("i-0000000000000000b", clock))
    invocation = model.next_invocation()
    assert invocation.error is not None and len(invocation.kept) == 2 and model.pending() == 2


def test_an_invalid_answer_fails_the_whole_batch() -> None:
    clock = SimulatedClock()
    sqs = SqsService(clock, ACCOUNT, REGION)
    queue = sqs.create_queue("q", visibility_timeout=60)
    mapping = EventSourceMapping(
        clock,
        sqs,
        queue,
        lambda event, lineage: {"batchItemFailures": [{"itemIdentifier": ""}]},
        EsmSettings(10, 1, 2, True),
    )
    sqs.send(queue, "{}")
    clock.sleep(25)
    assert len(mapping.invocations) == 1 and len(mapping.invocations[0].kept) == 1


def test_put_backs_through_boto3_become_visible_after_their_delay() -> None:
    clock = SimulatedClock()
    sqs = SqsService(clock, ACCOUNT, REGION)
    queue = sqs.create_queue("EcrFleetAuth-Queue", visibility_timeout=60)
    got: list[tuple[float, int]] = []
    EventSourceMapping(
        clock,
        sqs,
        queue,
        lambda e, lineage: got.append((clock.monotonic(), len(e["Records"]))),
        EsmSettings(),
    )
    session = boto3.Session(region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    InProcessTransport(ServiceEndpoint(SqsWire(sqs))).attach(session)
    client = session.client("sqs", endpoint_url="http://127.0.0.1:9")
    url = client.get_queue_url(QueueName=queue.name, QueueOwnerAWSAccountId=ACCOUNT)["QueueUrl"]
    start = clock.monotonic()
    answer = client.send_message_batch(
        QueueUrl=url,
        Entries=[{"Id": "0", "MessageBody": "a", "DelaySeconds": 30}, {"Id": "1", "MessageBody": "b"}],
    )
    assert [s["Id"] for s in answer["Successful"]] == ["0", "1"] and not answer.get("Failed")
    clock.sleep(60)
    assert got == [(start, 1), (start + 30, 1)]  # no window configured: at once, as each becomes visible
    with pytest.raises(ClientError) as missing:
        client.get_queue_url(QueueName="nope")
    assert missing.value.response["Error"]["Code"] == "AWS.SimpleQueueService.NonExistentQueue"
    with pytest.raises(ClientError, match="DelaySeconds"):
        client.send_message(QueueUrl=url, MessageBody="c", DelaySeconds=901)
    entries: Any = [{"Id": str(n), "MessageBody": "d"} for n in range(11)]
    with pytest.raises(ClientError, match="TooManyEntries"):
        client.send_message_batch(QueueUrl=url, Entries=entries)


def test_on_a_real_clock_over_http() -> None:
    clock = RealClock()
    sqs = SqsService(clock, ACCOUNT, REGION)
    queue = sqs.create_queue("EcrFleetAuth-Queue", visibility_timeout=60)
    delivered = threading.Event()
    mapping = EventSourceMapping(
        clock,
        sqs,
        queue,
        lambda e, lineage: delivered.set() or {"batchItemFailures": []},
        EsmSettings(10, 0, 2, True),
    )
    server = LoopbackServer(ServiceEndpoint(SqsWire(sqs))).start()
    try:
        client = boto3.client(
            "sqs",
            endpoint_url=server.url,
            region_name=REGION,
            aws_access_key_id="x",
            aws_secret_access_key="x",
        )
        url = client.get_queue_url(QueueName=queue.name)["QueueUrl"]
        sent = time.monotonic()
        client.send_message(QueueUrl=url, MessageBody="{}", DelaySeconds=1)
        assert delivered.wait(10)
        assert time.monotonic() - sent >= 1
        deadline = time.monotonic() + 5
        while queue.messages and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not queue.messages and len(mapping.invocations) == 1
    finally:
        server.stop()
        clock.close()


class LoopingFunction:
    """A function that sends every record it gets back to its own queue, through boto3 as code inside
    Lambda does: botocore's ``add_recursion_detection_header`` adds the invocation's
    ``_X_AMZN_TRACE_ID`` (with ``AWS_LAMBDA_FUNCTION_NAME`` set) to the SendMessage request."""

    def __init__(self, clock: SimulatedClock, sqs: SqsService, monkeypatch: pytest.MonkeyPatch) -> None:
        self.clock, self.monkeypatch = clock, monkeypatch
        session = boto3.Session(region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
        InProcessTransport(ServiceEndpoint(SqsWire(sqs))).attach(session)
        self.client = session.client("sqs", endpoint_url="http://127.0.0.1:9")
        self.lineages: list[str] = []
        self.loops_left: dict[str, int] = {}  # body -> how many more times to send it back (default: always)

    def __call__(self, event: dict[str, Any], *, lineage: str) -> dict[str, Any]:
        self.lineages.append(lineage)
        self.monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "looping")
        self.monkeypatch.setenv("_X_AMZN_TRACE_ID", f"Root=1-00000000-{'0' * 24};Sampled=0;Lineage={lineage}")
        for record in event["Records"]:
            left = self.loops_left.get(record["body"], 1_000_000)
            if left > 0:
                self.loops_left[record["body"]] = left - 1
                url = self.client.get_queue_url(QueueName=record["eventSourceARN"].rsplit(":", 1)[-1])[
                    "QueueUrl"
                ]
                self.client.send_message(QueueUrl=url, MessageBody=record["body"], DelaySeconds=5)
        return {"batchItemFailures": []}


def looping(
    monkeypatch: pytest.MonkeyPatch, recursive_loop: str = "Terminate", max_receive_count: int = 5
) -> tuple[SimulatedClock, SqsService, EventSourceMapping, LoopingFunction]:
    clock = SimulatedClock()
    sqs = SqsService(clock, ACCOUNT, REGION)
    dead = sqs.create_queue("dead-letters")
    queue = sqs.create_queue(
        "loop", visibility_timeout=60, dead_letters=dead, max_receive_count=max_receive_count
    )
    function = LoopingFunction(clock, sqs, monkeypatch)
    settings = EsmSettings(10, 0, 2, True, recursive_loop=recursive_loop, function="0a1b2c3d")
    return clock, sqs, EventSourceMapping(clock, sqs, queue, function, settings), function


def test_lambda_stops_the_16th_invocation_of_a_chain_and_the_message_waits_for_the_dead_letters(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Lambda Developer Guide, "Use Lambda recursive loop detection to prevent infinite loops": "If your
    function is invoked approximately 16 times in the same chain of requests, then Lambda automatically
    stops the next function invocation" (HARSHER: the 16th is stopped); it "returns a
    RecursiveInvocationException to the event source mapping. This increments the receiveCount value on
    the message. Lambda continues to retry the message, and continues to block function invocations,
    until Amazon SQS determines that the maxReceiveCount is exceeded and sends the message to the
    configured dead-letter queue." boto/boto3#3899: "stops after 16 (sixteen) calls"."""
    clock, sqs, mapping, function = looping(monkeypatch)
    sqs.send(mapping.queue, "from EventBridge")  # no trace header: a chain starts here
    clock.sleep(15 * 5 + 10)

    ran = [i for i in mapping.invocations if not i.stopped]
    assert [i.lineage for i in ran] == list(range(1, 16))
    assert function.lineages[-1].endswith(":0a1b2c3d:15")
    stopped = [i for i in mapping.invocations if i.stopped]
    assert stopped[0].lineage == 16 and stopped[0].error == "RecursiveInvocationException"
    # The stopped message stays, is received again after each visibility timeout, stopped again...
    clock.sleep(5 * mapping.queue.visibility_timeout + 10)
    assert len(function.lineages) == 15  # never invoked again
    assert mapping.recursive_invocations_dropped == 5 == mapping.queue.max_receive_count
    assert mapping.queue.messages == [] and len(mapping.queue.dead_letters.messages) == 1  # type: ignore[union-attr]
    dead = mapping.queue.dead_letters.messages[0]  # type: ignore[union-attr]
    assert dead.body == "from EventBridge" and "Lineage=1:0a1b2c3d:15" in (dead.trace_header or "")


def test_a_function_that_says_recursive_loop_allow_is_not_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    """ "If your design intentionally uses a recursive loop, you can configure a Lambda function to allow
    it to be invoked recursively" (RecursiveLoop: Allow); "the CloudWatch metric
    RecursiveInvocationsDropped isn't emitted" then (same guide)."""
    clock, sqs, mapping, function = looping(monkeypatch, recursive_loop="Allow")
    function.loops_left["from EventBridge"] = 29
    sqs.send(mapping.queue, "from EventBridge")
    clock.sleep(40 * 5)

    assert [i.lineage for i in mapping.invocations] == list(range(1, 31))
    assert mapping.recursive_invocations_dropped == 0 and not any(i.stopped for i in mapping.invocations)


def test_a_batch_mixing_chains_continues_the_longest_and_is_stopped_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """AWS does not say how a batch of records from several chains counts: HARSHER, the invocation
    continues the longest chain (whatever it sends carries that count) and a stop holds back every
    record of the batch."""
    clock, sqs, mapping, function = looping(monkeypatch)
    function.loops_left.update({"old": 0, "older": 0, "fresh": 1, "also fresh": 0})
    chain = "Root=1-00000000-000000000000000000000000;Lineage=1:0a1b2c3d:"
    sqs.send(mapping.queue, "old", trace_header=chain + "14")
    sqs.send(mapping.queue, "fresh")
    clock.sleep(1)
    (first,) = mapping.invocations
    assert first.lineage == 15 and first.records == 2  # the fresh event joined the old chain...
    (put_back,) = mapping.queue.messages
    assert put_back.body == "fresh" and (put_back.trace_header or "").endswith(":15")  # ...and carries it on
    clock.sleep(10)
    assert mapping.invocations[1].stopped and mapping.invocations[1].lineage == 16

    sqs.send(mapping.queue, "older", trace_header=chain + "15")
    sqs.send(mapping.queue, "also fresh")
    clock.sleep(1)
    together = mapping.invocations[2]
    assert (together.records, together.lineage, together.stopped) == (2, 16, True)
    assert {m.body for m in mapping.queue.messages} == {"fresh", "older", "also fresh"}  # all held back
    assert len(function.lineages) == 1


def test_the_trace_header_travels_from_botocore_through_sqs_into_the_record(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SQS keeps the sender's X-Amzn-Trace-Id as the AWSTraceHeader system attribute and Lambda hands it
    back in the record's attributes; an explicit MessageSystemAttributes.AWSTraceHeader wins (SQS API
    reference, SendMessage)."""
    clock, sqs, mapping, function = looping(monkeypatch)
    function.loops_left["x"] = 1
    sqs.send(mapping.queue, "x")
    clock.sleep(1)
    (message,) = mapping.queue.messages
    assert message.trace_header is not None and message.trace_header.endswith(";Lineage=1:0a1b2c3d:1")
    record = mapping._record(message)
    assert record["attributes"]["AWSTraceHeader"] == message.trace_header
    url = function.client.get_queue_url(QueueName="loop")["QueueUrl"]
    function.client.send_message(
        QueueUrl=url,
        MessageBody="y",
        MessageSystemAttributes={"AWSTraceHeader": {"DataType": "String", "StringValue": "Root=explicit"}},
        MessageAttributes={"looks": {"DataType": "Number", "StringValue": "3"}},
    )
    sent = mapping.queue.messages[-1]
    assert sent.trace_header == "Root=explicit"
    assert mapping._record(sent)["messageAttributes"]["looks"]["stringValue"] == "3"
