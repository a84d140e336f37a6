"""EC2, simulated: the instance inventory (``inventory``) and DescribeInstances in EC2's query protocol
(``query_protocol``), served in-process or over HTTP by ``localfleet.transport``."""

from .inventory import Ec2Instance, Ec2Inventory
from .query_protocol import Ec2Wire

__all__ = ["Ec2Instance", "Ec2Inventory", "Ec2Wire"]
