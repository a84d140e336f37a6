"""Instance events (``triggers.handle``): EventBridge's events of new instances, read, triaged and
claimed, then covered by a run of the ``run`` layer.

Imports only ``run``, ``aws`` and ``shared`` (tests/test_layout.py)."""
