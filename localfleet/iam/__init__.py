"""IAM, simulated: who signs requests (access key -> account and principal), which roles exist and
whom they trust, which regions each account has enabled, and policies evaluated as IAM reads them
(``models``). STS's AssumeRole checks it (``localfleet.sts``)."""

from .models import Identities, Principal, RegionNotEnabled, UnknownCredentials

__all__ = ["Identities", "Principal", "RegionNotEnabled", "UnknownCredentials"]
