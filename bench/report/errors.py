"""The one exception the report engine raises.

Every problem a user can fix (no results, a malformed manifest, an unknown named value in a
page) is a ReportError whose message says what is wrong and where; the MkDocs plugin turns it
into a PluginError without adding or hiding anything.
"""

from __future__ import annotations

from bench.errors import UserError

__all__ = ["ReportError"]


class ReportError(UserError):
    """A problem with the results or the pages that the user can fix; str() says how."""
