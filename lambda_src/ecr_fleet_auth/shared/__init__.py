"""What both paths share: the contract with the document and the agent, the settings, the events the
runner accepts and the report it gives, reasons and their next steps, partitions, time, observability.

Imports nothing from the other layers (tests/test_layout.py)."""
