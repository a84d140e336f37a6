"""The state machine on moto's interpreter: ``machines`` (create, run, figures), ``lambda_tasks`` (its
Invoke answered by this world's functions), ``simulated_time``, ``runs_bucket``."""
