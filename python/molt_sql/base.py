"""What every statement has (compile to text and parameters, bind to a
client) and what every query has on top (nesting, set operations, the
fetch helpers). Select (query.py) and the set operations (setops.py) are
queries; the writes (writes.py) are statements.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence, Union

from .compiler import Compiler, ParamStyle
from .dialect import Dialect, get_dialect
from .errors import BuildError

if TYPE_CHECKING:
    from .execution import Binding
    from .setops import Compound
    from .subquery import Cte, Derived, ScalarSubquery
    from .table import FromItem

__all__ = ["Statement", "Query"]


class Statement:
    """A whole SQL statement. Subclasses are frozen dataclasses with a
    ``binding`` field and define ``compile_into``."""

    binding: Optional["Binding"]

    def compile_into(self, c: Compiler) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def compile(
        self, dialect: Union[str, Dialect] = "postgres", *, paramstyle: ParamStyle = "dollar"
    ) -> tuple[str, list[object]]:
        """``(sql, params)`` for ``dialect`` (``postgres`` or ``sqlite``).

        ``paramstyle``: ``dollar`` ($1, $2: what the worker takes on both
        dialects), ``qmark`` (? for sqlite3) or ``format`` (%s for psycopg).
        """
        c = Compiler(get_dialect(dialect), paramstyle)
        sql = self.compile_into(c)
        return sql, c.params

    def __str__(self) -> str:
        return self.compile()[0]

    def __bool__(self) -> bool:
        return True

    def using(self, client: object, db_alias: Optional[str] = None,
              dialect: Union[str, Dialect, None] = None, *,
              pin_primary: Optional[bool] = None) -> Any:
        """This statement bound to a client (MoltClient or AsyncMoltClient),
        a database alias and that alias's dialect. ``pin_primary=True``: on
        an alias with streaming replicas its reads run on the primary."""
        from .execution import Binding

        return dataclasses.replace(self, binding=Binding.make(  # type: ignore[type-var]
            client, db_alias, dialect, self.binding, pin_primary))


class Query(Statement):
    """A statement that returns rows and can be nested in another."""

    # ---- what the enclosing query needs to know ----
    def output_names(self) -> Optional[list[Optional[str]]]:
        """The names of the result columns (None for an unnamed one), or
        None when they are not known (``*``)."""
        raise NotImplementedError

    def check_one_column(self, where: str) -> None:
        names = self.output_names()
        if names is None or len(names) != 1:
            raise BuildError(f"{where}: the subquery must select exactly one column")

    def nested(self) -> Sequence["Query"]:
        """Queries this one reads from or holds (FROM subqueries, CTE
        bodies, subqueries in expressions, set-operation members)."""
        raise NotImplementedError

    def cte_refs(self) -> Sequence["Cte"]:
        """The CTEs among this query's own FROM items."""
        return ()

    def _from_items(self) -> Sequence["FromItem"]:
        """This query's own FROM items (none for a set operation, whose
        members are in nested())."""
        return ()

    def collect_ctes(self, out: dict[str, "Cte"]) -> None:
        """Every CTE this query uses, a CTE after those its body uses."""
        from .subquery import collect_ctes

        collect_ctes(self, out)

    # ---- nesting ----
    def scalar(self) -> "ScalarSubquery":
        """This one-column query as a value: ``(SELECT ...)``, which can
        take ``.as_("name")`` in a select list. A query given where a value
        goes (``T.x > q``) is the same."""
        from .subquery import ScalarSubquery

        return ScalarSubquery(self)

    def subquery(self, alias: str) -> "Derived":
        """This query in FROM: ``(SELECT ...) AS "alias"``, with columns by
        attribute (``sq.total``) like a table's."""
        from .subquery import Derived

        return Derived(self, alias)

    def cte(self, name: str, columns: Optional[Sequence[str]] = None) -> "Cte":
        """This query as a common table expression ``WITH "name" AS (...)``;
        the queries that read from it declare it."""
        from .subquery import Cte

        return Cte.defined(name, self, columns)

    # ---- set operations (setops.py) ----
    def union(self, other: "Query") -> "Compound":
        from .setops import Compound

        return Compound.combine("UNION", self, other)

    def union_all(self, other: "Query") -> "Compound":
        from .setops import Compound

        return Compound.combine("UNION ALL", self, other)

    def intersect(self, other: "Query") -> "Compound":
        from .setops import Compound

        return Compound.combine("INTERSECT", self, other)

    def except_(self, other: "Query") -> "Compound":
        from .setops import Compound

        return Compound.combine("EXCEPT", self, other)

    # ---- execution (see execution.py) ----
    async def fetch_all(self, *, as_dict: bool = False, timeout_ms: Optional[int] = None) -> list[Any]:
        from .execution import fetch_all

        return await fetch_all(self, as_dict=as_dict, timeout_ms=timeout_ms)

    async def fetch_one(self, *, as_dict: bool = False, timeout_ms: Optional[int] = None) -> Any:
        from .execution import fetch_one

        return await fetch_one(self, as_dict=as_dict, timeout_ms=timeout_ms)

    async def fetch_val(self, *, timeout_ms: Optional[int] = None) -> Any:
        from .execution import fetch_val

        return await fetch_val(self, timeout_ms=timeout_ms)

    async def fetch_arrow(self, *, timeout_ms: Optional[int] = None) -> Any:
        from .execution import fetch_arrow

        return await fetch_arrow(self, timeout_ms=timeout_ms)

    def fetch_all_sync(self, *, as_dict: bool = False, timeout_ms: Optional[int] = None) -> list[Any]:
        from .execution import fetch_all_sync

        return fetch_all_sync(self, as_dict=as_dict, timeout_ms=timeout_ms)

    def fetch_one_sync(self, *, as_dict: bool = False, timeout_ms: Optional[int] = None) -> Any:
        from .execution import fetch_one_sync

        return fetch_one_sync(self, as_dict=as_dict, timeout_ms=timeout_ms)

    def fetch_val_sync(self, *, timeout_ms: Optional[int] = None) -> Any:
        from .execution import fetch_val_sync

        return fetch_val_sync(self, timeout_ms=timeout_ms)

    def fetch_arrow_sync(self, *, timeout_ms: Optional[int] = None) -> Any:
        from .execution import fetch_arrow_sync

        return fetch_arrow_sync(self, timeout_ms=timeout_ms)


def with_clause(q: Query, c: Compiler) -> str:
    """``WITH [RECURSIVE] "a" AS (...), ... `` for the CTEs ``q`` uses (empty
    without any); compiled first, so its parameters come first."""
    found: dict[str, "Cte"] = {}
    q.collect_ctes(found)
    if not found:
        return ""
    c.cte_names = frozenset(found)
    parts = [cte.compile_definition(c) for cte in found.values()]
    recursive = any(cte._recursive for cte in found.values())
    return ("WITH RECURSIVE " if recursive else "WITH ") + ", ".join(parts) + " "


def compile_statement(q: Statement, c: Compiler, body: Callable[[Compiler], str]) -> str:
    """Run ``body(c)`` one level deeper, with the WITH clause first when
    ``q`` is the outermost query."""
    c.depth += 1
    try:
        prefix = with_clause(q, c) if c.depth == 1 and isinstance(q, Query) else ""
        return prefix + str(body(c))
    finally:
        c.depth -= 1
