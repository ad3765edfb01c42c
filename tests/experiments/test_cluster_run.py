"""`allocstudy run --cluster local`: the study through a real Dask scheduler and worker.

Every test here runs the real thing: a LocalCluster (scheduler, nanny and one worker process
advertising `bench_host=1`), real cells on it, the real service and allocators. The run (one
allocator of the suite's tiny spec: a service cell and two control cells) is compared with
the suite's local run of the same spec (the session's `tiny_run`).
"""

from __future__ import annotations

import os
import signal
import socket
import time
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from studyrun import TINY_SPEC, BackgroundRun, our_processes, run_cli, stray_cgroups

from bench.measure.machine import thp_mode
from bench.results.manifest import read_manifest
from bench.results.rundir import read_rows
from bench.results.tables import STORED_SCHEMAS, read_table

pytestmark = pytest.mark.real_run

pytest.importorskip("distributed", reason="dask[distributed] is not installed (make setup)")


@pytest.fixture(scope="module")
def cluster_run(tiny_spec: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A complete run of the suite's tiny spec with --cluster local, of one allocator (what
    a cell does is the same for every allocator; two would double the time)."""
    out = tmp_path_factory.mktemp("cluster-results")
    proc = run_cli(
        "run", str(tiny_spec), "--out", str(out), "--cluster", "local", "--only", CLUSTERED
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    run_dir = Path(proc.stdout.strip().splitlines()[-1])
    assert run_dir.parent == out / "tiny"
    return run_dir


#: The allocator the cluster run measures.
CLUSTERED = "jemalloc"


def _keys(rows: list[dict]) -> Counter:
    return Counter((r["allocator"], r.get("experiment"), r["repeat"]) for r in rows)


def test_a_local_cluster_run_has_the_tables_and_provenance_of_a_local_run(
    tiny_run: Path, cluster_run: Path
):
    local = {
        name: [r for r in rows if r["allocator"] == CLUSTERED]
        for name, rows in read_rows(tiny_run).items()
    }
    cluster = read_rows(cluster_run)
    for name, schema in STORED_SCHEMAS.items():  # the same files, column for column
        got = read_table(cluster_run / f"{name}.arrow", name).schema.remove_metadata()
        assert got.equals(schema), name
    assert _keys(cluster["summary"]) == _keys(local["summary"])
    assert _keys(cluster["control"]) == _keys(local["control"])
    for allocator in (CLUSTERED,):  # the same open-loop schedule and sampling
        for table in ("requests", "memory"):
            n_local = sum(r["allocator"] == allocator for r in local[table])
            n_cluster = sum(r["allocator"] == allocator for r in cluster[table])
            assert abs(n_cluster - n_local) <= 0.1 * n_local, (table, allocator)
    here = socket.gethostname()
    for name, rows in cluster.items():  # every row says where it was measured
        assert all(r["host"] == here for r in rows), name
    assert all(r["host"] == here for r in local["summary"])

    lm, cm = read_manifest(tiny_run), read_manifest(cluster_run)
    assert cm["status"] == "complete" and cm["spec_sha256"] == lm["spec_sha256"]
    assert set(lm) <= set(cm)
    assert cm["order"] == [
        {**o, "allocators": [a for a in o["allocators"] if a == CLUSTERED]} for o in lm["order"]
    ]
    assert cm["confounds"]["cgroup_mode"] == lm["confounds"]["cgroup_mode"]
    assert cm["method"] == lm["method"]
    local_records = {a["name"]: a for a in lm["allocators"]}
    assert [a["name"] for a in cm["allocators"]] == [CLUSTERED]
    for a_cluster in cm["allocators"]:
        a_local = local_records[a_cluster["name"]]
        assert a_cluster["name"] == a_local["name"] and a_cluster["status"] == "ok"
        for key in ("version", "expected_library", "sha256", "kind", "env"):
            assert a_cluster[key] == a_local[key], key
        for experiment in ("service", "control"):
            assert len(a_cluster["evidence"][experiment]) == len(a_local["evidence"][experiment])
            assert {p["phase"] for p in a_cluster["phases"][experiment]} == {
                p["phase"] for p in a_local["phases"][experiment]
            }
            assert len(a_cluster["wall_s"][experiment]) == len(a_local["wall_s"][experiment])
    (host,) = cm["hosts"]
    assert host == here
    fp = cm["hosts"][host]["fingerprint"]
    for key in ("cpu_model", "cores", "kernel", "glibc", "page_size", "cgroup_mode", "thp"):
        assert fp[key] is not None, key
    assert fp["python"] and fp["libraries"]["distributed"]
    assert len(cm["host_kinds"]) == 1
    assert cm["cluster"]["address"] == "local" and cm["cluster"]["workers"] == 1
    assert (cluster_run.parent / "latest").resolve() == cluster_run.resolve()

    def log_folders(run: Path) -> set[str]:  # the workers' own output, one folder a repeat
        return {p.parent.relative_to(run).as_posix() for p in run.glob(f"logs/{CLUSTERED}-*/*")}

    assert log_folders(cluster_run) == log_folders(tiny_run)


def test_cells_never_overlap_in_time_on_one_host(cluster_run: Path):
    m = read_manifest(cluster_run)
    cells = m["cells"]
    assert len(cells) == 1 + 2  # a service repeat, two control repeats
    assert all(c["status"] == "ok" and c["attempt"] == 1 for c in cells)
    by_worker: dict[str, list[dict]] = defaultdict(list)
    for c in cells:
        by_worker[c["worker"]].append(c)
    for worker, mine in by_worker.items():
        mine.sort(key=lambda c: c["started_unix"])
        for before, after in zip(mine, mine[1:], strict=False):
            assert after["started_unix"] >= before["finished_unix"], (worker, before, after)
    # and the phases inside each service cell lie within its cell's span
    for a in m["allocators"]:
        (service,) = [
            c for c in cells if c["allocator"] == a["name"] and c["experiment"] == "service"
        ]
        span = service["finished_unix"] - service["started_unix"]
        assert max(p["end_s"] for p in a["phases"]["service"]) <= span + 0.5


def _isolated(tmp_path: Path) -> dict[str, str]:
    tmp = tmp_path / "tmp"
    tmp.mkdir(exist_ok=True)
    return {**os.environ, "TMPDIR": str(tmp), "ALLOCSTUDY_JOURNAL": str(tmp_path / "j.json")}


@pytest.mark.slow  # 13 s; the retry plan: test_cluster_plan; failing alone: test_runner_faults
def test_a_failing_cell_is_tried_once_more_then_fails_its_allocator_alone(tmp_path: Path):
    broken = tmp_path / "libbroken.so"  # a damaged library on the host, as a user could have
    broken.write_bytes(b"not an ELF file")
    spec = tmp_path / "broken.yaml"
    spec.write_text(
        TINY_SPEC.replace(
            "allocators: [glibc, jemalloc]",
            f"allocators: [{{name: broken, library: {broken}}}, glibc]",
        ).replace("load_s: 5", "load_s: 2")
    )
    out = tmp_path / "results"
    proc = run_cli(
        "run", str(spec), "--out", str(out), "--no-control", "--cluster", "local", "--wait"
    )
    assert proc.returncode == 3, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert "trying it once more (no other host offers its kind)" in proc.stderr  # one host
    run_dir = Path(proc.stdout.strip().splitlines()[-1])
    m = read_manifest(run_dir)
    status = {a["name"]: a for a in m["allocators"]}
    assert status["broken"]["status"] == "failed"
    assert status["broken"]["reason"].startswith("verification: ld.so ignored the preload")
    assert status["glibc"]["status"] == "ok", status["glibc"]["reason"]
    attempts = [c for c in m["cells"] if c["allocator"] == "broken"]
    assert [c["attempt"] for c in attempts] == [1, 2]
    assert all(c["status"] == "failed" and "preload" in c["reason"] for c in attempts)
    assert m["status"] == "complete"
    rows = read_rows(run_dir)
    assert {r["allocator"] for r in rows["summary"]} == {"glibc"}


def _first_ok(run: BackgroundRun, names: tuple[str, ...], timeout: float) -> str | None:
    """The allocator whose "NAME: ok" line the run printed first; None after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and run.proc.poll() is None:
        for line in list(run.stderr):
            for name in names:
                if f"allocstudy: {name}: ok" in line:
                    return name
        time.sleep(0.1)
    return None


@pytest.mark.slow  # 38 s; Ctrl-C and --resume: test_runner, test_runner_faults
def test_ctrl_c_keeps_what_finished_leaves_no_process_and_resume_submits_the_rest(
    tmp_path: Path,
):
    spec = tmp_path / "stop.yaml"
    spec.write_text(TINY_SPEC.replace("load_s: 5", "load_s: 8"))
    out = tmp_path / "results"
    mark = f"{tmp_path.name}-cluster-int"
    env = _isolated(tmp_path)
    before = set(stray_cgroups())
    run = BackgroundRun(
        str(spec), "--out", str(out), "--no-control", "--cluster", "local", "--wait",
        env_mark=mark, env=env,
    )  # fmt: skip
    try:
        # Dask may run either cell first: stop the run in the load of the one after
        done = _first_ok(run, ("glibc", "jemalloc"), timeout=120)
        assert done is not None, "".join(run.stderr)[-2000:]
        (cut,) = {"glibc", "jemalloc"} - {done}
        assert run.wait_for(f"{cut} service: load", timeout=60), "".join(run.stderr)[-2000:]
        time.sleep(1)
        os.killpg(run.proc.pid, signal.SIGINT)  # Ctrl-C reaches the whole process group
        code, stdout, stderr = run.finish(timeout=120)
    finally:
        run.kill()
    assert code == 130, stderr[-2000:]
    assert "interrupted" in stderr and "Traceback" not in stderr
    deadline = time.monotonic() + 10
    while our_processes(mark) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert our_processes(mark) == []  # client, scheduler, nanny, worker, cell, service
    assert set(stray_cgroups()) == before
    assert list((tmp_path / "tmp").iterdir()) == []
    run_dir = Path(stdout.strip().splitlines()[-1])
    m = read_manifest(run_dir)
    assert m["status"] == "incomplete"
    status = {a["name"]: a["status"] for a in m["allocators"]}
    assert status == {done: "ok", cut: "incomplete"}
    thp = m["confounds"]["thp"]
    assert thp_mode() == thp["before"]
    assert {r["allocator"] for r in read_rows(run_dir)["summary"]} == {done}
    assert not (out / "tiny" / "latest").exists()

    resumed = run_cli(
        "run", str(spec), "--out", str(out), "--no-control", "--cluster", "local", "--wait",
        "--resume", env=env,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert Path(resumed.stdout.strip().splitlines()[-1]) == run_dir
    m = read_manifest(run_dir)
    assert m["status"] == "complete"
    assert {a["name"]: a["status"] for a in m["allocators"]} == {"glibc": "ok", "jemalloc": "ok"}
    ok = Counter(c["allocator"] for c in m["cells"] if c["status"] == "ok")
    assert ok == {"glibc": 1, "jemalloc": 1}  # the finished cell was not submitted again
    assert _keys(read_rows(run_dir)["summary"]) == {
        ("glibc", "service", 0): 1,
        ("jemalloc", "service", 0): 1,
    }


def test_a_requirement_no_host_offers_is_one_line(tmp_path: Path, tiny_spec: Path):
    proc = run_cli(
        "run", str(tiny_spec), "--out", str(tmp_path), "--cluster", "local",
        "--require", "arch=no-such-arch",
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert "offers bench_host, arch:no-such-arch" in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_without_dask_cluster_says_how_to_get_it(tmp_path: Path, tiny_spec: Path):
    hide = tmp_path / "no-dask"  # an interpreter where `import distributed` fails, as without it
    (hide / "distributed").mkdir(parents=True)
    (hide / "distributed" / "__init__.py").write_text("raise ImportError('not installed')\n")
    env = {**os.environ, "PYTHONPATH": f"{hide}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = run_cli("run", str(tiny_spec), "--out", str(tmp_path), "--cluster", "local", env=env)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "allocstudy: --cluster needs Dask distributed: install it with pip install "
        '"allocstudy[cluster]" (make setup does)'
    )


@pytest.mark.slow  # 20 s; a death mid-run: test_runner_faults
def test_a_host_that_dies_under_a_cell_costs_it_one_attempt_and_the_retry_completes(
    tmp_path: Path,
):
    spec = tmp_path / "dies.yaml"
    spec.write_text(
        TINY_SPEC.replace("allocators: [glibc, jemalloc]", "allocators: [jemalloc]").replace(
            "load_s: 5", "load_s: 8"
        )
    )
    mark = f"{tmp_path.name}-cluster-dies"
    before = set(stray_cgroups())
    run = BackgroundRun(
        str(spec), "--out", str(tmp_path / "results"), "--no-control", "--cluster", "local",
        "--wait", env_mark=mark, env=_isolated(tmp_path),
    )  # fmt: skip
    try:
        assert run.wait_for("jemalloc service: load", timeout=90), "".join(run.stderr)[-2000:]
        (cell,) = [
            pid
            for pid in our_processes(mark)
            if b"bench.cluster.cellproc" in Path(f"/proc/{pid}/cmdline").read_bytes()
        ]
        worker = int(Path(f"/proc/{cell}/stat").read_text().rsplit(")", 1)[1].split()[1])
        os.kill(worker, signal.SIGKILL)  # the host's worker dies under its cell
        code, stdout, stderr = run.finish(timeout=120)
    finally:
        run.kill()
    assert code == 0, stderr[-2000:]
    assert "Traceback" not in stderr
    m = read_manifest(Path(stdout.strip().splitlines()[-1]))
    attempts = [(c["attempt"], c["status"], c["reason"]) for c in m["cells"]]
    assert attempts[0][:2] == (1, "failed") and "died" in attempts[0][2]
    assert attempts[1:] == [(2, "ok", None)]
    assert m["allocators"][0]["status"] == "ok" and m["status"] == "complete"
    deadline = time.monotonic() + 10
    while (our_processes(mark) or set(stray_cgroups()) != before) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert our_processes(mark) == []
    assert set(stray_cgroups()) == before  # the dying cell cleaned up after itself
