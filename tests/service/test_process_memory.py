"""service.process.memory: a process's anonymous memory, read from /proc."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from service.process import memory


def test_anonymous_memory_of_this_process_is_counted() -> None:
    assert memory.anon_bytes() > 1 << 20
    assert memory.rss_anon_bytes() >= memory.anon_bytes()
    assert memory.anon_bytes(os.getpid()) > 0


def test_anonymous_memory_of_a_gone_process_is_an_oserror() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    with pytest.raises(OSError):
        memory.anon_bytes(int(done.stdout))
