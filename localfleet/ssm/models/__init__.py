"""SSM Run Command's state and behaviour: ``service`` (the operations), ``engine`` (commands and
invocations on a clock), ``documents``, ``managed_nodes``, ``compliance_store``, ``agent_interface``."""
