"""bench.cli: a user error is caught once, printed as one line, and exits with its code."""

from __future__ import annotations

import argparse

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
