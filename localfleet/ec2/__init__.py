"""EC2, simulated: the instance inventory (``models``) and DescribeInstances in EC2's query protocol
(``responses``), served in-process or over HTTP by ``localfleet.transport``."""

from .models import Ec2Instance, Ec2Inventory
from .responses import Ec2Wire

__all__ = ["Ec2Instance", "Ec2Inventory", "Ec2Wire"]
