"""`make demo` (``python -m demo``): the whole system on a local simulated fleet, no AWS account needed.

It uses the product (the synthesized stack, the runner as Lambda starts it, the agent), the simulator
(``localfleet``) and the operator's report table (``tools/invoke_runner.py``); nothing imports it.
"""
