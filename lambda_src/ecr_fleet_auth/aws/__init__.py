"""The AWS adapters: boto3 clients, and one class per concern that calls them (paginators inside,
domain objects out): EC2 and SSM discovery, Run Command, Compliance, the claim table, the runs
bucket, SNS publishing, the organization's stack instances.

Imports only ``shared`` (tests/test_layout.py)."""
