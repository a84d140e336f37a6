"""Harnesses: the product run on the simulated services, for tests, benchmarks and the demo.

- ``in_process_runner``: the real runner handler called in this process against a simulated
  account (runner tests, benchmarks); ``in_process_state_machine``: the stack's state machine on
  moto's interpreter, its tasks reaching that handler;
- ``local_services``: moto (ECR, STS, SNS, SQS), the registry and the proxy on loopback;
- ``local_fleet``: all of it with sandboxed instances and the runner started as Lambda starts it
  (``make demo``, end-to-end tests);
- ``single_instance``: one sandboxed instance with its servers, the agent's test bed.
"""
