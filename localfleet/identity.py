"""The simulated world's home account and region: the one place they are written.

``ACCOUNT`` is moto's default account (what its servers answer as when ``MOTO_ACCOUNT_ID`` is not
set): the runner's own account, home of the local fleet's other services. ``REGION`` is the region
every simulated service, the runner and the instances use.
"""

from __future__ import annotations

REGION = "eu-west-1"
ACCOUNT = "123456789012"


def registry_name(account: str, region: str = REGION) -> str:
    """The account's private ECR registry in ``region`` (the aws partition's DNS suffix, as every
    simulated region is one of its)."""
    return f"{account}.dkr.ecr.{region}.amazonaws.com"
