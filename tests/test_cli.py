"""bench.cli: a user error is caught once, printed as one line, and exits with its code."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from bench import cli
from bench.errors import EXIT_FAILED, EXIT_USAGE, UsageError, UserError


def test_a_user_error_is_one_line_with_the_program_name_and_exit_code_3(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def fails(args: argparse.Namespace) -> int:
        raise UserError("the cache at /nowhere is not writable")

    monkeypatch.setattr(cli, "cmd_schema", fails)
    assert cli.main(["schema"]) == EXIT_FAILED == 3
    assert capsys.readouterr().err == "allocstudy: the cache at /nowhere is not writable\n"


def test_a_usage_error_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def fails(args: argparse.Namespace) -> int:
        raise UsageError("--only names allocators the spec does not have: hoard")

    monkeypatch.setattr(cli, "cmd_schema", fails)
    assert cli.main(["schema"]) == EXIT_USAGE == 2
    assert capsys.readouterr().err.startswith("allocstudy: --only names")


def test_a_spec_error_is_printed_as_its_located_lines(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["doctor", "specs/no-such-spec.yaml"]) == EXIT_USAGE
    assert capsys.readouterr().err == "specs/no-such-spec.yaml: no such file\n"


def _mapped(pid: int, name: str) -> bool:
    """Whether a process has a file whose path holds `name` mapped (a library it imports)."""
    try:
        return name in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


@pytest.mark.real_run  # 0.6 s in, the run holds the lock and has turned THP off
@pytest.mark.parametrize(
    ("once", "after_s"), [("pydantic_core", 0.0), ("pyarrow", 0.0), ("pyarrow", 0.6)]
)
def test_ctrl_c_at_any_moment_of_start_up_exits_130_without_a_traceback(
    once: str, after_s: float, tmp_path
) -> None:
    """The command is interrupted while it imports (once pydantic's core, then pyarrow's, is
    loaded: the command's own code runs by then, whatever the machine's speed), or as it reads
    the spec and plans the run: each time one line and exit 130, never SIGINT's -2 or a
    traceback. (A signal before the interpreter has run any of our code is the interpreter's
    own to answer.)"""
    import signal
    import subprocess
    import sys
    import time

    from studyrun import ROOT, TINY_SPEC

    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY_SPEC)
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.entry", "run", str(spec), "--out", str(tmp_path / "out"),
         "--no-control"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while not _mapped(proc.pid, once) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.001)
    assert _mapped(proc.pid, once), f"{once} was never loaded"
    time.sleep(after_s)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
