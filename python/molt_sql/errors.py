"""The one exception molt_sql raises for a query that cannot be built."""

from __future__ import annotations

__all__ = ["BuildError"]


class BuildError(ValueError):
    """A query was built wrongly: the message names the construct and the fix.

    Raised while the query is being built or compiled, before anything is sent.
    """
