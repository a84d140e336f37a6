"""Lambda's side: ``environment`` (a cold start of the asset), ``in_process`` (the context of a handler
called in this process), ``xray_daemon``, ``event_source_mapping`` (SQS batches to a function) and
``recursion`` (recursive loop detection)."""
