"""The suite in two pytest-xdist workers with the studies on one of them (`make test`: -n 2).

Every test that starts a study, reads the session's study or changes what a study sees (a
cgroup a dead run left, THP) must run alone among those: two studies at once measure each
other and fight over THP and cgroups. Under xdist they all go to one worker, one after another
in collection order, while the other worker takes the unit tests module by module; the
studies' waiting (most of their time) no longer holds the unit tests up.

xdist's own `--dist loadgroup` would do this from an `xdist_group` mark, but it tags the test
ids by writing a private attribute that pytest 9 no longer reads, so the group silently falls
apart (tests/test_suite_groups.py catches that). Here the workers, which collect the tests,
write the ids of those on the machine to a file the controller named, and the controller's
scheduler reads it when it splits the tests into units of work.

A test that is not on the machine must never start a study, or it may run beside one (and one
did: a Ctrl-C test on the unit worker left THP off behind a study that had put it back). So
while such a test runs, $ALLOCSTUDY_LOCK names a lock in a folder that does not exist: a study
it starts fails as it opens the lock, every time and at once (also with --wait), and the
folder's name says what to do.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

__all__ = ["MACHINE", "MachineGroup", "on_the_machine", "reading_modules", "worker"]

#: The unit of work of every test on the machine.
MACHINE = "machine"
_IDS = "allocstudy_machine_ids"
#: The folder of the lock a study started by a test off the machine cannot open.
OFF_THE_MACHINE = "started-by-a-test-not-on-the-machine--mark-it-real_run"


def reading_modules(items: Iterable[pytest.Item]) -> set[object]:
    """The modules with a test that reads the session's study (the `tiny_run` fixture)."""
    return {i.module for i in items if "tiny_run" in getattr(i, "fixturenames", ())}


def on_the_machine(item: pytest.Item, reading: set[object]) -> bool:
    """Whether the test starts a study, reads the session's (its module is in `reading`), or
    is marked `machine`."""
    if getattr(item, "module", None) in reading:
        return True
    return any(item.get_closest_marker(name) for name in ("real_run", "machine"))


def worker(config: pytest.Config) -> bool:
    """Whether this process is one of xdist's workers."""
    return hasattr(config, "workerinput")


def _write_ids(path: Path, ids: Iterable[str]) -> None:
    """Each worker collects the same tests and writes the same list: a rename keeps any
    reader from seeing half of one."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}")
    tmp.write_text("".join(f"{i}\n" for i in ids))
    tmp.replace(path)


class MachineGroup:
    """The plugin: in each worker it notes the tests on the machine; in the controller it
    gives each worker the file to note them in and schedules them as one unit."""

    def __init__(self, folder: Path) -> None:
        self.ids_file = folder / "machine-tests.txt"
        self.no_lock = folder / OFF_THE_MACHINE / "run.lock"
        self.machine: frozenset[str] = frozenset()

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> Iterator[None]:
        if item.nodeid in self.machine:
            yield
            return
        before = os.environ.get("ALLOCSTUDY_LOCK")
        os.environ["ALLOCSTUDY_LOCK"] = str(self.no_lock)
        try:
            yield
        finally:
            if before is None:
                os.environ.pop("ALLOCSTUDY_LOCK", None)
            else:
                os.environ["ALLOCSTUDY_LOCK"] = before

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: object) -> None:
        node.workerinput[_IDS] = str(self.ids_file)  # type: ignore[attr-defined]

    @pytest.hookimpl(optionalhook=True, tryfirst=True)
    def pytest_xdist_make_scheduler(self, config: pytest.Config, log: object) -> object:
        from xdist.scheduler import LoadScopeScheduling

        ids_file = self.ids_file

        class MachineScheduling(LoadScopeScheduling):
            """xdist's load-by-scope scheduling, the scope of a test on the machine being
            MACHINE and any other's its module; the units go out in collection order, which
            puts the machine's first (tests/conftest.py), so its worker starts on them."""

            machine: frozenset[str] | None = None

            def _split_scope(self, nodeid: str) -> str:
                if self.machine is None:  # every worker wrote it before it reported
                    self.machine = frozenset(ids_file.read_text().split())
                return MACHINE if nodeid in self.machine else nodeid.split("::", 1)[0]

        config.option.loadscopereorder = False
        return MachineScheduling(config, log)

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]):
        reading = reading_modules(items)
        self.machine = frozenset(i.nodeid for i in items if on_the_machine(i, reading))
        if worker(config):
            _write_ids(Path(config.workerinput[_IDS]), sorted(self.machine))  # type: ignore[attr-defined]
