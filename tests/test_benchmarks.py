"""The benchmark scripts' own arguments (the scripts measure; their figures live in the docs)."""

from __future__ import annotations

import importlib.util
import os
import sys
from types import ModuleType

import pytest
from studyrun import ROOT


def _script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_the_control_benchmark_takes_cores_or_a_number_of_threads(
    capsys: pytest.CaptureFixture[str],
) -> None:
    bench = _script("control_throughput")
    assert bench._parse_args(["--threads", "cores"]).threads == len(os.sched_getaffinity(0))
    assert bench._parse_args(["--threads", "3"]).threads == 3
    assert bench._parse_args([]).threads is None  # the spec's
    for wrong in ("many", "0"):
        with pytest.raises(SystemExit) as exited:
            bench._parse_args(["--threads", wrong])
        assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "'many' is neither a number nor 'cores'" in err and "at least 1" in err
