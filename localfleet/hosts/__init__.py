"""Simulated hosts: what runs a Run Command step on an instance, and the instances themselves.

- ``executors``: ``CannedExecutor`` (a fixed result lasting a while on the engine's
  clock) and ``SubprocessExecutor`` (the script on this machine, as the agent runs it);
- ``canned_agent``: the product's agent played from a test's choice of outcome, with its lock;
- ``overlay_sandbox``: a throwaway root in private namespaces; ``provisioning``: making
  it an instance (users, AWS CLI, CA, /etc/hosts) and running a step as SSM does;
  ``sandbox_instance``: an instance of the local fleet, an executor over its sandbox;
- ``registry_server`` and ``servers/``: the registry, certificates, proxy and mirror hosts talk to.
"""
