"""SELECT queries: building (each method returns a new query) and compiling.

Checks that need the whole query (aggregates mixed with plain columns, a
column of a table that is not joined, having without group_by) run in
``validate()``, which compiling runs first. A subquery may also name the
columns of the queries around it (a correlated subquery).
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterator, Optional, Sequence, Union

from .base import Query, compile_statement
from .compiler import Compiler
from .dialect import POSTGRES
from .errors import BuildError
from .expr import Aliased, AliasRef, Column, Expr, OrderTerm, Predicate, typed
from .subquery import Cte
from .table import FromItem, RefKey
from .window import Window, check_no_window, named_windows

if TYPE_CHECKING:
    from .execution import Binding

__all__ = ["Select", "Selectable", "Join"]

Selectable = Union[Expr, FromItem]


@dataclass(frozen=True, eq=False)
class Join:
    kind: str  # "INNER" or "LEFT"
    table: FromItem
    on: Predicate


class _TableStar(Expr):
    """``"users".*`` in a select list."""

    __slots__ = ("table",)

    def __init__(self, table: FromItem) -> None:
        self.table = table

    def compile(self, c: Compiler) -> str:
        return self.table._compile_ref(c) + ".*"

    def describe(self) -> str:
        return f"{self.table._ref_name}.*"


def _key(e: Expr) -> tuple[str, tuple[str, ...]]:
    """A structural identity for comparing expressions (group keys)."""
    c = Compiler(POSTGRES)
    c.depth = 1  # a subquery in e: no WITH clause
    c.check = False
    sql = e.compile(c)
    return (sql, tuple(repr(p) for p in c.params))


def _unwrap(e: Expr) -> Expr:
    return e.expr if isinstance(e, Aliased) else e


def _check_int(what: str, n: object) -> int:
    if isinstance(n, bool) or not isinstance(n, int):
        raise BuildError(f"{what} takes an int, not {type(n).__name__}")
    if n < 0:
        raise BuildError(f"{what} must not be negative, got {n}")
    if n > 2**63 - 1:
        raise BuildError(f"{what} {n} is beyond the signed 64-bit range")
    return n


@dataclass(frozen=True, eq=False)
class Select(Query):
    from_: FromItem
    columns: tuple[Expr, ...] = ()
    joins: tuple[Join, ...] = ()
    where_: Optional[Predicate] = None
    group: tuple[Expr, ...] = ()
    having_: Optional[Predicate] = None
    order: tuple[OrderTerm, ...] = ()
    limit_: Optional[int] = None
    offset_: Optional[int] = None
    distinct_: bool = False
    binding: Optional["Binding"] = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.from_, FromItem):
            raise BuildError(f"a query starts from a table, not {type(self.from_).__name__}")

    def _with(self, **changes: Any) -> "Select":
        """A copy with ``changes`` (dataclasses.replace without its cost,
        which is most of the building time of a larger query; the cached
        analysis is not copied)."""
        new = object.__new__(Select)
        d = new.__dict__
        for name in _FIELDS:
            d[name] = self.__dict__[name]
        d.update(changes)
        return new

    # ---- building ----
    def select(self, *columns: Selectable) -> "Select":
        """Set the select list (replacing an earlier one). A table means all
        of its columns."""
        if not columns:
            raise BuildError("select() needs at least one column")
        out: list[Expr] = []
        for col in columns:
            if isinstance(col, FromItem):
                out.append(_TableStar(col))
            elif isinstance(col, Query):
                from .subquery import ScalarSubquery

                out.append(ScalarSubquery(col))
            elif isinstance(col, Expr):
                out.append(col)
            elif isinstance(col, str):
                raise BuildError(
                    f"select({col!r}): a str would be raw SQL; use T.{col} or T.c({col!r})"
                )
            else:
                raise BuildError(f"select() takes columns and expressions, not {type(col).__name__}")
        return self._with(columns=tuple(out))

    def _conditions(self, fn: str, cond: Optional[Predicate], conditions: Sequence[Predicate],
                    example: str) -> Predicate:
        if not conditions:
            raise BuildError(f"{fn}() needs at least one condition")
        for p in conditions:
            if not isinstance(p, Predicate):
                raise BuildError(
                    f"{fn}() takes conditions such as {example}, "
                    f"not {p.describe() if isinstance(p, Expr) else type(p).__name__}"
                )
            check_no_window(fn, p)
            cond = p if cond is None else (cond & p)
        assert cond is not None
        return cond

    def where(self, *conditions: Predicate) -> "Select":
        """Add conditions (AND-ed with each other and with earlier ones)."""
        for p in conditions:
            if isinstance(p, Expr) and p.contains_aggregate():
                raise BuildError(
                    f"where({p.describe()}): an aggregate cannot be in where(); "
                    "use group_by(...).having(...)"
                )
        return self._with(where_=self._conditions("where", self.where_, conditions, "(T.col == value)"))

    filter = where

    def order_by(self, *terms: Union[Expr, OrderTerm]) -> "Select":
        """Append ordering terms: T.col (ascending), T.col.desc(),
        T.col.asc().nulls_last(), an aliased expression (ordered by its alias)."""
        return self._with(order=self.order + order_terms(terms))

    def limit(self, n: int) -> "Select":
        return self._with(limit_=_check_int("limit()", n))

    def offset(self, n: int) -> "Select":
        return self._with(offset_=_check_int("offset()", n))

    def _join(self, kind: str, other: FromItem, on: Optional[Predicate]) -> "Select":
        fn = "join" if kind == "INNER" else "left_join"
        if not isinstance(other, FromItem):
            raise BuildError(f"{fn}() takes a table, not {type(other).__name__}")
        if on is None:
            raise BuildError(
                f"{fn}({other._ref_name}) needs on=<condition>, e.g. "
                f"on=({other._ref_name}.id == ...): a join without a condition is a cross join"
            )
        if not isinstance(on, Predicate):
            raise BuildError(
                f"{fn}({other._ref_name}, on=...) takes a condition such as (A.id == B.a_id), "
                f"not {on.describe() if isinstance(on, Expr) else type(on).__name__}"
            )
        check_no_window(f"{fn}(on=...)", on)
        if other._ref_key in self._tables():
            raise BuildError(
                f"{fn}({other._ref_name}): that table is already in the query; "
                f"join it under another name with .alias('...')"
            )
        return self._with(joins=self.joins + (Join(kind, other, on),))

    def join(self, other: FromItem, on: Optional[Predicate] = None) -> "Select":
        """INNER JOIN ``other`` ON ``on`` (required)."""
        return self._join("INNER", other, on)

    def left_join(self, other: FromItem, on: Optional[Predicate] = None) -> "Select":
        """LEFT JOIN ``other`` ON ``on`` (required)."""
        return self._join("LEFT", other, on)

    def group_by(self, *exprs: Expr) -> "Select":
        if not exprs:
            raise BuildError("group_by() needs at least one expression")
        out = list(self.group)
        for e in exprs:
            e = _unwrap(e) if isinstance(e, Expr) else e
            if not isinstance(e, Expr):
                raise BuildError(f"group_by() takes columns or expressions, not {type(e).__name__}")
            if e.contains_aggregate():
                raise BuildError(f"group_by({e.describe()}): cannot group by an aggregate")
            check_no_window("group_by", e)
            out.append(e)
        return self._with(group=tuple(out))

    def having(self, *conditions: Predicate) -> "Select":
        return self._with(having_=self._conditions("having", self.having_, conditions, "(T.col.count() > 1)"))

    def distinct(self) -> "Select":
        return self._with(distinct_=True)

    # ---- what an enclosing query sees ----
    def output_names(self) -> Optional[list[Optional[str]]]:
        if not self.columns or any(isinstance(c, _TableStar) for c in self.columns):
            return None
        names: list[Optional[str]] = []
        for col in self.columns:
            if isinstance(col, Aliased):
                names.append(col.name)
            elif isinstance(col, Column):
                names.append(col.name)
            else:
                names.append(None)
        return names

    def _from_items(self) -> list[FromItem]:
        return [self.from_] + [j.table for j in self.joins]

    def _sections(self) -> Iterator[tuple[str, Expr]]:
        """Every expression of the query with the clause it is in."""
        for col in self.columns:
            yield "select()", col
        for j in self.joins:
            yield f"join({j.table._ref_name}, on=...)", j.on
        if self.where_ is not None:
            yield "where()", self.where_
        for g in self.group:
            yield "group_by()", g
        if self.having_ is not None:
            yield "having()", self.having_
        for t in self.order:
            yield "order_by()", t.expr

    # A query is immutable, so what compiling needs to know about its
    # expressions is worked out once per query object (cached_property), in
    # one walk, and the checks pass once per enclosing scope.
    @functools.cached_property
    def _walked(self) -> list[tuple[str, list[Expr]]]:
        return [(where, e.walk()) for where, e in self._sections()]

    @functools.cached_property
    def _nested(self) -> list[Query]:
        from .subquery import Derived

        out: list[Query] = [i._query for i in self._from_items() if isinstance(i, Derived)]
        for _, nodes in self._walked:
            for sub in nodes:
                out.extend(sub.subqueries())
        return out

    @functools.cached_property
    def _windows(self) -> list[Window]:
        return named_windows(n for where, nodes in self._walked if where in ("select()", "order_by()")
                             for n in nodes)

    @functools.cached_property
    def _valid_in(self) -> set[tuple[RefKey, ...]]:
        return set()

    def nested(self) -> list[Query]:
        return self._nested

    def cte_refs(self) -> list[Cte]:
        return [i for i in self._from_items() if isinstance(i, Cte)]

    # ---- checks ----
    def _tables(self) -> list[RefKey]:
        return [i._ref_key for i in self._from_items()]

    def validate(self, outer: Sequence[RefKey] = ()) -> None:
        """Raise BuildError for a query that cannot be right as a whole.
        ``outer``: the FROM items of the queries around this one."""
        own = self._tables()
        names = [i._ref_name for i in self._from_items()]
        for where, nodes in self._walked:
            for sub in nodes:
                if not isinstance(sub, (Column, _TableStar)):
                    continue
                key = sub.table._ref_key
                if key in own or key in outer:
                    continue
                if isinstance(sub, _TableStar):
                    raise BuildError(
                        f"{where}: {sub.describe()} is not in the query (tables: {', '.join(names)})"
                    )
                raise BuildError(
                    f"{where}: column {sub.describe()} belongs to table "
                    f"{sub.table._ref_name}, which is not in the query "
                    f"(tables: {', '.join(names)}); add join({sub.table._ref_name}, on=...)"
                )
        if self.having_ is not None and not self.group:
            raise BuildError("having() without group_by(): add group_by(...) or use where()")
        self._check_grouping()

    def _check_grouping(self) -> None:
        aggregated = any(_unwrap(c).contains_aggregate() for c in self.columns)
        if self.group:
            keys = {_key(g) for g in self.group}
            for col in self.columns:
                e = _unwrap(col)
                if isinstance(e, _TableStar):
                    raise BuildError(
                        f"select({e.describe()}) with group_by(): list the grouped columns instead"
                    )
                if e.contains_aggregate() or e.contains_window() or _key(e) in keys:
                    continue
                if any(isinstance(s, Column) for s in e.walk()):
                    raise BuildError(
                        f"select({e.describe()}): with group_by() every selected column must "
                        f"be grouped or aggregated; add it to group_by() or aggregate it "
                        f"(count, sum, avg, min, max)"
                    )
        elif aggregated:
            for col in self.columns:
                e = _unwrap(col)
                if e.contains_aggregate() or e.contains_window():
                    continue
                if isinstance(e, _TableStar) or any(isinstance(s, Column) for s in e.walk()):
                    agg = next(_unwrap(c) for c in self.columns if _unwrap(c).contains_aggregate())
                    raise BuildError(
                        f"select() mixes the aggregate {agg.describe()} with "
                        f"{e.describe()}, which is not aggregated: add "
                        f"group_by({e.describe()}) or aggregate it"
                    )

    # ---- compiling ----
    def compile_into(self, c: Compiler) -> str:
        return compile_statement(self, c, self._compile_body)

    def _compile_body(self, c: Compiler) -> str:
        if c.check and c.scope not in self._valid_in:
            self.validate(c.scope)
            self._valid_in.add(c.scope)
        outer = c.scope
        c.scope = outer + tuple(self._tables())
        try:
            return self._compile_parts(c)
        finally:
            c.scope = outer

    def _compile_parts(self, c: Compiler) -> str:
        parts = ["SELECT DISTINCT" if self.distinct_ else "SELECT"]
        parts.append(", ".join(typed(c, col).compile(c) for col in self.columns) if self.columns else "*")
        parts.append("FROM " + self.from_._compile_from(c))
        for j in self.joins:
            parts.append(
                f"{'JOIN' if j.kind == 'INNER' else 'LEFT JOIN'} "
                f"{j.table._compile_from(c)} ON {j.on.compile(c)}"
            )
        if self.where_ is not None:
            parts.append("WHERE " + self.where_.compile(c))
        if self.group:
            parts.append("GROUP BY " + ", ".join(g.compile(c) for g in self.group))
        if self.having_ is not None:
            parts.append("HAVING " + self.having_.compile(c))
        windows = self._windows
        if windows:
            parts.append("WINDOW " + ", ".join(
                f"{c.ident(w.name)} AS {w.compile_spec(c)}" for w in windows if w.name is not None))
        parts.append(limit_clause(c, self.order, self.limit_, self.offset_))
        return " ".join(p for p in parts if p)


def order_terms(terms: Sequence[Union[Expr, OrderTerm]]) -> tuple[OrderTerm, ...]:
    if not terms:
        raise BuildError("order_by() needs at least one term")
    out = []
    for t in terms:
        if isinstance(t, OrderTerm):
            out.append(t)
        elif isinstance(t, Aliased):
            out.append(OrderTerm(AliasRef(t.name), descending=False))
        elif isinstance(t, Expr):
            out.append(OrderTerm(t, descending=False))
        elif isinstance(t, str):
            raise BuildError(
                f"order_by({t!r}): a str would be raw SQL; use T.{t} or T.{t}.desc()"
            )
        else:
            raise BuildError(f"order_by() takes columns or ordering terms, not {type(t).__name__}")
    return tuple(out)


def limit_clause(c: Compiler, order: Sequence[OrderTerm], limit: Optional[int], offset: Optional[int]) -> str:
    """ORDER BY ... LIMIT ... OFFSET ...: the tail selects and set
    operations share."""
    parts = []
    if order:
        parts.append("ORDER BY " + ", ".join(t.compile(c) for t in order))
    if limit is not None:
        parts.append("LIMIT " + c.param(limit))
    elif offset is not None and c.dialect.name == "sqlite":
        parts.append("LIMIT -1")  # SQLite accepts OFFSET only after LIMIT
    if offset is not None:
        parts.append("OFFSET " + c.param(offset))
    return " ".join(parts)


_FIELDS = tuple(f.name for f in dataclasses.fields(Select))
