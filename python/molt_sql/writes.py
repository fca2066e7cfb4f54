"""INSERT (one row, many rows, from a query), UPDATE and DELETE, with
RETURNING and ON CONFLICT (PostgreSQL's, which SQLite's upsert spells the
same way). They run through db_exec: ``await w.execute()`` or
``w.execute_sync()``.

Every value is a parameter; column names are identifiers. The expressions
of a write may name columns of its own table only (and ``excluded(...)``
in an upsert). update() and delete() without where() are refused unless
``.all_rows()`` says so.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping, Optional, Sequence, Union

from .base import Query, Statement
from .compiler import Compiler
from .errors import BuildError
from .expr import Column, Expr, Predicate, as_expr
from .table import FromItem, Table
from .window import check_no_window

if TYPE_CHECKING:
    from .execution import Binding

__all__ = ["Insert", "Update", "Delete", "excluded", "MAX_INSERT_PARAMS"]

#: SQLite's limit on parameters per statement (32766), also under
#: PostgreSQL's 65535: above it, use the client's executemany.
MAX_INSERT_PARAMS = 32766


class Excluded(Expr):
    """``excluded."col"``: the row an upsert tried to insert."""

    __slots__ = ("column",)

    def __init__(self, column: Column) -> None:
        self.column = column

    def compile(self, c: Compiler) -> str:
        return "excluded." + c.ident(self.column.name)

    def describe(self) -> str:
        return f"excluded.{self.column.name}"


def excluded(column: Column) -> Excluded:
    """In ``on_conflict(...).do_update(...)``: the value that row would have
    had (``excluded(T.name)``)."""
    if not isinstance(column, Column):
        raise BuildError(f"excluded() takes a column such as T.name, not {type(column).__name__}")
    return Excluded(column)


class _AllColumns(Expr):
    """``RETURNING *``."""

    __slots__ = ()

    def compile(self, c: Compiler) -> str:
        return "*"

    def describe(self) -> str:
        return "*"


def _column_name(t: Table, key: object, fn: str) -> str:
    if isinstance(key, Column):
        if key.table._ref_key != t._ref_key:
            raise BuildError(f"{fn}: {key.describe()} is not a column of {t._ref_name}")
        return key.name
    if not isinstance(key, str) or not key:
        raise BuildError(f"{fn}: a column is a name (str) or T.col, not {key!r}")
    return key


def _check_own_columns(t: Table, e: Expr, where: str) -> None:
    for sub in e.walk():
        if isinstance(sub, Column) and sub.table._ref_key != t._ref_key:
            raise BuildError(
                f"{where}: column {sub.describe()} belongs to {sub.table._ref_name}, not to "
                f"{t._ref_name}; read other tables through a subquery"
            )
    check_no_window(where, e)


def _value(t: Table, v: object, where: str) -> Expr:
    e = as_expr(v, where)
    _check_own_columns(t, e, where)
    return e


def _assignments(t: Table, values: Mapping[Any, object], fn: str) -> tuple[tuple[str, Expr], ...]:
    if not isinstance(values, Mapping) or not values:
        raise BuildError(f"{fn} takes a non-empty dict column -> value")
    return tuple((_column_name(t, k, fn), _value(t, v, f"{fn}[{k!r}]")) for k, v in values.items())


def _returning(t: Table, columns: Sequence[Any]) -> tuple[Expr, ...]:
    if not columns:
        raise BuildError("returning() needs at least one column (or the table for all)")
    out: list[Expr] = []
    for col in columns:
        if isinstance(col, FromItem):
            if col._ref_key != t._ref_key:
                raise BuildError(f"returning({col!r}): only the written table's columns")
            out.append(_AllColumns())
            continue
        if not isinstance(col, Expr):
            raise BuildError(f"returning() takes columns and expressions, not {type(col).__name__}")
        _check_own_columns(t, col, "returning()")
        out.append(col)
    return tuple(out)


def _compile_returning(c: Compiler, cols: tuple[Expr, ...]) -> str:
    return " RETURNING " + ", ".join(e.compile(c) for e in cols) if cols else ""


class Write(Statement):
    """What the three writes share: the target, RETURNING, execution."""

    table: Table
    returning_: tuple[Expr, ...]

    def returning(self, *columns: Any) -> Any:
        """RETURNING these columns (the table itself for all): the rows come
        back in the ExecResult's ``rows``."""
        return dataclasses.replace(self, returning_=_returning(self.table, columns))  # type: ignore[type-var]

    async def execute(self, *, timeout_ms: Optional[int] = None) -> Any:
        """Run through db_exec on the bound (or configured) AsyncMoltClient;
        returns its ExecResult (rows_affected, RETURNING rows)."""
        from .execution import execute

        return await execute(self, timeout_ms=timeout_ms)

    def execute_sync(self, *, timeout_ms: Optional[int] = None) -> Any:
        from .execution import execute_sync

        return execute_sync(self, timeout_ms=timeout_ms)


@dataclass(frozen=True, eq=False)
class OnConflict:
    target: tuple[str, ...]
    updates: Optional[tuple[tuple[str, Expr], ...]]  # None: DO NOTHING

    def compile(self, c: Compiler) -> str:
        s = " ON CONFLICT"
        if self.target:
            s += " (" + ", ".join(c.ident(n) for n in self.target) + ")"
        if self.updates is None:
            return s + " DO NOTHING"
        return s + " DO UPDATE SET " + ", ".join(f"{c.ident(n)} = {e.compile(c)}" for n, e in self.updates)


@dataclass(frozen=True, eq=False)
class PendingConflict:
    """``insert.on_conflict(cols)``, waiting for do_nothing() or do_update()."""

    insert: "Insert"
    target: tuple[str, ...]

    def do_nothing(self) -> "Insert":
        return dataclasses.replace(self.insert, conflict=OnConflict(self.target, None))

    def do_update(self, values: Mapping[Any, object]) -> "Insert":
        if not self.target:
            raise BuildError("on_conflict().do_update(...) needs the conflict columns: on_conflict(T.id)")
        t = self.insert.table
        updates = []
        for k, v in values.items() if isinstance(values, Mapping) else ():
            e = as_expr(v, f"do_update[{k!r}]")
            for sub in e.walk():
                if isinstance(sub, Column) and sub.table._ref_key != t._ref_key:
                    raise BuildError(f"do_update[{k!r}]: {sub.describe()} is not a column of {t._ref_name}")
            updates.append((_column_name(t, k, "do_update()"), e))
        if not updates:
            raise BuildError("do_update() takes a non-empty dict column -> value")
        return dataclasses.replace(self.insert, conflict=OnConflict(self.target, tuple(updates)))


@dataclass(frozen=True, eq=False)
class Insert(Write):
    table: Table
    columns: tuple[str, ...]
    rows: tuple[tuple[Expr, ...], ...] = ()
    query: Optional[Query] = None
    conflict: Optional[OnConflict] = None
    returning_: tuple[Expr, ...] = ()
    binding: Optional["Binding"] = field(default=None, compare=False)

    @staticmethod
    def _target(t: Table) -> Table:
        if not isinstance(t, Table):
            raise BuildError(f"insert into a table, not {type(t).__name__}")
        if t._alias:
            raise BuildError(f"insert into {t._name!r} itself, not its alias {t._alias!r}")
        return t

    @staticmethod
    def of_rows(t: Table, rows: Union[Mapping[str, Any], Sequence[Mapping[str, Any]]]) -> "Insert":
        t = Insert._target(t)
        batch = [rows] if isinstance(rows, Mapping) else list(rows)
        if not batch or not all(isinstance(r, Mapping) and r for r in batch):
            raise BuildError("insert() takes a dict column -> value, or a non-empty list of them")
        keys = list(batch[0])
        columns = tuple(_column_name(t, k, "insert()") for k in keys)
        for i, r in enumerate(batch):
            if list(r) != keys:
                raise BuildError(f"insert(): row {i} has columns {list(r)}, row 0 has {keys}: give every row the same")
        if len(batch) * len(columns) > MAX_INSERT_PARAMS:
            raise BuildError(
                f"insert() of {len(batch)} rows x {len(columns)} columns is more than "
                f"{MAX_INSERT_PARAMS} parameters: use the client's executemany()"
            )
        values = tuple(
            tuple(_no_columns(as_expr(r[k], f"insert()[{k!r}]"), f"insert()[{k!r}]") for k in keys)
            for r in batch
        )
        return Insert(t, columns, values)

    @staticmethod
    def of_query(t: Table, columns: Sequence[Any], query: Any) -> "Insert":
        t = Insert._target(t)
        if not isinstance(query, Query):
            raise BuildError(f"insert_from() takes a query, not {type(query).__name__}")
        cols = tuple(_column_name(t, k, "insert_from()") for k in columns)
        if not cols:
            raise BuildError("insert_from() needs the columns to fill")
        names = query.output_names()
        if names is not None and len(names) != len(cols):
            raise BuildError(f"insert_from(): {len(cols)} columns but the query selects {len(names)}")
        return Insert(t, cols, query=query)

    def on_conflict(self, *target: Any) -> PendingConflict:
        """ON CONFLICT (target columns): then .do_nothing() or
        .do_update({col: value or excluded(T.col)})."""
        return PendingConflict(self, tuple(_column_name(self.table, k, "on_conflict()") for k in target))

    def compile_into(self, c: Compiler) -> str:
        cols = ", ".join(c.ident(n) for n in self.columns)
        s = f"INSERT INTO {self.table._compile_from(c)} ({cols}) "
        if self.query is not None:
            depth, c.depth = c.depth, 0  # the query writes its own WITH
            try:
                body = self.query.compile_into(c)
            finally:
                c.depth = depth
            if self.conflict is not None and c.dialect.name == "sqlite":
                # SQLite would read ON CONFLICT as a join's ON: its documented
                # way out is a WHERE in front of it
                body = f"SELECT * FROM ({body}) WHERE true"
            s += body
        else:
            s += "VALUES " + ", ".join("(" + ", ".join(v.compile(c) for v in row) + ")" for row in self.rows)
        if self.conflict is not None:
            s += self.conflict.compile(c)
        return s + _compile_returning(c, self.returning_)


def _no_columns(e: Expr, where: str) -> Expr:
    if any(isinstance(s, Column) for s in e.walk()):
        raise BuildError(f"{where}: a value to insert cannot name a column")
    return e


class _Filtered(Write):
    """update() and delete(): where() and the all_rows() opt-out."""

    where_: Optional[Predicate]
    all_rows_: bool

    def where(self, *conditions: Predicate) -> Any:
        cond = self.where_
        if not conditions:
            raise BuildError("where() needs at least one condition")
        for p in conditions:
            if not isinstance(p, Predicate):
                raise BuildError(f"where() takes conditions such as (T.col == value), not {type(p).__name__}")
            _check_own_columns(self.table, p, "where()")
            if p.contains_aggregate():
                raise BuildError(f"where({p.describe()}): an aggregate cannot be in where()")
            cond = p if cond is None else (cond & p)
        return dataclasses.replace(self, where_=cond)  # type: ignore[type-var]

    def all_rows(self) -> Any:
        """Say that no where() is meant: every row of the table."""
        return dataclasses.replace(self, all_rows_=True)  # type: ignore[type-var]

    def _where_sql(self, c: Compiler, verb: str) -> str:
        if self.where_ is None:
            if not self.all_rows_:
                raise BuildError(
                    f"{verb} without where() would touch every row of {self.table._ref_name}: "
                    "add where(...), or .all_rows() if that is meant"
                )
            return ""
        return " WHERE " + self.where_.compile(c)


@dataclass(frozen=True, eq=False)
class Update(_Filtered):
    table: Table
    values: tuple[tuple[str, Expr], ...]
    where_: Optional[Predicate] = None
    all_rows_: bool = False
    returning_: tuple[Expr, ...] = ()
    binding: Optional["Binding"] = field(default=None, compare=False)

    @staticmethod
    def of(t: Table, values: Mapping[Any, object]) -> "Update":
        return Update(t, _assignments(t, values, "update()"))

    def compile_into(self, c: Compiler) -> str:
        c.scope = (self.table._ref_key,)
        sets = ", ".join(f"{c.ident(n)} = {e.compile(c)}" for n, e in self.values)
        s = f"UPDATE {self.table._compile_from(c)} SET {sets}{self._where_sql(c, 'update()')}"
        return s + _compile_returning(c, self.returning_)


@dataclass(frozen=True, eq=False)
class Delete(_Filtered):
    table: Table
    where_: Optional[Predicate] = None
    all_rows_: bool = False
    returning_: tuple[Expr, ...] = ()
    binding: Optional["Binding"] = field(default=None, compare=False)

    def compile_into(self, c: Compiler) -> str:
        c.scope = (self.table._ref_key,)
        s = f"DELETE FROM {self.table._compile_from(c)}{self._where_sql(c, 'delete()')}"
        return s + _compile_returning(c, self.returning_)
