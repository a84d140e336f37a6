"""`make bench`: every benchmark, figures printed (not part of `make test`).

Options after a benchmark's name go to that benchmark, e.g.
`make bench BENCH="new_instances --seed 2 --instances 2000"`;
`python -m bench new_instances --help` lists them.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import sys

BENCHMARKS = {
    "agent": "bench.agent_bench",
    "runner": "bench.runner_bench",
    "emulator": "bench.emulator_bench",
    "new_instances": "bench.new_instances_bench",
    "organization": "bench.organization_bench",
}


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        usage="%(prog)s [-h] [NAME ...] [NAME OPTION ...]",
    )
    parser.add_argument("names", nargs="*", help=f"which to run: {', '.join(BENCHMARKS)} (default: all)")
    arguments = sys.argv[1:]
    # The benchmark names come first; from the first option on, the arguments belong to the last
    # name (a lone -h/--help before any name is ours).
    first_option = next((i for i, arg in enumerate(arguments) if arg.startswith("-")), len(arguments))
    if first_option == 0:
        parser.parse_args(arguments)  # --help, or an error for an option without a benchmark
    names = parser.parse_args(arguments[:first_option]).names or list(BENCHMARKS)
    options = arguments[first_option:]
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    modules = {name: importlib.import_module(BENCHMARKS[name]) for name in names}
    last = modules[names[-1]]
    if options and not inspect.signature(last.main).parameters:
        if set(options) <= {"-h", "--help"}:
            # A benchmark without options still answers --help: what it measures, and that it
            # takes no options.
            print(f"usage: python -m bench {names[-1]}\n\n{(last.__doc__ or '').strip()}\n")
            print(f"{names[-1]} takes no options.")
            return 0
        parser.error(f"benchmark {names[-1]} takes no options (given: {' '.join(options)})")
    for name in names:
        print(f"\n=== {name} benchmark ===", flush=True)
        if inspect.signature(modules[name].main).parameters:
            # Its own options only (none: its defaults); without a list it would parse this
            # process's arguments, the benchmark names among them.
            modules[name].main(options if name == names[-1] else [])
        else:
            modules[name].main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
