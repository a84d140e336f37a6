"""Deployment: the simulator's pieces wired into an account and the product run on it.

- ``simulated_account``: EC2 + SSM Run Command of one account, served in-process or over HTTP;
- ``in_process_runner``: the real runner handler called in this process against it (runner tests, benchmarks);
- ``local_services``: moto (ECR, STS, SNS, SQS), the registry and the proxy on loopback;
- ``local_fleet``: all of it with sandboxed instances and the runner started as Lambda starts it;
- ``demo``: ``make demo``;
- ``single_instance``: one sandboxed instance with its servers, the agent's test bed.
"""
