"""STS, simulated: AssumeRole refused as AWS refuses it (``localfleet.iam``'s identities, roles and
regions), otherwise answered by moto's STS (``responses``: ``StsGate``)."""

from .responses import StsGate

__all__ = ["StsGate"]
