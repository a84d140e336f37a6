"""Runs the agent: `python3 -m agent` here, and `python3 <the packed file>` on an instance (the
document's packing puts this file at the root of the zip application, beside the package)."""

import sys

from agent.main import main

if __name__ == "__main__":
    sys.exit(main())
