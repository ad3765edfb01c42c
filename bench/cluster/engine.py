"""The Dask cluster a run submits its cells to: an existing scheduler, or a local one.

`--cluster tcp://host:8786` connects to a scheduler whose workers are the benchmark hosts
(docs/guide/cluster.md shows how to start them). `--cluster local` starts a LocalCluster on
this machine with one worker process of one thread that advertises what a benchmark host does
(bench.cluster.hosts.local_resources): the same code path as a real cluster, scheduler, TCP
and all, with one host. Dask is an optional extra (`pip install "allocstudy[cluster]"`,
which `make setup` installs); without it `--cluster` is one line and exit 2.

A host whose worker dies is not retried by Dask itself (`allowed-failures` 0 on the local
scheduler, and the guide asks the same of a real one): the run retries a cell once, elsewhere,
and counts a host's death as that cell's one failure.
"""

from __future__ import annotations

import logging
import shutil
import signal
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from bench.cluster.hosts import local_resources
from bench.errors import EXIT_CANNOT_RUN, EXIT_USAGE, UserError
from bench.scratch import scratch_dir

__all__ = [
    "ClusterError",
    "DaskMissing",
    "WORKER_WAIT_S",
    "connect",
    "hosts_offering",
    "require_dask",
    "wait_for_hosts",
]

#: How long a run waits for a worker offering what its cells ask before giving up.
WORKER_WAIT_S = 30.0

INSTALL_HINT = (
    '--cluster needs Dask distributed: install it with pip install "allocstudy[cluster]" '
    "(make setup does)"
)


class DaskMissing(UserError):
    """--cluster without dask.distributed installed: exit 2, with the command that fixes it."""

    exit_code = EXIT_USAGE


class ClusterError(UserError):
    """The scheduler cannot be reached, or no worker offers what the cells need: exit 1."""

    exit_code = EXIT_CANNOT_RUN


def require_dask() -> None:
    """DaskMissing unless dask.distributed can be imported."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise DaskMissing(INSTALL_HINT) from None


@contextmanager
def connect(address: str) -> Iterator[Any]:
    """A Dask client for `address` (`local`: a LocalCluster started here, closed after).

    The local cluster's processes start with SIGINT ignored: Ctrl-C in the terminal reaches
    the whole process group, and the client, not each worker, decides what it stops (the
    cells, through the run's stop event), then closes the cluster itself.
    """
    require_dask()
    import dask
    from distributed import Client, LocalCluster

    config: dict[str, Any] = {"distributed.scheduler.allowed-failures": 0}
    scratch = None
    if address == "local":  # every file the cluster writes goes here, removed with it
        scratch = str(scratch_dir("dask"))
        config["temporary-directory"] = scratch
    with dask.config.set(config):
        if address == "local":
            old = signal.signal(signal.SIGINT, signal.SIG_IGN)
            try:
                cluster = LocalCluster(
                    local_directory=scratch,
                    n_workers=1,
                    threads_per_worker=1,
                    processes=True,
                    resources=local_resources(),
                    # the scheduler's HTTP server starts whatever this says; None means
                    # port 8787, taken by any other Dask on the machine (a warning on
                    # stderr): a free loopback port instead
                    dashboard_address="127.0.0.1:0",
                    silence_logs=logging.CRITICAL,  # our own lines say what failed
                )
            finally:
                signal.signal(signal.SIGINT, old)
            client = Client(cluster)
        else:
            cluster = None
            try:
                client = Client(address, timeout=20)
            except (OSError, TimeoutError, ValueError) as exc:
                raise ClusterError(f"cannot reach the Dask scheduler at {address}: {exc}") from None
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def hosts_offering(client: Any, wanted: Mapping[str, float]) -> list[str]:
    """The addresses of the workers that offer every resource in `wanted`."""
    workers = client.scheduler_info(n_workers=-1)["workers"]
    return sorted(
        address
        for address, info in workers.items()
        if all((info.get("resources") or {}).get(k, 0) >= v for k, v in wanted.items())
    )


def wait_for_hosts(client: Any, wanted: Mapping[str, float], address: str) -> list[str]:
    """The workers offering `wanted`, waiting up to WORKER_WAIT_S for the first one to join
    (a local cluster's worker has joined already: no wait); ClusterError naming what is
    missing and how a host offers it."""
    patience = 0.0 if address == "local" else WORKER_WAIT_S
    deadline = time.monotonic() + patience
    while True:
        found = hosts_offering(client, wanted)
        if found or time.monotonic() >= deadline:
            break
        time.sleep(0.5)
    if not found:
        offered = " ".join(f"{k}={v:g}" for k, v in wanted.items())
        raise ClusterError(
            f"no worker of the cluster at {address} offers {', '.join(wanted)} after "
            f"{patience:.0f} s: start one per benchmark host with dask worker "
            f'SCHEDULER --nworkers 1 --nthreads 1 --resources "{offered}"'
        )
    return found
