"""A scheduled or manual run (``runner.run``) and its steps: planning, execution, results, progress;
an organization's run beyond one invocation, as the state machine's steps (``organization_run``).

Imports only ``aws`` and ``shared`` (tests/test_layout.py)."""
