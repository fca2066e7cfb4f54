"""The functions as free functions: aggregates (count(), sum_(T.x), ...),
window functions (row_number(), lag(T.x), ...), conditional and scalar
functions (coalesce, case, cast, lower, extract, ...) and exists().
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from .expr import Aggregate, Expr, as_expr
from .scalar import (  # noqa: F401  (case ... strpos: re-exported)
    CastType, Func, IntArg, case, date_trunc, extract, extreme, param, plain, same_everywhere, strpos,
)
from .window import WindowCall

if TYPE_CHECKING:
    from .base import Query
    from .subquery import Exists

__all__ = [
    "count", "sum_", "avg", "min_", "max_",
    "row_number", "rank", "dense_rank", "percent_rank", "cume_dist", "ntile", "lag", "lead",
    "first_value", "last_value", "nth_value",
    "coalesce", "nullif", "greatest", "least", "case", "cast", "exists", "param",
    "lower", "upper", "length", "trim", "ltrim", "rtrim", "replace", "substr", "strpos", "abs_",
    "extract", "date_trunc",
]


# ---- aggregates ----------------------------------------------------------------

def count(expr: Optional[Expr] = None, *, distinct: bool = False) -> Aggregate:
    """count(*) without an argument, else count([DISTINCT] expr)."""
    return Aggregate("count", expr, distinct=distinct)


def sum_(expr: Expr) -> Aggregate:
    return Aggregate("sum", expr)


def avg(expr: Expr) -> Aggregate:
    return Aggregate("avg", expr)


def min_(expr: Expr) -> Aggregate:
    return Aggregate("min", expr)


def max_(expr: Expr) -> Aggregate:
    return Aggregate("max", expr)


# ---- window functions ------------------------------------------------------------

def row_number() -> WindowCall:
    return WindowCall("row_number")


def rank() -> WindowCall:
    return WindowCall("rank")


def dense_rank() -> WindowCall:
    return WindowCall("dense_rank")


def percent_rank() -> WindowCall:
    return WindowCall("percent_rank")


def cume_dist() -> WindowCall:
    return WindowCall("cume_dist")


def ntile(buckets: int) -> WindowCall:
    return WindowCall("ntile", [IntArg("ntile()", buckets, 1)])


def _shift(fn: str, expr: Expr, offset: int, default: object) -> WindowCall:
    args: list[Expr] = [as_expr(expr, f"{fn}()"), IntArg(f"{fn}() offset", offset, 0)]
    if default is not None:
        args.append(as_expr(default, f"{fn}() default"))
    return WindowCall(fn, args)


def lag(expr: Expr, offset: int = 1, default: object = None) -> WindowCall:
    """The value ``offset`` rows before, ``default`` (else NULL) past the start."""
    return _shift("lag", expr, offset, default)


def lead(expr: Expr, offset: int = 1, default: object = None) -> WindowCall:
    return _shift("lead", expr, offset, default)


def first_value(expr: Expr) -> WindowCall:
    return WindowCall("first_value", [as_expr(expr, "first_value()")])


def last_value(expr: Expr) -> WindowCall:
    """The frame's last value: with order_by the default frame ends at the
    current row; pass frame=rows_between(UNBOUNDED_PRECEDING, UNBOUNDED_FOLLOWING)
    for the partition's last."""
    return WindowCall("last_value", [as_expr(expr, "last_value()")])


def nth_value(expr: Expr, n: int) -> WindowCall:
    return WindowCall("nth_value", [as_expr(expr, "nth_value()"), IntArg("nth_value()", n, 1)])


# ---- conditionals ---------------------------------------------------------------

def coalesce(*args: object) -> Func:
    """The first argument that is not NULL."""
    return same_everywhere("coalesce", args, (2, 1000), polymorphic=True)


def nullif(a: object, b: object) -> Func:
    """NULL when a = b, else a."""
    return same_everywhere("nullif", (a, b), (2, 2), polymorphic=True)


def greatest(*args: object) -> Func:
    """The largest argument, NULLs skipped (PostgreSQL's rule, kept on SQLite)."""
    return extreme("greatest", args)


def least(*args: object) -> Func:
    """The smallest argument, NULLs skipped."""
    return extreme("least", args)


def cast(expr: object, type_name: CastType) -> Expr:
    return as_expr(expr, "cast()").cast(type_name)


def exists(query: "Query") -> "Exists":
    """EXISTS (subquery); ``~exists(q)`` is NOT EXISTS."""
    from .subquery import Exists

    return Exists(query)


# ---- strings and numbers ---------------------------------------------------------
# lower/upper change ASCII letters only on SQLite, every letter on PostgreSQL.

def lower(expr: object) -> Func:
    return same_everywhere("lower", (expr,), (1, 1))


def upper(expr: object) -> Func:
    return same_everywhere("upper", (expr,), (1, 1))


def length(expr: object) -> Func:
    """Characters in a text."""
    return same_everywhere("length", (expr,), (1, 1))


def trim(expr: object) -> Func:
    """Spaces removed at both ends (ltrim, rtrim: one end)."""
    return same_everywhere("trim", (expr,), (1, 1))


def ltrim(expr: object) -> Func:
    return same_everywhere("ltrim", (expr,), (1, 1))


def rtrim(expr: object) -> Func:
    return same_everywhere("rtrim", (expr,), (1, 1))


def replace(expr: object, old: object, new: object) -> Func:
    return same_everywhere("replace", (expr, old, new), (3, 3))


def substr(expr: object, start: int, length: Optional[int] = None) -> Func:
    """Characters from 1-based ``start``, ``length`` of them (else to the end)."""
    args: list[Expr] = [as_expr(expr, "substr()"), IntArg("substr() start", start, 1)]
    if length is not None:
        args.append(IntArg("substr() length", length, 0))
    return Func("substr", args, {"postgres": plain("substr"), "sqlite": plain("substr")})


def abs_(expr: object) -> Func:
    return same_everywhere("abs", (expr,), (1, 1), polymorphic=True)
