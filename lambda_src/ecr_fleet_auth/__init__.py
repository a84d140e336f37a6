"""The runner: plans, sends and reports a remediation over SSM Run Command (handler.py is its entry)."""
