"""The simulated services composed into what the product is deployed on, read from its template.

- ``simulated_account``: EC2 + SSM Run Command (+ SQS, the claim table) of one account and region,
  served in-process or over HTTP;
- ``simulated_organization``: accounts x regions, each a ``SimulatedAccount``, with STS (moto's,
  gated), StackSets and routing by credentials and region;
- ``new_instance_delivery``: the stack's rules, queue and event source mapping (EventBridge -> SQS
  -> Lambda), and its own event bus for an organization's members;
- ``member_forwarding``: a member stack's rules forwarding its events to the central bus.
"""

from .new_instance_delivery import NewInstanceDelivery

__all__ = ["NewInstanceDelivery"]
