"""Running the suite in parallel (pytest-xdist, ``-n 4 --dist loadgroup``): what stays together,
what starts first, and what the workers of one run share.

* **Together**: a test module whose tests share a fixture wider than a test (module, class or
  package scope: a sandboxed world of servers, a local fleet, a synthesized stack) is one group,
  so the fixture is built once, on one worker, as in a serial run. The modules that synthesize a
  stack in this process (they hold ``synthesize``), the end-to-end ones aside, are one group
  together: a process's first synthesis starts the CDK's node runtime and loads the construct
  library (seconds of CPU), the next ones cost a fraction of that. Every other test is scheduled
  on its own.
* **First**: the groups that take longest start first, and the single tests that are long
  (``LONG_FIXTURES``) with the groups, so that the end of the run is the many short tests spread over
  the workers rather than one long module (or test) on one of them. The order is
  fixed (``START_ORDER``, then the collection's).
* **Shared**: what each worker would otherwise build alike — the default stack's synthesis — is
  built once per run by whichever worker asks first (``once_per_run``) and read by the others.

xdist's own ``loadgroup`` reads ``xdist_group`` marks through the test ids, which pytest 9.2 no
longer lets a plugin change (pytest-xdist issue 1386: the marks are silently ignored). So the
workers write the groups of their collection to a file the controller names
(``configure_node``), and ``GroupScheduling`` — xdist's scope scheduler — reads its units from
it. The order is the same with or without xdist: a serial run (``-n 0``) runs the tests in the
order the workers are handed them.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from xdist.remote import Producer
from xdist.scheduler import LoadScopeScheduling
from xdist.workermanage import WorkerController

from localfleet.synthesized_stack import synthesize

# Where a group starts: the end-to-end scenarios first (they wait in real time for queues, batching
# windows, readiness bounds and the runner's polls, so they are long however idle the machine is), then
# the agent's modules (a sandboxed world each, CPU-heavy: real docker, AWS CLI, agent), then the
# in-process synthesizers (several modules), then every other group, then single tests.
START_ORDER = ("tests/e2e/", "tests/agent/")
WIDE_SCOPES = frozenset({"module", "class", "package"})
# Tests each long enough to lengthen the run's end (an organization's state machine, 103 pairs on the
# simulated clock): they start with the groups, each on its own so the workers share them.
LONG_FIXTURES = frozenset({"run"})
SYNTHESIS_GROUP = "cdk-synthesis-in-process"
GROUPS_FILE_INPUT = "test_groups_file"  # the key in each worker's workerinput


def _shares_a_wide_fixture(item: pytest.Item) -> bool:
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return False
    return any(
        definition.scope in WIDE_SCOPES
        for definitions in info.name2fixturedefs.values()
        for definition in definitions
    )


def _uses_a_long_fixture(item: pytest.Item) -> bool:
    info = getattr(item, "_fixtureinfo", None)
    return info is not None and not LONG_FIXTURES.isdisjoint(info.names_closure)


def _synthesizes_in_process(item: pytest.Item) -> bool:
    module = getattr(item, "module", None)
    return module is not None and any(value is synthesize for value in vars(module).values())


def _module_of(item: pytest.Item) -> str:
    return item.nodeid.split("::", 1)[0]


def _folder_rank(module: str) -> int:
    for position, folder in enumerate(START_ORDER):
        if module.startswith(folder):
            return position
    return len(START_ORDER)


def group_and_order(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Put the long groups first; in an xdist worker, write every grouped test's group for the controller."""
    groups: dict[str, str] = {}  # module -> its group
    for item in items:
        module = _module_of(item)
        if _synthesizes_in_process(item) and _folder_rank(module) == len(START_ORDER):
            groups[module] = SYNTHESIS_GROUP
        elif _shares_a_wide_fixture(item):
            groups.setdefault(module, module)

    def rank(item: pytest.Item) -> int:
        group = groups.get(_module_of(item))
        if group is None:
            return len(START_ORDER) + (1 if _uses_a_long_fixture(item) else 2)
        if group == SYNTHESIS_GROUP:
            return len(START_ORDER)
        folder_rank = _folder_rank(_module_of(item))
        return folder_rank if folder_rank < len(START_ORDER) else len(START_ORDER) + 1

    items.sort(key=rank)  # stable: a module's tests keep their order
    target = getattr(config, "workerinput", {}).get(GROUPS_FILE_INPUT)
    if target is not None:
        by_test = {item.nodeid: groups[_module_of(item)] for item in items if _module_of(item) in groups}
        partial = Path(f"{target}.{os.getpid()}")
        partial.write_text(json.dumps(by_test), encoding="utf-8")
        partial.replace(target)  # every worker writes the same: the last one stays


def configure_node(node: WorkerController) -> None:
    """Controller: tell the worker where to write its groups (in the run's base temp)."""
    node.workerinput[GROUPS_FILE_INPUT] = str(_groups_file(node.config))


def _groups_file(config: pytest.Config) -> Path:
    # The run's base temp, where xdist itself puts the workers' (popen-gw0, ...).
    return Path(config._tmp_path_factory.getbasetemp()) / "xdist-groups.json"  # type: ignore[attr-defined]


def make_scheduler(config: pytest.Config, log: Producer) -> GroupScheduling | None:
    """Controller: ``GroupScheduling`` for ``--dist loadgroup``; xdist's own for any other mode."""
    if config.getvalue("dist") != "loadgroup":
        return None
    return GroupScheduling(config, log, _groups_file(config))


class GroupScheduling(LoadScopeScheduling):
    """xdist's scope scheduler, its units being the groups the workers wrote (a test of no group
    is a unit of its own), in the collection's order.

    A worker runs a test only once it holds the next one (its fixtures' teardown depends on
    it), so xdist tops every worker up to more than two pending tests. At the start, a worker
    handed a one-test group (an end-to-end scenario) would so take the next group too and run it
    only after the scenario: the top-ups of the start come from the end of the queue (single
    tests) instead."""

    def __init__(self, config: pytest.Config, log: Producer, groups_file: Path) -> None:
        super().__init__(config, log)
        config.option.loadscopereorder = False  # the collection's order is the plan
        self._groups_file = groups_file
        self._groups: dict[str, str] | None = None
        self._starting = False

    def _split_scope(self, nodeid: str) -> str:
        if self._groups is None:  # every worker has collected (and written) by the first call
            self._groups = json.loads(self._groups_file.read_text(encoding="utf-8"))
        return self._groups.get(nodeid, nodeid)

    def schedule(self) -> None:
        self._starting = self.collection is None
        try:
            super().schedule()
        finally:
            self._starting = False

    def _assign_work_unit(self, node: WorkerController) -> None:
        topping_up = self._starting and bool(self.assigned_work.get(node))
        scope, work_unit = self.workqueue.popitem(last=topping_up)
        self.assigned_work.setdefault(node, {})[scope] = work_unit
        collection = self.registered_collections[node]
        node.send_runtest_some([collection.index(nodeid) for nodeid, done in work_unit.items() if not done])


def shared_run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path | None:
    """The folder all xdist workers of this run share (the run's base temp), or None in a serial run."""
    if os.environ.get("PYTEST_XDIST_WORKER") is None:
        return None
    return tmp_path_factory.getbasetemp().parent


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def once_per_run(
    tmp_path_factory: pytest.TempPathFactory, name: str, key: object, produce: Callable[[Path], object]
) -> tuple[object, Path]:
    """``produce(folder)`` once per run for ``(name, key)``: its JSON-able result and the folder it wrote.

    In a serial run it simply runs, in a fresh temp folder. Under xdist the first worker to ask
    runs it in a folder of the run's shared temp (others wait on a file lock) and records its
    result beside it; every other worker reads that result and uses the same folder, read-only.
    A worker that fails leaves no record, so the next one to ask tries again (and fails alike)."""
    shared = shared_run_dir(tmp_path_factory)
    if shared is None:
        folder = tmp_path_factory.mktemp(name)
        return produce(folder), folder
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    folder = shared / f"{name}-{digest}"
    record = shared / f"{name}-{digest}.json"
    with _locked(shared / f"{name}-{digest}.lock"):
        if not record.exists():
            shutil.rmtree(folder, ignore_errors=True)  # what a worker that failed left
            folder.mkdir()
            written = record.with_suffix(".partial")
            written.write_text(json.dumps(produce(folder)), encoding="utf-8")
            written.replace(record)
        return json.loads(record.read_text(encoding="utf-8")), folder
