"""Placeholder agent (replaced by the real one)."""
import json
import os

print(json.dumps({"schema": 1, "action": os.environ.get("SSM_Action"), "outcome": "skipped",
                  "reason": "not_implemented", "message": "placeholder"}))
