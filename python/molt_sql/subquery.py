"""Queries inside queries: a subquery in FROM with an alias, common table
expressions (WITH, WITH RECURSIVE), scalar subqueries and EXISTS.

A subquery's columns are known from its select list, so naming one that it
does not have is a BuildError when the column is written, like a column of
a table that is not in the query.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable, Optional, Sequence

from .compiler import Compiler
from .errors import BuildError
from .expr import Expr, Predicate
from .table import FromItem, RefKey

if TYPE_CHECKING:
    from .base import Query

__all__ = ["Derived", "Cte", "ScalarSubquery", "Exists", "recursive_cte", "collect_ctes"]


def _check_name(what: str, name: object) -> str:
    if not isinstance(name, str) or not name:
        raise BuildError(f"a {what} must be a non-empty str, got {name!r}")
    return name


def _check_known(item: str, names: Optional[Sequence[Optional[str]]], name: str) -> None:
    if names is not None and name not in names:
        known = ", ".join(n for n in names if n) or "none (alias each expression with .as_())"
        raise BuildError(f"{item} has no column {name!r} (its columns: {known})")


class Derived(FromItem):
    """``(SELECT ...) AS "alias"`` in FROM or a join."""

    __slots__ = ("_query", "_alias")
    _query: "Query"
    _alias: str

    def __init__(self, query: "Query", alias: str) -> None:
        object.__setattr__(self, "_query", query)
        object.__setattr__(self, "_alias", _check_name("subquery alias", alias))

    @property
    def _ref_name(self) -> str:
        return self._alias

    @property
    def _ref_key(self) -> RefKey:
        return ("(subquery)", self._alias, self._alias)

    def _check_column(self, name: str) -> None:
        _check_known(f"subquery {self._alias!r}", self._query.output_names(), name)

    def _compile_ref(self, c: Compiler) -> str:
        return c.ident(self._alias)

    def _compile_from(self, c: Compiler) -> str:
        return f"({self._query.compile_into(c)}) AS {c.ident(self._alias)}"

    def __repr__(self) -> str:
        return f"subquery({self._alias!r})"


class Cte(FromItem):
    """A common table expression. ``body`` is None for the placeholder of a
    recursive one, whose columns are declared up front."""

    __slots__ = ("_name", "_body", "_columns", "_recursive", "_alias")
    _name: str
    _body: Optional["Query"]
    _columns: Optional[tuple[str, ...]]
    _recursive: bool
    _alias: Optional[str]

    def __init__(self, name: str, body: Optional["Query"], columns: Optional[Sequence[str]],
                 recursive: bool, alias: Optional[str] = None) -> None:
        cols = None if columns is None else tuple(_check_name("CTE column", n) for n in columns)
        if cols is not None and not cols:
            raise BuildError(f"cte {name!r}: columns= needs at least one name")
        if body is not None and cols is not None:
            names = body.output_names()
            if names is not None and len(names) != len(cols):
                raise BuildError(f"cte {name!r} names {len(cols)} columns but its query selects {len(names)}")
        object.__setattr__(self, "_name", _check_name("CTE name", name))
        object.__setattr__(self, "_body", body)
        object.__setattr__(self, "_columns", cols)
        object.__setattr__(self, "_recursive", recursive)
        object.__setattr__(self, "_alias", alias)

    @staticmethod
    def defined(name: str, body: "Query", columns: Optional[Sequence[str]]) -> "Cte":
        return Cte(name, body, columns, recursive=False)

    def defined_as(self, body: "Query") -> "Cte":
        """The recursive CTE with its query (usually ``start.union_all(step)``,
        where ``step`` reads from this placeholder)."""
        if not self._recursive or self._body is not None:
            raise BuildError(f"cte {self._name!r}: defined_as() is for a recursive_cte() placeholder")
        return Cte(self._name, body, self._columns, recursive=True)

    def alias(self, name: str) -> "Cte":
        return Cte(self._name, self._body, self._columns, self._recursive, _check_name("alias", name))

    def _names(self) -> Optional[Sequence[Optional[str]]]:
        if self._columns is not None:
            return self._columns
        return None if self._body is None else self._body.output_names()

    @property
    def _ref_name(self) -> str:
        return self._alias or self._name

    @property
    def _ref_key(self) -> RefKey:
        return ("(cte)", self._name, self._alias)

    def _check_column(self, name: str) -> None:
        _check_known(f"cte {self._name!r}", self._names(), name)

    def _compile_ref(self, c: Compiler) -> str:
        return c.ident(self._alias or self._name)

    def _compile_from(self, c: Compiler) -> str:
        if c.check and self._name not in c.cte_names:
            raise BuildError(
                f"cte {self._name!r} is read but never defined: a recursive_cte() placeholder "
                "needs .defined_as(query), and the query reading it must be the one compiled"
            )
        s = c.ident(self._name)
        return s + (" AS " + c.ident(self._alias) if self._alias else "")

    def compile_definition(self, c: Compiler) -> str:
        assert self._body is not None
        cols = ""
        if self._columns is not None:
            cols = "(" + ", ".join(c.ident(n) for n in self._columns) + ")"
        return f"{c.ident(self._name)}{cols} AS ({self._body.compile_into(c)})"

    def same_definition(self, other: "Cte") -> bool:
        return (self._body is other._body and self._columns == other._columns
                and self._recursive == other._recursive)

    def __repr__(self) -> str:
        return f"cte({self._name!r})"


def recursive_cte(name: str, columns: Sequence[str]) -> Cte:
    """The placeholder of a recursive CTE: read from it in the recursive
    step, then ``.defined_as(start.union_all(step))``."""
    if columns is None or isinstance(columns, str):
        raise BuildError(f"recursive_cte({name!r}) needs columns=[...] (a list of names)")
    return Cte(name, None, columns, recursive=True)


def _check_not_shadowing(cte: Cte) -> None:
    """A CTE that reads a table of its own name reads itself on SQLite
    (circular reference) and the table on PostgreSQL: refuse it."""
    from .table import Table

    assert cte._body is not None
    for sub in (cte._body, *cte._body.nested()):
        for item in sub._from_items():
            if isinstance(item, Table) and item._schema is None and item._name == cte._name:
                raise BuildError(
                    f"cte {cte._name!r} reads the table {cte._name!r}: SQLite would read the CTE "
                    "itself; give the CTE another name"
                )


def collect_ctes(q: "Query", out: dict[str, Cte]) -> None:
    """Every CTE ``q`` reads, directly or through what it nests; a CTE comes
    after the ones its body reads. One name for two different CTEs is a
    BuildError."""
    for cte in q.cte_refs():
        if cte._body is None:
            continue
        seen = out.get(cte._name)
        if seen is None:
            _check_not_shadowing(cte)
            cte._body.collect_ctes(out)
            out[cte._name] = cte
        elif not seen.same_definition(cte):
            raise BuildError(f"two different CTEs are both named {cte._name!r}")
    for sub in q.nested():
        sub.collect_ctes(out)


class ScalarSubquery(Expr):
    """``(SELECT one_column ...)`` as a value."""

    __slots__ = ("query",)

    def __init__(self, query: "Query") -> None:
        query.check_one_column("a scalar subquery")
        self.query = query

    def compile(self, c: Compiler) -> str:
        return f"({self.query.compile_into(c)})"

    def subqueries(self) -> Iterable["Query"]:
        return (self.query,)

    def describe(self) -> str:
        return "(subquery)"


class Exists(Predicate):
    __slots__ = ("query",)

    def __init__(self, query: "Query") -> None:
        from .base import Query

        if not isinstance(query, Query):
            raise BuildError(f"exists() takes a query, not {type(query).__name__}")
        self.query = query

    def compile(self, c: Compiler) -> str:
        return f"EXISTS ({self.query.compile_into(c)})"

    def subqueries(self) -> Iterable["Query"]:
        return (self.query,)

    def describe(self) -> str:
        return "EXISTS (subquery)"
