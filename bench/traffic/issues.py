"""What is wrong with a request file, located: the one error type of bench.traffic.

Both readers of traffic (a JSON-lines request file, bench.traffic.requestfile, and a HAR
export, bench.traffic.har) report through it, so neither needs the other's module to say
what is wrong; spec loading turns these issues into spec errors.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.errors import EXIT_USAGE, UserError

__all__ = ["RequestFileError", "RequestIssue"]

#: The most problems one error lists (the rest are counted).
_MAX_ISSUES = 20


@dataclass(frozen=True)
class RequestIssue:
    """One problem of a request file, located: printed as `file:line: field: message`."""

    file: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}"
        return (
            f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        )


class RequestFileError(UserError):
    """A request file that cannot be used; one line per problem (exit 2, like a bad spec)."""

    exit_code = EXIT_USAGE

    def __init__(self, issues: list[RequestIssue]):
        self.issues = issues
        lines = [str(i) for i in issues[:_MAX_ISSUES]]
        if len(issues) > _MAX_ISSUES:
            lines.append(f"{issues[0].file}: ... and {len(issues) - _MAX_ISSUES} more problems")
        super().__init__("\n".join(lines))
