"""Who signs requests (access key -> account and principal), which roles exist and whom they trust,
which regions each account has enabled; STS's AssumeRole checked against all of it before moto's."""

from .identities import Identities, Principal, RegionNotEnabled, UnknownCredentials
from .sts import StsGate

__all__ = ["Identities", "Principal", "RegionNotEnabled", "StsGate", "UnknownCredentials"]
