"""moto's server, its ECR authorization tokens valid 12 hours from now, as ECR's are.

moto's GetAuthorizationToken answers every token with ``expiresAt`` 2015-01-01 (moto/ecr/responses.py):
an agent that records the token's expiry then reports every stored login expired. ECR: "The authorization
token is valid for 12 hours" (Amazon ECR API Reference, GetAuthorizationToken). Run as moto_server is:
``python moto_ecr_server.py -H 127.0.0.1 -p PORT [-c CERT -k KEY]``.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from moto.ecr.responses import ECRResponse
from moto.server import main

TOKEN_VALIDITY = timedelta(hours=12)
_moto_answer = ECRResponse.get_authorization_token


def get_authorization_token(self: ECRResponse) -> Any:
    answer = _moto_answer(self)
    expires_at = datetime.now(UTC) + TOKEN_VALIDITY
    result = cast("dict[str, list[dict[str, Any]]]", answer.result)
    for entry in result["authorizationData"]:
        entry["expiresAt"] = expires_at
    return answer


ECRResponse.get_authorization_token = get_authorization_token  # type: ignore[method-assign]

if __name__ == "__main__":
    main(sys.argv[1:])
