"""The exceptions the report engine raises.

Every problem a user can fix (no results, a malformed manifest, an unknown named value in a
page) is a ReportError whose message says what is wrong and where; the MkDocs plugin turns it
into a PluginError without adding or hiding anything. A run folder whose own files cannot be
read is a BadRunError, which also names the folder, so a site can leave that run out
(`skip_bad_runs`) and say which one it left out and why.
"""

from __future__ import annotations

from pathlib import Path

from bench.errors import UserError

__all__ = ["BadRunError", "ReportError"]


class ReportError(UserError):
    """A problem with the results or the pages that the user can fix; str() says how."""


class BadRunError(ReportError):
    """A run folder with a file the report cannot read (its manifest or a table).

    str() is `<file>: <problem>`; `run_dir` is the folder and `problem` the part after the
    file, for a line that names the folder once.
    """

    def __init__(self, file: Path, problem: str) -> None:
        super().__init__(f"{file}: {problem}")
        self.file = file
        self.run_dir = file.parent
        self.problem = problem
