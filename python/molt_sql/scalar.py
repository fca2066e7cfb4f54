"""Scalar expressions: CASE, CAST, concatenation and the SQL functions,
each compiled to what its dialect needs.

A function is a ``Func`` node with one renderer per dialect. A renderer
compiles the arguments itself, in the order they appear in the text, so
placeholders stay numbered in text order even when a dialect repeats or
reorders them. A function a dialect cannot express raises BuildError when
the query is compiled for that dialect.
"""

from __future__ import annotations

from typing import Callable, Iterable, Literal, Optional, Sequence

from .compiler import Compiler
from .errors import BuildError
from .expr import Expr, Param, Predicate, as_expr, typed_operands

__all__ = ["Func", "IntArg", "Case", "Cast", "Concat", "CAST_TYPES", "CastType", "DATE_PARTS", "TRUNC_UNITS"]

Renderer = Callable[[Compiler, Sequence[Expr]], str]


def _args(c: Compiler, args: Iterable[Expr]) -> str:
    return ", ".join(a.compile(c) for a in args)


def plain(name: str) -> Renderer:
    """``name(arg, ...)``: the same on every dialect."""
    return lambda c, args: f"{name}({_args(c, args)})"


class IntArg(Expr):
    """An integer argument PostgreSQL declares as ``integer`` (lag's offset,
    ntile's bucket count, substr's start and length), written
    ``CAST($n AS integer)`` so that the call resolves whatever type the
    driver gives the value."""

    __slots__ = ("value",)

    def __init__(self, fn: str, value: object, minimum: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= 2**31 - 1:
            raise BuildError(f"{fn}: takes an int from {minimum} to 2147483647, got {value!r}")
        self.value = value

    def compile(self, c: Compiler) -> str:
        return f"CAST({c.param(self.value)} AS integer)"

    def describe(self) -> str:
        return "an int"


class Func(Expr):
    """A function call; ``renderers`` maps a dialect name to how it is
    written there (a dialect missing from it cannot express the call)."""

    __slots__ = ("name", "args", "renderers", "why_not", "polymorphic")

    def __init__(
        self, name: str, args: Sequence[Expr], renderers: dict[str, Renderer], why_not: str = "",
        polymorphic: bool = False,
    ) -> None:
        self.name, self.args, self.renderers, self.why_not = name, list(args), renderers, why_not
        #: the result has the arguments' type (coalesce, greatest, abs, ...)
        self.polymorphic = polymorphic

    def compile(self, c: Compiler) -> str:
        render = self.renderers.get(c.dialect.name)
        if render is None:
            raise BuildError(f"{self.name}() cannot be compiled for {c.dialect.name}: {self.why_not}")
        return render(c, typed_operands(c, self.args) if self.polymorphic else self.args)

    def untyped_on_pg(self) -> bool:
        return self.polymorphic and all(a.untyped_on_pg() for a in self.args)

    def children(self) -> Iterable[Expr]:
        return self.args

    def describe(self) -> str:
        return f"{self.name}({', '.join(a.describe() for a in self.args)})"


class Concat(Expr):
    """``(a || b || ...)``."""

    __slots__ = ("parts",)

    def __init__(self, parts: Sequence[Expr]) -> None:
        self.parts = list(parts)

    def compile(self, c: Compiler) -> str:
        parts = [p.compile(c) for p in self.parts]
        if c.dialect.name == "postgres" and all(p.untyped_on_pg() for p in self.parts):
            parts[0] = f"CAST({parts[0]} AS text)"  # there is no unknown || unknown
        return "(" + " || ".join(parts) + ")"

    def children(self) -> Iterable[Expr]:
        return self.parts

    def describe(self) -> str:
        return "(" + " || ".join(p.describe() for p in self.parts) + ")"


#: Portable CAST targets and what each is called per dialect. ``date`` on
#: SQLite is date(x): the 'YYYY-MM-DD' text SQLite keeps dates as.
CastType = Literal["integer", "bigint", "float", "numeric", "text", "date"]
CAST_TYPES: dict[str, tuple[str, str]] = {
    "integer": ("integer", "INTEGER"),
    "bigint": ("bigint", "INTEGER"),
    "float": ("double precision", "REAL"),
    "numeric": ("numeric", "NUMERIC"),
    "text": ("text", "TEXT"),
    "date": ("date", ""),
}


class Cast(Expr):
    __slots__ = ("expr", "type_name")

    def __init__(self, expr: Expr, type_name: str) -> None:
        if type_name not in CAST_TYPES:
            raise BuildError(
                f"cast({expr.describe()}, {type_name!r}): the type must be one of {', '.join(CAST_TYPES)}"
            )
        self.expr, self.type_name = expr, type_name

    def compile(self, c: Compiler) -> str:
        pg, lite = CAST_TYPES[self.type_name]
        inner = self.expr.compile(c)
        if c.dialect.name == "sqlite":
            return f"date({inner})" if self.type_name == "date" else f"CAST({inner} AS {lite})"
        return f"CAST({inner} AS {pg})"

    def children(self) -> Iterable[Expr]:
        return (self.expr,)

    def describe(self) -> str:
        return f"cast({self.expr.describe()} AS {self.type_name})"


class Case(Expr):
    """``CASE WHEN cond THEN value ... [ELSE value] END``."""

    __slots__ = ("whens", "else_")

    def __init__(self, whens: Sequence[tuple[Predicate, Expr]], else_: Optional[Expr]) -> None:
        self.whens, self.else_ = list(whens), else_

    def compile(self, c: Compiler) -> str:
        values = typed_operands(c, self._values())
        parts = ["CASE"]
        for (cond, _), value in zip(self.whens, values):
            parts.append(f"WHEN {cond.compile(c)} THEN {value.compile(c)}")
        if self.else_ is not None:
            parts.append(f"ELSE {values[-1].compile(c)}")
        parts.append("END")
        return " ".join(parts)

    def children(self) -> Iterable[Expr]:
        out: list[Expr] = []
        for cond, value in self.whens:
            out += [cond, value]
        if self.else_ is not None:
            out.append(self.else_)
        return out

    def describe(self) -> str:
        return "CASE ... END"

    def _values(self) -> list[Expr]:
        return [v for _, v in self.whens] + ([] if self.else_ is None else [self.else_])

    def untyped_on_pg(self) -> bool:
        return all(v.untyped_on_pg() for v in self._values())


def case(*whens: tuple[Predicate, object], else_: object = None) -> Case:
    """``case((cond, value), (cond, value), else_=value)``."""
    if not whens:
        raise BuildError("case() needs at least one (condition, value) pair")
    pairs: list[tuple[Predicate, Expr]] = []
    for w in whens:
        if not isinstance(w, tuple) or len(w) != 2:
            raise BuildError(f"case() takes (condition, value) pairs, not {type(w).__name__}")
        cond, value = w
        if not isinstance(cond, Predicate):
            raise BuildError(
                f"case(): a condition such as (T.col > 1) comes first in each pair, "
                f"not {cond.describe() if isinstance(cond, Expr) else type(cond).__name__}"
            )
        pairs.append((cond, as_expr(value, "case() value")))
    other = None if else_ is None else as_expr(else_, "case(else_=...)")
    return Case(pairs, other)


# ---- greatest / least -------------------------------------------------------

def _extreme_sqlite(fn: str) -> Renderer:
    """PostgreSQL's greatest/least skip NULLs; SQLite's multi-argument
    max/min return NULL if any argument is NULL. ``max(coalesce(a, b, c),
    coalesce(b, a, c), coalesce(c, a, b))`` skips them: each coalesce is
    its own argument when that is not NULL and some other non-NULL one
    otherwise (NULL only when all are)."""

    def render(c: Compiler, args: Sequence[Expr]) -> str:
        if len(args) == 1:
            return args[0].compile(c)
        terms = []
        for i, first in enumerate(args):
            rest = [a for j, a in enumerate(args) if j != i]
            terms.append(f"coalesce({_args(c, [first, *rest])})")
        return f"{fn}({', '.join(terms)})"

    return render


def extreme(name: str, args: Sequence[object]) -> Func:
    if not args:
        raise BuildError(f"{name}() needs at least one argument")
    exprs = [as_expr(a, f"{name}()") for a in args]
    lite = "max" if name == "greatest" else "min"
    return Func(name, exprs, {"postgres": plain(name), "sqlite": _extreme_sqlite(lite)}, polymorphic=True)


# ---- dates --------------------------------------------------------------------

#: extract(part): the PostgreSQL field and the SQLite strftime format.
#: ``dow`` is 0 for Sunday on both.
DATE_PARTS: dict[str, tuple[str, str]] = {
    "year": ("year", "%Y"),
    "month": ("month", "%m"),
    "day": ("day", "%d"),
    "hour": ("hour", "%H"),
    "minute": ("minute", "%M"),
    "dow": ("dow", "%w"),
    "doy": ("doy", "%j"),
}

#: date_trunc(unit): the SQLite date() modifier. Both give a date.
TRUNC_UNITS: dict[str, str] = {"year": "start of year", "month": "start of month", "day": ""}


def extract(part: str, expr: object) -> Func:
    """The ``part`` of a date/timestamp as an integer. The strftime format
    goes to SQLite as a parameter (it holds %, which the format paramstyle
    would otherwise need doubled)."""
    if part not in DATE_PARTS:
        raise BuildError(f"extract({part!r}, ...): the part must be one of {', '.join(DATE_PARTS)}")
    field, fmt = DATE_PARTS[part]
    arg = as_expr(expr, f"extract({part!r})")
    return Func(f"extract_{part}", [arg], {
        "postgres": lambda c, a: f"CAST(extract({field} FROM {a[0].compile(c)}) AS integer)",
        "sqlite": lambda c, a: f"CAST(strftime({c.param(fmt)}, {a[0].compile(c)}) AS INTEGER)",
    })


def date_trunc(unit: str, expr: object) -> Func:
    """The date at the start of the year / month / day holding ``expr``."""
    if unit not in TRUNC_UNITS:
        raise BuildError(f"date_trunc({unit!r}, ...): the unit must be one of {', '.join(TRUNC_UNITS)}")
    modifier = TRUNC_UNITS[unit]
    arg = as_expr(expr, f"date_trunc({unit!r})")
    return Func(f"date_trunc_{unit}", [arg], {
        "postgres": lambda c, a: f"CAST(date_trunc('{unit}', {a[0].compile(c)}) AS date)",
        "sqlite": lambda c, a: f"date({a[0].compile(c)}{', ' + repr(modifier) if modifier else ''})",
    })


# ---- strings ------------------------------------------------------------------

def strpos(expr: object, part: object) -> Func:
    """1-based position of ``part`` in ``expr``, 0 when absent."""
    args = [as_expr(expr, "strpos()"), as_expr(part, "strpos()")]
    return Func("strpos", args, {"postgres": plain("strpos"), "sqlite": plain("instr")})


def same_everywhere(name: str, args: Sequence[object], arity: tuple[int, int], polymorphic: bool = False) -> Func:
    """A function spelled and behaving alike on both databases."""
    lo, hi = arity
    if not lo <= len(args) <= hi:
        want = str(lo) if lo == hi else f"{lo} to {hi}"
        raise BuildError(f"{name}() takes {want} arguments, got {len(args)}")
    exprs = [as_expr(a, f"{name}()") for a in args]
    return Func(name, exprs, {"postgres": plain(name), "sqlite": plain(name)}, polymorphic=polymorphic)


def param(value: object) -> Param:
    """A value as an expression, where a column would otherwise come first:
    ``param("x").concat(T.name)``."""
    p = as_expr(value, "param()")
    assert isinstance(p, Param)
    return p
