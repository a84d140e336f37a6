"""The interpreter's ``lambda:Invoke`` answered by functions of this world: the wire of a Lambda task.

moto's Amazon States Language interpreter calls Lambda for every Lambda task (both forms: the
``arn:aws:states:::lambda:invoke`` integration and a function ARN as ``Resource``) with a boto3
client it makes per call (``moto/stepfunctions/parser/asl/utils/boto_client.py``): on boto3's
default session, with no endpoint in this process (``mock_aws``: its stubber answers), else at
``http://localhost:$MOTO_PORT``. moto's own Lambda would need docker, so ``LambdaTasks`` answers
Invoke itself, as Lambda answers it (Invoke API reference; Lambda Developer Guide, "AWS Lambda
function errors in Python"):

* ``POST /2015-03-31/functions/<name or ARN>/invocations``: 200 with the function's result as
  JSON; a function that raised: 200 with ``X-Amz-Function-Error: Unhandled`` and the Python
  runtime's error document (``errorMessage``, ``errorType``, ``requestId``, ``stackTrace``), whose
  ``errorType`` Step Functions makes the state's Error (what a Catch matches); an unknown function:
  404 ``ResourceNotFoundException``;
* in this process, at ``before-send.lambda`` on boto3's default session (``attach``: more specific
  than moto's catch-all ``before-send``, through ``transport.botocore_in_process``); over HTTP,
  ``stepfunctions.server`` puts ``answer`` in front of moto's server application, which answers
  everything else.

A function is any callable of the event: the runner called in this process, or started in a
Lambda runtime of its own (``localfleet.lambda_runtime``), which raises ``Unhandled`` with what its
handler raised.
"""

from __future__ import annotations

import json
import re
import threading
import traceback
import uuid
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

import boto3
from botocore.awsrequest import AWSPreparedRequest, AWSResponse

from ...transport.botocore_in_process import botocore_response, request_body

Function = Callable[[Any], Any]
INVOKE_PATH = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/invocations$")


class Unhandled(Exception):
    """What a function run elsewhere raised, as Lambda reports it (``errorType``, ``errorMessage``)."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type


def function_name(name_or_arn: str) -> str:
    """``my-function`` from its name or (partial, qualified) ARN: ``...:function:my-function:1``."""
    if ":function:" in name_or_arn:
        return name_or_arn.split(":function:", 1)[1].split(":", 1)[0]
    return name_or_arn.split(":", 1)[0]


class LambdaTasks:
    """Invoke, answered by ``functions`` (by function name); ``invocations`` records each (name, event)."""

    def __init__(self, functions: Mapping[str, Function]) -> None:
        self.functions = dict(functions)
        self.invocations: list[tuple[str, Any]] = []
        self._lock = threading.Lock()

    def answer(self, method: str, path: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
        """The HTTP status, headers and body Lambda gives this request."""
        matched = INVOKE_PATH.match(unquote(path.split("?", 1)[0]))
        if method != "POST" or matched is None:
            return _error(400, "InvalidRequestContentException", f"not an Invoke request: {method} {path}")
        name = function_name(matched["name"])
        function = self.functions.get(name)
        if function is None:
            return _error(404, "ResourceNotFoundException", f"Function not found: {matched['name']}")
        event = json.loads(body or b"null")
        with self._lock:
            self.invocations.append((name, event))
        headers = {"Content-Type": "application/json", "X-Amz-Executed-Version": "$LATEST"}
        try:
            return 200, headers, json.dumps(function(event)).encode()
        except Exception as error:  # the function's error, as the Python runtime reports it
            headers["X-Amz-Function-Error"] = "Unhandled"
            document = {
                "errorMessage": str(error),
                "errorType": error.error_type if isinstance(error, Unhandled) else type(error).__name__,
                "requestId": str(uuid.uuid4()),
                "stackTrace": traceback.format_tb(error.__traceback__),
            }
            return 200, headers, json.dumps(document).encode()

    # --- in this process ------------------------------------------------------------------------
    def attach(self) -> None:
        """Answer the interpreter's Invoke calls in this process (after ``mock_aws`` has started: it
        makes a new default session)."""
        if boto3.DEFAULT_SESSION is None:
            boto3.setup_default_session()
        assert boto3.DEFAULT_SESSION is not None
        answer: Callable[..., Any] = self._before_send
        boto3.DEFAULT_SESSION.events.register("before-send.lambda", answer)

    def detach(self) -> None:
        if boto3.DEFAULT_SESSION is not None:
            answer: Callable[..., Any] = self._before_send
            boto3.DEFAULT_SESSION.events.unregister("before-send.lambda", answer)

    def _before_send(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse:
        path = urlsplit(request.url).path
        return botocore_response(request, *self.answer(request.method or "POST", path, request_body(request)))


def _error(status: int, code: str, message: str) -> tuple[int, dict[str, str], bytes]:
    headers = {"Content-Type": "application/json", "x-amzn-ErrorType": code}
    return status, headers, json.dumps({"Type": "User", "message": message}).encode()
