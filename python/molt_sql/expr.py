"""Expressions: columns, values, comparisons, pattern matches, boolean logic,
aggregates, aliases and ordering terms. Functions, CASE and CAST are in
scalar.py, window calls in window.py, subqueries in subquery.py.

Every value a user passes becomes a ``Param`` and compiles to a placeholder;
identifiers compile through the dialect's quoting. Mistakes that can be seen
at once (comparing to a list, ``== None``, ``and``/``or`` on expressions)
raise BuildError where they are written.
"""

from __future__ import annotations

import datetime
import decimal
import uuid
from typing import TYPE_CHECKING, Iterable, Optional, Sequence, Union

from .compiler import Compiler
from .errors import BuildError

if TYPE_CHECKING:
    from .base import Query
    from .scalar import CastType
    from .table import FromItem
    from .window import Frame, Over, Window

__all__ = [
    "Expr",
    "Column",
    "Param",
    "Predicate",
    "Aggregate",
    "Aliased",
    "OrderTerm",
    "as_expr",
    "escape_like",
    "escape_glob",
]

#: Python types accepted as query values.
VALUE_TYPES: tuple[type, ...] = (
    type(None),
    bool,
    int,
    float,
    str,
    bytes,
    bytearray,
    memoryview,
    decimal.Decimal,
    uuid.UUID,
    datetime.date,
    datetime.time,
    datetime.timedelta,
)


def as_expr(value: object, context: str) -> "Expr":
    """An Expr as is; a query as a scalar subquery; a value as a Param;
    anything else is a BuildError."""
    if isinstance(value, Expr):
        return value
    from .base import Query

    if isinstance(value, Query):
        from .subquery import ScalarSubquery

        return ScalarSubquery(value)
    if isinstance(value, (list, tuple, set, frozenset, dict)):
        raise BuildError(
            f"{context}: got a {type(value).__name__} where one value was expected"
        )
    if not isinstance(value, VALUE_TYPES):
        raise BuildError(
            f"{context}: a {type(value).__name__} cannot be a query value "
            "(use None, bool, int, float, str, bytes, Decimal, UUID or a date/time)"
        )
    if isinstance(value, (bytearray, memoryview)):
        value = bytes(value)
    return Param(value)


class Expr:
    """Base of every SQL expression. Operators build new expressions."""

    __slots__ = ()

    #: True for aggregate calls (count, sum, ...)
    is_aggregate = False
    #: True for a call with OVER (...): its own scope for aggregates
    is_window = False

    def untyped_on_pg(self) -> bool:
        """True when PostgreSQL cannot tell this expression's type from the
        expression itself: a bare value (the worker sends values untyped)
        or an operation on bare values only. See typed_operands()."""
        return False

    def compile(self, c: Compiler) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def children(self) -> Iterable["Expr"]:
        return ()

    def subqueries(self) -> Iterable["Query"]:
        """Queries nested in this node (not in its children)."""
        return ()

    def describe(self) -> str:
        """A short human-readable form for error messages (no values)."""
        return type(self).__name__

    def walk(self) -> list["Expr"]:
        """This node and every node under it (not into subqueries)."""
        out: list[Expr] = []
        stack: list[Expr] = [self]
        while stack:
            e = stack.pop()
            out.append(e)
            stack.extend(e.children())
        return out

    def contains_aggregate(self) -> bool:
        """An aggregate outside any OVER (...) (``sum(x) OVER ()`` is a
        window call, not an aggregate of the query)."""
        if self.is_aggregate:
            return True
        if self.is_window:
            return False
        return any(ch.contains_aggregate() for ch in self.children())

    def contains_window(self) -> bool:
        return self.is_window or any(ch.contains_window() for ch in self.children())

    # Python's and/or/not/if would silently pick one side: refuse.
    def __bool__(self) -> bool:
        raise BuildError(
            f"{self.describe()} has no truth value in Python: combine conditions "
            "with & (and), | (or), ~ (not), and wrap each comparison in parentheses"
        )

    # ---- comparisons ----
    def _compare(self, op: str, other: object) -> "Predicate":
        if isinstance(other, (list, tuple, set, frozenset)):
            raise BuildError(
                f"comparing {self.describe()} {op} a {type(other).__name__}: "
                f"use {self.describe()}.in_([...]) to test membership"
            )
        if other is None:
            hint = "is_null()" if op == "=" else "is_not_null()"
            if op in ("=", "<>"):
                raise BuildError(
                    f"{self.describe()} {op} None is never true in SQL: "
                    f"use {self.describe()}.{hint}"
                )
            raise BuildError(f"comparing {self.describe()} {op} None is never true in SQL")
        return Comparison(self, op, as_expr(other, f"comparing {self.describe()} {op}"))

    def __eq__(self, other: object) -> "Predicate":  # type: ignore[override]
        return self._compare("=", other)

    def __ne__(self, other: object) -> "Predicate":  # type: ignore[override]
        return self._compare("<>", other)

    def __lt__(self, other: object) -> "Predicate":
        return self._compare("<", other)

    def __le__(self, other: object) -> "Predicate":
        return self._compare("<=", other)

    def __gt__(self, other: object) -> "Predicate":
        return self._compare(">", other)

    def __ge__(self, other: object) -> "Predicate":
        return self._compare(">=", other)

    __hash__ = None  # type: ignore[assignment]

    # ---- arithmetic ----
    def _arith(self, op: str, other: object, reverse: bool = False) -> "Expr":
        o = as_expr(other, f"{self.describe()} {op}")
        return BinaryOp(o, op, self) if reverse else BinaryOp(self, op, o)

    def __add__(self, other: object) -> "Expr":
        return self._arith("+", other)

    def __radd__(self, other: object) -> "Expr":
        return self._arith("+", other, True)

    def __sub__(self, other: object) -> "Expr":
        return self._arith("-", other)

    def __rsub__(self, other: object) -> "Expr":
        return self._arith("-", other, True)

    def __mul__(self, other: object) -> "Expr":
        return self._arith("*", other)

    def __rmul__(self, other: object) -> "Expr":
        return self._arith("*", other, True)

    def __truediv__(self, other: object) -> "Expr":
        return self._arith("/", other)

    def __rtruediv__(self, other: object) -> "Expr":
        return self._arith("/", other, True)

    def __mod__(self, other: object) -> "Expr":
        return self._arith("%", other)

    def __neg__(self) -> "Expr":
        return Negate(self)

    def concat(self, *others: object) -> "Expr":
        """String concatenation ``a || b || ...`` (NULL if any part is NULL,
        on both databases)."""
        from .scalar import Concat

        return Concat([self, *(as_expr(o, f"{self.describe()}.concat()") for o in others)])

    def cast(self, type_name: "CastType") -> "Expr":
        """CAST(expr AS type) for a type of scalar.CAST_TYPES."""
        from .scalar import Cast

        return Cast(self, type_name)

    def is_distinct_from(self, other: object) -> "Predicate":
        """Not equal, with NULL a value like any other (never NULL itself)."""
        return DistinctFrom(self, as_expr(other, f"{self.describe()}.is_distinct_from()"), negate=False)

    def is_not_distinct_from(self, other: object) -> "Predicate":
        """Equal, with NULL equal to NULL."""
        return DistinctFrom(self, as_expr(other, f"{self.describe()}.is_not_distinct_from()"), negate=True)

    # ---- membership, ranges, nulls ----
    def in_(self, values: Union[Iterable[object], "Query"]) -> "Predicate":
        from .base import Query

        if isinstance(values, Query):
            return InSelect(self, values, negate=False)
        if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
            raise BuildError(
                f"{self.describe()}.in_() takes a list, tuple or set of values "
                f"(or a select), not a {type(values).__name__}"
            )
        items = [as_expr(v, f"{self.describe()}.in_()") for v in values]
        for v in items:
            if isinstance(v, Param) and v.value is None:
                raise BuildError(
                    f"{self.describe()}.in_() got None, which never matches: "
                    f"use | {self.describe()}.is_null()"
                )
        return InList(self, items, negate=False)

    def not_in(self, values: Union[Iterable[object], "Query"]) -> "Predicate":
        p = self.in_(values)
        assert isinstance(p, (InList, InSelect))
        p.negate = True
        return p

    def between(self, low: object, high: object) -> "Predicate":
        ctx = f"{self.describe()}.between()"
        if low is None or high is None:
            raise BuildError(f"{ctx}: a None bound never matches in SQL")
        return Between(self, as_expr(low, ctx), as_expr(high, ctx))

    def is_null(self) -> "Predicate":
        return IsNull(self, negate=False)

    def is_not_null(self) -> "Predicate":
        return IsNull(self, negate=True)

    # ---- patterns ----
    def like(self, pattern: object) -> "Predicate":
        """SQL LIKE with the pattern as given (% and _ are wildcards, \\ escapes).
        On SQLite, LIKE ignores ASCII case."""
        return Like(self, as_expr(pattern, f"{self.describe()}.like()"), "like")

    def ilike(self, pattern: object) -> "Predicate":
        """Case-insensitive LIKE: ILIKE on PostgreSQL, lower() LIKE lower() on SQLite."""
        return Like(self, as_expr(pattern, f"{self.describe()}.ilike()"), "ilike")

    def _literal_match(self, fn: str, text: object, kind: str) -> "Predicate":
        if not isinstance(text, str):
            raise BuildError(
                f"{self.describe()}.{fn}() takes a str, not {type(text).__name__}"
            )
        return LiteralMatch(self, text, kind)

    def matches(self, pattern: object) -> "Predicate":
        """POSIX regular expression match (``~``) on PostgreSQL. SQLite has
        no regular expressions of its own, so compiling it for SQLite is a
        BuildError."""
        return RegexMatch(self, as_expr(pattern, f"{self.describe()}.matches()"))

    def startswith(self, prefix: str) -> "Predicate":
        """True when the value begins with ``prefix`` (case-sensitive; %, _ and
        \\ in ``prefix`` are plain characters)."""
        return self._literal_match("startswith", prefix, "prefix")

    def endswith(self, suffix: str) -> "Predicate":
        return self._literal_match("endswith", suffix, "suffix")

    def contains(self, part: str) -> "Predicate":
        return self._literal_match("contains", part, "infix")

    # ---- aggregates, aliases, ordering ----
    def count(self, *, distinct: bool = False) -> "Aggregate":
        return Aggregate("count", self, distinct=distinct)

    def sum(self) -> "Aggregate":
        return Aggregate("sum", self)

    def avg(self) -> "Aggregate":
        return Aggregate("avg", self)

    def min(self) -> "Aggregate":
        return Aggregate("min", self)

    def max(self) -> "Aggregate":
        return Aggregate("max", self)

    def as_(self, name: str) -> "Aliased":
        return Aliased(self, name)

    label = as_

    def asc(self) -> "OrderTerm":
        return OrderTerm(self, descending=False)

    def desc(self) -> "OrderTerm":
        return OrderTerm(self, descending=True)


class Param(Expr):
    """A value: compiles to a placeholder, the value goes to params."""

    __slots__ = ("value",)

    def __init__(self, value: object) -> None:
        self.value = value

    def compile(self, c: Compiler) -> str:
        return c.param(self.value)

    def describe(self) -> str:
        return "a value"

    def untyped_on_pg(self) -> bool:
        return pg_type_of(self.value) is not None


def pg_type_of(value: object) -> Optional[str]:
    """The PostgreSQL type a bare value is cast to where nothing else types
    it (None: leave it as it is: NULL, and bool, which the worker types)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, datetime.datetime):
        return "timestamptz" if value.tzinfo is not None else "timestamp"
    for py, pg in PG_TYPES:
        if isinstance(value, py):
            return pg
    return None


PG_TYPES: tuple[tuple[type, str], ...] = (
    (int, "bigint"),
    (float, "double precision"),
    (str, "text"),
    (bytes, "bytea"),
    (decimal.Decimal, "numeric"),
    (uuid.UUID, "uuid"),
    (datetime.date, "date"),
    (datetime.time, "time"),
    (datetime.timedelta, "interval"),
)


class PgTyped(Expr):
    """A bare value written CAST($n AS type), on PostgreSQL."""

    __slots__ = ("param",)

    def __init__(self, param: Param) -> None:
        self.param = param

    def compile(self, c: Compiler) -> str:
        return f"CAST({self.param.compile(c)} AS {pg_type_of(self.param.value)})"

    def children(self) -> Iterable[Expr]:
        return (self.param,)


def typed_operands(c: Compiler, exprs: Sequence[Expr]) -> list[Expr]:
    """The operands of one operator or function, with the bare values cast
    when none of them has a type PostgreSQL can see: ``$1 - $2`` is
    ambiguous there and ``greatest($1, $2)`` would compare text, since the
    worker sends values untyped. Next to a typed operand (a column) a value
    takes that operand's type, as written; SQLite needs nothing."""
    if c.dialect.name != "postgres" or not all(e.untyped_on_pg() for e in exprs):
        return list(exprs)
    return [PgTyped(e) if isinstance(e, Param) else e for e in exprs]


def typed(c: Compiler, e: Expr) -> Expr:
    return typed_operands(c, [e])[0]


class Column(Expr):
    """A column of a table (or of a table alias)."""

    __slots__ = ("table", "name")

    def __init__(self, table: "FromItem", name: str) -> None:
        if not isinstance(name, str) or not name:
            raise BuildError(f"a column name must be a non-empty str, got {name!r}")
        self.table = table
        self.name = name

    def compile(self, c: Compiler) -> str:
        return self.table._compile_ref(c) + "." + c.ident(self.name)

    def describe(self) -> str:
        return f"{self.table._ref_name}.{self.name}"

    def __repr__(self) -> str:
        return f"Column({self.describe()})"


class BinaryOp(Expr):
    __slots__ = ("left", "op", "right")

    def __init__(self, left: Expr, op: str, right: Expr) -> None:
        self.left, self.op, self.right = left, op, right

    def compile(self, c: Compiler) -> str:
        op = "%%" if self.op == "%" and c.paramstyle == "format" else self.op
        left, right = typed_operands(c, (self.left, self.right))
        return f"({left.compile(c)} {op} {right.compile(c)})"

    def children(self) -> Iterable[Expr]:
        return (self.left, self.right)

    def describe(self) -> str:
        return f"({self.left.describe()} {self.op} {self.right.describe()})"

    def untyped_on_pg(self) -> bool:
        return self.left.untyped_on_pg() and self.right.untyped_on_pg()


class Negate(Expr):
    __slots__ = ("expr",)

    def __init__(self, expr: Expr) -> None:
        self.expr = expr

    def compile(self, c: Compiler) -> str:
        return f"(- {typed(c, self.expr).compile(c)})"

    def children(self) -> Iterable[Expr]:
        return (self.expr,)

    def describe(self) -> str:
        return f"-{self.expr.describe()}"

    def untyped_on_pg(self) -> bool:
        return self.expr.untyped_on_pg()


class Predicate(Expr):
    """An expression with a truth value: combine with &, | and ~."""

    __slots__ = ()

    def __and__(self, other: object) -> "Predicate":
        return BoolOp("AND", [self, _as_predicate(other, "&")])

    def __rand__(self, other: object) -> "Predicate":
        return BoolOp("AND", [_as_predicate(other, "&"), self])

    def __or__(self, other: object) -> "Predicate":
        return BoolOp("OR", [self, _as_predicate(other, "|")])

    def __ror__(self, other: object) -> "Predicate":
        return BoolOp("OR", [_as_predicate(other, "|"), self])

    def __invert__(self) -> "Predicate":
        return Not(self)


def _as_predicate(other: object, op: str) -> Predicate:
    if not isinstance(other, Predicate):
        raise BuildError(
            f"{op} combines conditions, got {type(other).__name__}: "
            "write a comparison such as (T.col == value)"
        )
    return other


class Comparison(Predicate):
    __slots__ = ("left", "op", "right")

    def __init__(self, left: Expr, op: str, right: Expr) -> None:
        self.left, self.op, self.right = left, op, right

    def compile(self, c: Compiler) -> str:
        left, right = typed_operands(c, (self.left, self.right))
        return f"{left.compile(c)} {self.op} {right.compile(c)}"

    def children(self) -> Iterable[Expr]:
        return (self.left, self.right)

    def describe(self) -> str:
        return f"{self.left.describe()} {self.op} {self.right.describe()}"


class BoolOp(Predicate):
    __slots__ = ("op", "parts")

    def __init__(self, op: str, parts: Sequence[Predicate]) -> None:
        flat: list[Predicate] = []
        for p in parts:
            if isinstance(p, BoolOp) and p.op == op:
                flat.extend(p.parts)
            else:
                flat.append(p)
        self.op: str = op
        self.parts: list[Predicate] = flat

    def compile(self, c: Compiler) -> str:
        return "(" + f" {self.op} ".join(p.compile(c) for p in self.parts) + ")"

    def children(self) -> Iterable[Expr]:
        return self.parts

    def describe(self) -> str:
        return "(" + f" {self.op} ".join(p.describe() for p in self.parts) + ")"


class Not(Predicate):
    __slots__ = ("inner",)

    def __init__(self, inner: Predicate) -> None:
        self.inner = inner

    def compile(self, c: Compiler) -> str:
        return f"NOT ({self.inner.compile(c)})"

    def children(self) -> Iterable[Expr]:
        return (self.inner,)

    def describe(self) -> str:
        return f"NOT ({self.inner.describe()})"


class InList(Predicate):
    __slots__ = ("expr", "items", "negate")

    def __init__(self, expr: Expr, items: list[Expr], negate: bool) -> None:
        self.expr, self.items, self.negate = expr, items, negate

    def compile(self, c: Compiler) -> str:
        if not self.items:
            # x IN () is a syntax error; an empty set matches nothing (or,
            # negated, everything that is not NULL-compared: keep it simple)
            return "(1 = 1)" if self.negate else "(1 = 0)"
        lhs, *items = typed_operands(c, (self.expr, *self.items))
        left = lhs.compile(c)  # first: placeholders are numbered in text order
        vals = ", ".join(i.compile(c) for i in items)
        return f"{left} {'NOT IN' if self.negate else 'IN'} ({vals})"

    def children(self) -> Iterable[Expr]:
        return (self.expr, *self.items)

    def describe(self) -> str:
        return f"{self.expr.describe()} {'NOT IN' if self.negate else 'IN'} (...)"


class InSelect(Predicate):
    __slots__ = ("expr", "select", "negate")

    def __init__(self, expr: Expr, select: "Query", negate: bool) -> None:
        select.check_one_column(f"{expr.describe()}.in_(subquery)")
        self.expr, self.select, self.negate = expr, select, negate

    def compile(self, c: Compiler) -> str:
        lhs = self.expr.compile(c)
        return f"{lhs} {'NOT IN' if self.negate else 'IN'} ({self.select.compile_into(c)})"

    def children(self) -> Iterable[Expr]:
        return (self.expr,)

    def subqueries(self) -> Iterable["Query"]:
        return (self.select,)


class DistinctFrom(Predicate):
    """IS [NOT] DISTINCT FROM on PostgreSQL; SQLite's IS [NOT], which means
    the same."""

    __slots__ = ("left", "right", "negate")

    def __init__(self, left: Expr, right: Expr, negate: bool) -> None:
        self.left, self.right, self.negate = left, right, negate

    def compile(self, c: Compiler) -> str:
        left, right = typed_operands(c, (self.left, self.right))
        lhs, rhs = left.compile(c), right.compile(c)
        if c.dialect.name == "sqlite":
            return f"{lhs} {'IS' if self.negate else 'IS NOT'} {rhs}"
        return f"{lhs} {'IS NOT DISTINCT FROM' if self.negate else 'IS DISTINCT FROM'} {rhs}"

    def children(self) -> Iterable[Expr]:
        return (self.left, self.right)


class Between(Predicate):
    __slots__ = ("expr", "low", "high")

    def __init__(self, expr: Expr, low: Expr, high: Expr) -> None:
        self.expr, self.low, self.high = expr, low, high

    def compile(self, c: Compiler) -> str:
        e, low, high = typed_operands(c, (self.expr, self.low, self.high))
        return f"{e.compile(c)} BETWEEN {low.compile(c)} AND {high.compile(c)}"

    def children(self) -> Iterable[Expr]:
        return (self.expr, self.low, self.high)


class IsNull(Predicate):
    __slots__ = ("expr", "negate")

    def __init__(self, expr: Expr, negate: bool) -> None:
        self.expr, self.negate = expr, negate

    def compile(self, c: Compiler) -> str:
        return f"{typed(c, self.expr).compile(c)} IS {'NOT NULL' if self.negate else 'NULL'}"

    def children(self) -> Iterable[Expr]:
        return (self.expr,)


class Like(Predicate):
    """LIKE / ILIKE with a pattern the user wrote (wildcards meaningful)."""

    __slots__ = ("expr", "pattern", "kind")

    def __init__(self, expr: Expr, pattern: Expr, kind: str) -> None:
        self.expr, self.pattern, self.kind = expr, pattern, kind

    def compile(self, c: Compiler) -> str:
        lhs = self.expr.compile(c)
        pat = self.pattern.compile(c)
        if self.kind == "like":
            return f"{lhs} LIKE {pat} ESCAPE '\\'"
        if c.dialect.has_ilike:
            return f"{lhs} ILIKE {pat} ESCAPE '\\'"
        return f"lower({lhs}) LIKE lower({pat}) ESCAPE '\\'"

    def children(self) -> Iterable[Expr]:
        return (self.expr, self.pattern)


class RegexMatch(Predicate):
    __slots__ = ("expr", "pattern")

    def __init__(self, expr: Expr, pattern: Expr) -> None:
        self.expr, self.pattern = expr, pattern

    def compile(self, c: Compiler) -> str:
        if c.dialect.name == "sqlite":
            raise BuildError(
                f"{self.expr.describe()}.matches(): SQLite has no regular expressions (its REGEXP "
                "operator calls a regexp() function that is not there unless loaded); use like() "
                "or startswith/endswith/contains"
            )
        left, right = typed_operands(c, (self.expr, self.pattern))
        return f"{left.compile(c)} ~ {right.compile(c)}"

    def children(self) -> Iterable[Expr]:
        return (self.expr, self.pattern)


def escape_like(text: str) -> str:
    """``text`` as a LIKE pattern matching itself (escape character ``\\``)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def escape_glob(text: str) -> str:
    """``text`` as a SQLite GLOB pattern matching itself: each of * ? [ in
    brackets (GLOB has no escape character)."""
    out = []
    for ch in text:
        out.append(f"[{ch}]" if ch in "*?[" else ch)
    return "".join(out)


class LiteralMatch(Predicate):
    """startswith / endswith / contains: the text is matched literally.

    PostgreSQL: LIKE with %, _ and \\ escaped (ESCAPE '\\'). SQLite: GLOB
    with * ? [ bracketed, which is case-sensitive like PostgreSQL's LIKE.
    """

    __slots__ = ("expr", "text", "kind")

    def __init__(self, expr: Expr, text: str, kind: str) -> None:
        self.expr, self.text, self.kind = expr, text, kind

    def compile(self, c: Compiler) -> str:
        lhs = self.expr.compile(c)
        if c.dialect.prefix_match_with_glob:
            body, any_ = escape_glob(self.text), "*"
        else:
            body, any_ = escape_like(self.text), "%"
        if self.kind == "prefix":
            pattern = body + any_
        elif self.kind == "suffix":
            pattern = any_ + body
        else:
            pattern = any_ + body + any_
        ph = c.param(pattern)
        if c.dialect.prefix_match_with_glob:
            return f"{lhs} GLOB {ph}"
        return f"{lhs} LIKE {ph} ESCAPE '\\'"

    def children(self) -> Iterable[Expr]:
        return (self.expr,)


AGGREGATES = ("count", "sum", "avg", "min", "max")


class Aggregate(Expr):
    """count / sum / avg / min / max; ``arg`` None means count(*).
    ``.filter(cond)`` adds FILTER (WHERE cond); ``.over(...)`` makes it a
    window call (window.py)."""

    __slots__ = ("fn", "arg", "distinct", "filter_")
    is_aggregate = True

    def __init__(
        self, fn: str, arg: Optional[Expr], *, distinct: bool = False, filter_: Optional[Predicate] = None
    ) -> None:
        if fn not in AGGREGATES:
            raise BuildError(f"unknown aggregate {fn!r}: use one of {', '.join(AGGREGATES)}")
        if arg is None and fn != "count":
            raise BuildError(f"{fn}() needs a column")
        if arg is not None and (arg.contains_aggregate() or arg.contains_window()):
            raise BuildError(f"{fn}({arg.describe()}): aggregates cannot be nested")
        self.fn, self.arg, self.distinct, self.filter_ = fn, arg, distinct, filter_

    def filter(self, *conditions: Predicate) -> "Aggregate":
        """``agg FILTER (WHERE ...)``: only rows meeting the conditions count."""
        cond = self.filter_
        for p in conditions:
            p = _as_predicate(p, f"{self.describe()}.filter()")
            if p.contains_aggregate() or p.contains_window():
                raise BuildError(f"{self.describe()}.filter({p.describe()}): no aggregate or window call inside")
            cond = p if cond is None else (cond & p)
        if cond is None:
            raise BuildError(f"{self.describe()}.filter() needs at least one condition")
        return Aggregate(self.fn, self.arg, distinct=self.distinct, filter_=cond)

    def over(
        self,
        window: "Optional[Window]" = None,
        *,
        partition_by: Sequence[Expr] = (),
        order_by: "Sequence[Expr | OrderTerm]" = (),
        frame: "Optional[Frame]" = None,
    ) -> "Over":
        """This aggregate over a window: a named ``window(...)`` or one given
        inline by ``partition_by``, ``order_by`` and ``frame``."""
        from .window import Over

        return Over.make(self, window, partition_by, order_by, frame)

    def compile(self, c: Compiler) -> str:
        if self.arg is None:
            call = "count(*)"
        else:
            d = "DISTINCT " if self.distinct else ""
            call = f"{self.fn}({d}{typed(c, self.arg).compile(c)})"
        if self.filter_ is not None:
            call += f" FILTER (WHERE {self.filter_.compile(c)})"
        return call

    def children(self) -> Iterable[Expr]:
        kids: list[Expr] = [] if self.arg is None else [self.arg]
        if self.filter_ is not None:
            kids.append(self.filter_)
        return kids

    def describe(self) -> str:
        return f"{self.fn}({'*' if self.arg is None else self.arg.describe()})"

    # an aggregate compared gives a predicate usable in having()


class Aliased(Expr):
    """``expr AS "name"`` in a select list."""

    __slots__ = ("expr", "name")

    def __init__(self, expr: Expr, name: str) -> None:
        if not isinstance(name, str) or not name:
            raise BuildError(f"an alias must be a non-empty str, got {name!r}")
        inner: Expr = expr.expr if isinstance(expr, Aliased) else expr
        self.expr: Expr = inner
        self.name: str = name

    def compile(self, c: Compiler) -> str:
        return f"{typed(c, self.expr).compile(c)} AS {c.ident(self.name)}"

    def compile_ref(self, c: Compiler) -> str:
        """The alias alone (in ORDER BY)."""
        return c.ident(self.name)

    def children(self) -> Iterable[Expr]:
        return (self.expr,)

    def describe(self) -> str:
        return f"{self.expr.describe()} AS {self.name}"

    @property
    def is_aggregate(self) -> bool:  # type: ignore[override]
        return False

    def asc(self) -> "OrderTerm":
        return OrderTerm(AliasRef(self.name), descending=False)

    def desc(self) -> "OrderTerm":
        return OrderTerm(AliasRef(self.name), descending=True)


class AliasRef(Expr):
    """A reference to a select-list alias (ORDER BY "total")."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def compile(self, c: Compiler) -> str:
        return c.ident(self.name)

    def describe(self) -> str:
        return self.name


class OrderTerm:
    """One ORDER BY term: expression, direction, NULLS FIRST/LAST."""

    __slots__ = ("expr", "descending", "nulls")

    def __init__(self, expr: Expr, descending: bool, nulls: Optional[str] = None) -> None:
        self.expr, self.descending, self.nulls = expr, descending, nulls

    def nulls_first(self) -> "OrderTerm":
        return OrderTerm(self.expr, self.descending, "FIRST")

    def nulls_last(self) -> "OrderTerm":
        return OrderTerm(self.expr, self.descending, "LAST")

    def compile(self, c: Compiler) -> str:
        s = self.expr.compile(c) + (" DESC" if self.descending else " ASC")
        if self.nulls:
            s += f" NULLS {self.nulls}"
        return s

    def __bool__(self) -> bool:
        raise BuildError("an ordering term has no truth value")
