"""`make bench`: every benchmark, figures printed (not part of `make test`)."""

from __future__ import annotations

import argparse
import importlib
import sys

BENCHMARKS = {
    "agent": "bench.agent_bench",
    "runner": "bench.runner_bench",
    "emulator": "bench.emulator_bench",
    "new_instances": "bench.new_instances_bench",
    "organization": "bench.organization_bench",
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("names", nargs="*", help=f"which to run: {', '.join(BENCHMARKS)} (default: all)")
    names = parser.parse_args().names or list(BENCHMARKS)
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    for name in names:
        print(f"\n=== {name} benchmark ===", flush=True)
        importlib.import_module(BENCHMARKS[name]).main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
