"""Window functions: ``rank().over(partition_by=..., order_by=...)``, any
aggregate ``.over(...)``, frames and named windows.

A window function without ``.over(...)`` is not an expression yet (a
``WindowCall``); using it as one is a BuildError. Window calls are refused
in where(), group_by() and having(), where SQL does not allow them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Optional, Sequence, Union

from .compiler import Compiler
from .dialect import POSTGRES
from .errors import BuildError
from .expr import Aliased, Expr, OrderTerm, Param, typed_operands
from .scalar import IntArg

__all__ = [
    "Window", "Frame", "Bound", "Over", "WindowCall", "window",
    "rows_between", "range_between", "groups_between", "preceding", "following",
    "UNBOUNDED_PRECEDING", "CURRENT_ROW", "UNBOUNDED_FOLLOWING",
]


@dataclass(frozen=True, eq=False)
class Bound:
    """One end of a frame: ``kind`` is UNBOUNDED PRECEDING, CURRENT ROW,
    UNBOUNDED FOLLOWING, PRECEDING or FOLLOWING (the last two with
    ``offset``, sent as a parameter)."""

    kind: str
    offset: Optional[Expr] = None

    def compile(self, c: Compiler) -> str:
        if self.offset is None:
            return self.kind
        return f"{self.offset.compile(c)} {self.kind}"


UNBOUNDED_PRECEDING = Bound("UNBOUNDED PRECEDING")
CURRENT_ROW = Bound("CURRENT ROW")
UNBOUNDED_FOLLOWING = Bound("UNBOUNDED FOLLOWING")


def _offset(fn: str, n: object) -> Expr:
    if isinstance(n, bool) or not isinstance(n, (int, float)) or n < 0:
        raise BuildError(f"{fn}({n!r}): a frame offset is a non-negative number")
    return Param(n)


def preceding(n: Union[int, float]) -> Bound:
    return Bound("PRECEDING", _offset("preceding", n))


def following(n: Union[int, float]) -> Bound:
    return Bound("FOLLOWING", _offset("following", n))


# the order ends may come in: a start after its end is an error
_RANK = {"UNBOUNDED PRECEDING": 0, "PRECEDING": 1, "CURRENT ROW": 2, "FOLLOWING": 3, "UNBOUNDED FOLLOWING": 4}


@dataclass(frozen=True, eq=False)
class Frame:
    mode: str  # ROWS, RANGE or GROUPS
    start: Bound
    end: Bound

    def __post_init__(self) -> None:
        for b in (self.start, self.end):
            if not isinstance(b, Bound):
                raise BuildError(
                    f"{self.mode.lower()}_between() takes bounds (preceding(n), following(n), "
                    f"CURRENT_ROW, UNBOUNDED_PRECEDING, UNBOUNDED_FOLLOWING), not {type(b).__name__}"
                )
        if self.start is UNBOUNDED_FOLLOWING or self.end is UNBOUNDED_PRECEDING \
                or _RANK[self.start.kind] > _RANK[self.end.kind]:
            raise BuildError(
                f"{self.mode} BETWEEN {self.start.kind} AND {self.end.kind}: the frame must start "
                "before it ends"
            )

    def compile(self, c: Compiler) -> str:
        return f"{self.mode} BETWEEN {self.start.compile(c)} AND {self.end.compile(c)}"

    def children(self) -> list[Expr]:
        return [b.offset for b in (self.start, self.end) if b.offset is not None]


def rows_between(start: Bound, end: Bound) -> Frame:
    return Frame("ROWS", start, end)


def range_between(start: Bound, end: Bound) -> Frame:
    """RANGE frames with an offset need exactly one numeric order_by term."""
    return Frame("RANGE", start, end)


def groups_between(start: Bound, end: Bound) -> Frame:
    return Frame("GROUPS", start, end)


def _order_terms(fn: str, terms: Sequence[Union[Expr, OrderTerm]]) -> tuple[OrderTerm, ...]:
    out = []
    for t in terms:
        if isinstance(t, OrderTerm):
            out.append(t)
        elif isinstance(t, Aliased):
            out.append(OrderTerm(t.expr, descending=False))
        elif isinstance(t, Expr):
            out.append(OrderTerm(t, descending=False))
        else:
            raise BuildError(f"{fn}: order_by takes columns or ordering terms, not {type(t).__name__}")
    return tuple(out)


def _exprs(fn: str, exprs: Sequence[Expr]) -> tuple[Expr, ...]:
    out = []
    for e in exprs:
        if isinstance(e, Aliased):
            e = e.expr
        if not isinstance(e, Expr):
            raise BuildError(f"{fn}: partition_by takes columns or expressions, not {type(e).__name__}")
        out.append(e)
    return tuple(out)


@dataclass(frozen=True, eq=False)
class Window:
    """A window specification; with a ``name`` it is a named window, written
    once in the query's WINDOW clause and referred to by name."""

    partition_by: tuple[Expr, ...] = ()
    order_by: tuple[OrderTerm, ...] = ()
    frame: Optional[Frame] = None
    name: Optional[str] = None

    def __post_init__(self) -> None:
        if self.frame is not None and not isinstance(self.frame, Frame):
            raise BuildError(f"frame= takes rows_between(...), range_between(...) or groups_between(...), "
                             f"not {type(self.frame).__name__}")
        for e in (*self.partition_by, *(t.expr for t in self.order_by)):
            if e.contains_window():
                raise BuildError(f"a window's partition_by/order_by cannot hold the window call {e.describe()}")

    def compile_spec(self, c: Compiler) -> str:
        parts = []
        if self.partition_by:
            parts.append("PARTITION BY " + ", ".join(e.compile(c) for e in self.partition_by))
        if self.order_by:
            parts.append("ORDER BY " + ", ".join(t.compile(c) for t in self.order_by))
        if self.frame is not None:
            parts.append(self.frame.compile(c))
        return "(" + " ".join(parts) + ")"

    def exprs(self) -> list[Expr]:
        out = [*self.partition_by, *(t.expr for t in self.order_by)]
        if self.frame is not None:
            out += self.frame.children()
        return out

    def same_as(self, other: "Window") -> bool:
        def key(w: Window) -> tuple[str, list[str]]:
            c = Compiler(POSTGRES)
            c.check = False
            return w.compile_spec(c), [repr(p) for p in c.params]

        return key(self) == key(other)


def window(
    name: Optional[str] = None,
    *,
    partition_by: Sequence[Expr] = (),
    order_by: Sequence[Union[Expr, OrderTerm]] = (),
    frame: Optional[Frame] = None,
) -> Window:
    """A window for ``.over(w)``; named (``window("w", ...)``), it goes into
    the query's WINDOW clause, declared by the query that uses it."""
    if name is not None and (not isinstance(name, str) or not name):
        raise BuildError(f"a window name must be a non-empty str, got {name!r}")
    return Window(_exprs("window()", partition_by), _order_terms("window()", order_by), frame, name)


class Over(Expr):
    """``call OVER (spec)`` or ``call OVER "name"``."""

    __slots__ = ("call", "window")
    is_window = True

    def __init__(self, call: Expr, window: Window) -> None:
        self.call, self.window = call, window

    @staticmethod
    def make(
        call: Expr,
        window: Optional[Window],
        partition_by: Sequence[Expr],
        order_by: Sequence[Union[Expr, OrderTerm]],
        frame: Optional[Frame],
    ) -> "Over":
        fn = f"{call.describe()}.over()"
        if window is not None:
            if not isinstance(window, Window):
                raise BuildError(f"{fn} takes a window(...) or partition_by=/order_by=/frame=, "
                                 f"not {type(window).__name__}")
            if partition_by or order_by or frame is not None:
                raise BuildError(f"{fn}: give either a window or partition_by=/order_by=/frame=, not both")
            return Over(call, window)
        return Over(call, Window(_exprs(fn, partition_by), _order_terms(fn, order_by), frame))

    def compile(self, c: Compiler) -> str:
        call = self.call.render(c) if isinstance(self.call, WindowCall) else self.call.compile(c)
        if self.window.name is not None:
            return f"{call} OVER {c.ident(self.window.name)}"
        return f"{call} OVER {self.window.compile_spec(c)}"

    def children(self) -> Iterable[Expr]:
        return (self.call, *self.window.exprs())

    def describe(self) -> str:
        return f"{self.call.describe()} OVER (...)"


class WindowCall(Expr):
    """A window-only function (row_number, rank, lag, ...) awaiting ``.over()``."""

    __slots__ = ("fn", "args")

    def __init__(self, fn: str, args: Sequence[Expr] = ()) -> None:
        self.fn, self.args = fn, list(args)

    def over(
        self,
        window: Optional[Window] = None,
        *,
        partition_by: Sequence[Expr] = (),
        order_by: Sequence[Union[Expr, OrderTerm]] = (),
        frame: Optional[Frame] = None,
    ) -> Over:
        return Over.make(self, window, partition_by, order_by, frame)

    def render(self, c: Compiler) -> str:
        # the value arguments get a type when none has one (typed_operands)
        values = iter(typed_operands(c, [a for a in self.args if not isinstance(a, IntArg)]))
        args = [a if isinstance(a, IntArg) else next(values) for a in self.args]
        return f"{self.fn}({', '.join(a.compile(c) for a in args)})"

    def compile(self, c: Compiler) -> str:
        raise BuildError(f"{self.describe()} is a window function: add .over(partition_by=..., order_by=...)")

    def children(self) -> Iterable[Expr]:
        return self.args

    def describe(self) -> str:
        return f"{self.fn}({', '.join(a.describe() for a in self.args)})"


def named_windows(nodes: Iterable[Expr]) -> list[Window]:
    """The named windows used among ``nodes`` (walked expressions), first
    use first; two different windows under one name are a BuildError."""
    found: dict[str, Window] = {}
    for sub in nodes:
        if isinstance(sub, Over) and sub.window.name is not None:
            seen = found.setdefault(sub.window.name, sub.window)
            if seen is not sub.window and not seen.same_as(sub.window):
                raise BuildError(f"two different windows are both named {sub.window.name!r}")
    return list(found.values())


def check_no_window(where: str, e: Expr) -> None:
    if e.contains_window():
        raise BuildError(
            f"{where}({e.describe()}): a window call is not allowed there; select it in a "
            "subquery (q.subquery('t')) and filter on its column"
        )
