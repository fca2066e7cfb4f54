"""SELECT queries: building (each method returns a new query) and compiling.

Checks that need the whole query (aggregates mixed with plain columns, a
column of a table that is not joined, having without group_by) run in
``validate()``, which ``compile()`` and every fetch call run first.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional, Union

from .compiler import Compiler, ParamStyle
from .dialect import POSTGRES, Dialect, get_dialect
from .errors import BuildError
from .expr import Aliased, AliasRef, Column, Expr, OrderTerm, Predicate
from .table import Table

if TYPE_CHECKING:
    from .execution import Binding

__all__ = ["Select", "Selectable", "Join"]

Selectable = Union[Expr, Table]


@dataclass(frozen=True, eq=False)
class Join:
    kind: str  # "INNER" or "LEFT"
    table: Table
    on: Predicate


class _TableStar(Expr):
    """``"users".*`` in a select list."""

    __slots__ = ("table",)

    def __init__(self, table: Table) -> None:
        self.table = table

    def compile(self, c: Compiler) -> str:
        return self.table._compile_ref(c) + ".*"

    def describe(self) -> str:
        return f"{self.table._ref_name}.*"


def _key(e: Expr) -> tuple[str, tuple[str, ...]]:
    """A structural identity for comparing expressions (group keys)."""
    c = Compiler(POSTGRES)
    sql = e.compile(c)
    return (sql, tuple(repr(p) for p in c.params))


def _check_int(what: str, n: object) -> int:
    if isinstance(n, bool) or not isinstance(n, int):
        raise BuildError(f"{what} takes an int, not {type(n).__name__}")
    if n < 0:
        raise BuildError(f"{what} must not be negative, got {n}")
    if n > 2**63 - 1:
        raise BuildError(f"{what} {n} is beyond the signed 64-bit range")
    return n


@dataclass(frozen=True, eq=False)
class Select:
    from_: Table
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
        if not isinstance(self.from_, Table):
            raise BuildError(f"a query starts from a table, not {type(self.from_).__name__}")

    def _with(self, **changes: Any) -> "Select":
        return dataclasses.replace(self, **changes)

    def __bool__(self) -> bool:
        return True

    # ---- building ----
    def select(self, *columns: Selectable) -> "Select":
        """Set the select list (replacing an earlier one). A Table means all
        of its columns."""
        if not columns:
            raise BuildError("select() needs at least one column")
        out: list[Expr] = []
        for col in columns:
            if isinstance(col, Table):
                out.append(_TableStar(col))
            elif isinstance(col, Expr):
                out.append(col)
            elif isinstance(col, str):
                raise BuildError(
                    f"select({col!r}): a str would be raw SQL; use T.{col} or T.c({col!r})"
                )
            else:
                raise BuildError(f"select() takes columns and expressions, not {type(col).__name__}")
        return self._with(columns=tuple(out))

    def where(self, *conditions: Predicate) -> "Select":
        """Add conditions (AND-ed with each other and with earlier ones)."""
        if not conditions:
            raise BuildError("where() needs at least one condition")
        cond = self.where_
        for p in conditions:
            if not isinstance(p, Predicate):
                raise BuildError(
                    f"where() takes conditions such as (T.col == value), "
                    f"not {p.describe() if isinstance(p, Expr) else type(p).__name__}"
                )
            if p.contains_aggregate():
                raise BuildError(
                    f"where({p.describe()}): an aggregate cannot be in where(); "
                    "use group_by(...).having(...)"
                )
            cond = p if cond is None else (cond & p)
        return self._with(where_=cond)

    filter = where

    def order_by(self, *terms: Union[Expr, OrderTerm]) -> "Select":
        """Append ordering terms: T.col (ascending), T.col.desc(),
        T.col.asc().nulls_last(), an aliased expression (ordered by its alias)."""
        if not terms:
            raise BuildError("order_by() needs at least one term")
        out = list(self.order)
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
        return self._with(order=tuple(out))

    def limit(self, n: int) -> "Select":
        return self._with(limit_=_check_int("limit()", n))

    def offset(self, n: int) -> "Select":
        return self._with(offset_=_check_int("offset()", n))

    def _join(self, kind: str, other: Table, on: Optional[Predicate]) -> "Select":
        fn = "join" if kind == "INNER" else "left_join"
        if not isinstance(other, Table):
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
        refs = [self.from_._ref_key] + [j.table._ref_key for j in self.joins]
        if other._ref_key in refs:
            raise BuildError(
                f"{fn}({other._ref_name}): that table is already in the query; "
                f"join it under another name with .alias('...')"
            )
        return self._with(joins=self.joins + (Join(kind, other, on),))

    def join(self, other: Table, on: Optional[Predicate] = None) -> "Select":
        """INNER JOIN ``other`` ON ``on`` (required)."""
        return self._join("INNER", other, on)

    def left_join(self, other: Table, on: Optional[Predicate] = None) -> "Select":
        """LEFT JOIN ``other`` ON ``on`` (required)."""
        return self._join("LEFT", other, on)

    def group_by(self, *exprs: Expr) -> "Select":
        if not exprs:
            raise BuildError("group_by() needs at least one expression")
        out = list(self.group)
        for e in exprs:
            if isinstance(e, Aliased):
                e = e.expr
            if not isinstance(e, Expr):
                raise BuildError(f"group_by() takes columns or expressions, not {type(e).__name__}")
            if e.contains_aggregate():
                raise BuildError(f"group_by({e.describe()}): cannot group by an aggregate")
            out.append(e)
        return self._with(group=tuple(out))

    def having(self, *conditions: Predicate) -> "Select":
        if not conditions:
            raise BuildError("having() needs at least one condition")
        cond = self.having_
        for p in conditions:
            if not isinstance(p, Predicate):
                raise BuildError(
                    f"having() takes conditions such as (T.col.count() > 1), "
                    f"not {p.describe() if isinstance(p, Expr) else type(p).__name__}"
                )
            cond = p if cond is None else (cond & p)
        return self._with(having_=cond)

    def distinct(self) -> "Select":
        return self._with(distinct_=True)

    # ---- checks ----
    def _tables(self) -> list[tuple[Optional[str], str, Optional[str]]]:
        return [self.from_._ref_key] + [j.table._ref_key for j in self.joins]

    def validate(self) -> None:
        """Raise BuildError for a query that cannot be right as a whole."""
        known = self._tables()
        names = [self.from_._ref_name] + [j.table._ref_name for j in self.joins]

        def check_cols(e: Expr, where: str) -> None:
            for sub in e.walk():
                if isinstance(sub, Column) and sub.table._ref_key not in known:
                    raise BuildError(
                        f"{where}: column {sub.describe()} belongs to table "
                        f"{sub.table._ref_name}, which is not in the query "
                        f"(tables: {', '.join(names)}); add join({sub.table._ref_name}, on=...)"
                    )
                if isinstance(sub, _TableStar) and sub.table._ref_key not in known:
                    raise BuildError(
                        f"{where}: {sub.describe()} is not in the query (tables: {', '.join(names)})"
                    )

        for col in self.columns:
            check_cols(col, "select()")
        if self.where_ is not None:
            check_cols(self.where_, "where()")
        for j in self.joins:
            check_cols(j.on, f"join({j.table._ref_name}, on=...)")
        for g in self.group:
            check_cols(g, "group_by()")
        if self.having_ is not None:
            check_cols(self.having_, "having()")
        for t in self.order:
            check_cols(t.expr, "order_by()")

        if self.having_ is not None and not self.group:
            raise BuildError("having() without group_by(): add group_by(...) or use where()")

        def unwrap(e: Expr) -> Expr:
            return e.expr if isinstance(e, Aliased) else e

        aggregated = any(unwrap(c).contains_aggregate() for c in self.columns)
        if self.group:
            keys = {_key(g) for g in self.group}
            for col in self.columns:
                e = unwrap(col)
                if isinstance(e, _TableStar):
                    raise BuildError(
                        f"select({e.describe()}) with group_by(): list the grouped columns instead"
                    )
                if e.contains_aggregate() or _key(e) in keys:
                    continue
                if any(isinstance(s, Column) for s in e.walk()):
                    raise BuildError(
                        f"select({e.describe()}): with group_by() every selected column must "
                        f"be grouped or aggregated; add it to group_by() or aggregate it "
                        f"(count, sum, avg, min, max)"
                    )
        elif aggregated:
            for col in self.columns:
                e = unwrap(col)
                if e.contains_aggregate():
                    continue
                if isinstance(e, _TableStar) or any(isinstance(s, Column) for s in e.walk()):
                    agg = next(unwrap(c) for c in self.columns if unwrap(c).contains_aggregate())
                    raise BuildError(
                        f"select() mixes the aggregate {agg.describe()} with "
                        f"{e.describe()}, which is not aggregated: add "
                        f"group_by({e.describe()}) or aggregate it"
                    )

    # ---- compiling ----
    def compile_into(self, c: Compiler) -> str:
        self.validate()
        parts = ["SELECT DISTINCT" if self.distinct_ else "SELECT"]
        parts.append(", ".join(col.compile(c) for col in self.columns) if self.columns else "*")
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
        if self.order:
            parts.append("ORDER BY " + ", ".join(t.compile(c) for t in self.order))
        if self.limit_ is not None:
            parts.append("LIMIT " + c.param(self.limit_))
        elif self.offset_ is not None and c.dialect.name == "sqlite":
            parts.append("LIMIT -1")  # SQLite accepts OFFSET only after LIMIT
        if self.offset_ is not None:
            parts.append("OFFSET " + c.param(self.offset_))
        return " ".join(parts)

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

    # ---- execution (see execution.py) ----
    def using(
        self, client: object, db_alias: Optional[str] = None, dialect: Union[str, Dialect, None] = None,
        *, pin_primary: Optional[bool] = None,
    ) -> "Select":
        """This query bound to a client (MoltClient or AsyncMoltClient), a
        database alias and that alias's dialect. ``pin_primary=True``: on an
        alias with streaming replicas it reads on the primary."""
        from .execution import Binding

        return self._with(binding=Binding.make(client, db_alias, dialect, self.binding, pin_primary))

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
