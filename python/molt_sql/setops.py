"""UNION [ALL] / INTERSECT / EXCEPT of queries, with their own ORDER BY,
LIMIT and OFFSET.

The members are written without parentheses (SQLite accepts none), so a
member cannot carry its own ORDER BY / LIMIT / OFFSET, and a chain keeps
one operator: PostgreSQL binds INTERSECT tighter than UNION while SQLite
reads left to right, so a mixed chain would mean different things. Both
are BuildErrors naming the way out (a subquery).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional, Union

from .base import Query, compile_statement
from .compiler import Compiler
from .errors import BuildError
from .expr import AliasRef, Column, Expr, OrderTerm

if TYPE_CHECKING:
    from .execution import Binding

__all__ = ["Compound"]


def _member(op: str, q: object) -> tuple[Query, ...]:
    from .query import Select

    if isinstance(q, Compound):
        if q.op != op:
            raise BuildError(
                f"{op} of a {q.op}: the two databases group mixed set operations differently; "
                "make one side a subquery (q.subquery('t')) and select from it"
            )
        if q.order or q.limit_ is not None or q.offset_ is not None:
            raise BuildError(f"{op}: a member with order_by/limit/offset must be a subquery")
        return q.members
    if not isinstance(q, Select):
        raise BuildError(f"{op.lower()}() takes a query, not {type(q).__name__}")
    if q.order or q.limit_ is not None or q.offset_ is not None:
        raise BuildError(
            f"{op}: a member cannot have its own order_by/limit/offset (SQLite refuses it); "
            "order the combined result, or make the member a subquery"
        )
    return (q,)


@dataclass(frozen=True, eq=False)
class Compound(Query):
    op: str
    members: tuple[Query, ...]
    order: tuple[OrderTerm, ...] = ()
    limit_: Optional[int] = None
    offset_: Optional[int] = None
    binding: Optional["Binding"] = field(default=None, compare=False)

    @staticmethod
    def combine(op: str, left: Query, right: Query) -> "Compound":
        members = _member(op, left) + _member(op, right)
        widths = {len(n) for n in (m.output_names() for m in members) if n is not None}
        if len(widths) > 1:
            raise BuildError(f"{op}: the queries select different numbers of columns ({sorted(widths)})")
        return Compound(op, members)

    def _with(self, **changes: Any) -> "Compound":
        return dataclasses.replace(self, **changes)

    def order_by(self, *terms: Union[Expr, OrderTerm]) -> "Compound":
        """Order the combined rows by result columns: a column of the first
        query or an alias (written as the bare name, which both databases
        require here)."""
        from .query import order_terms

        out = list(self.order)
        for t in order_terms(terms):
            e = t.expr
            if isinstance(e, Column):
                e = AliasRef(e.name)
            if not isinstance(e, AliasRef):
                raise BuildError(
                    f"{self.op} ... order_by({e.describe()}): order by a result column or alias"
                )
            names = self.output_names()
            if names is not None and e.name not in names:
                raise BuildError(f"{self.op} ... order_by({e.name}): no result column of that name")
            out.append(OrderTerm(e, t.descending, t.nulls))
        return self._with(order=tuple(out))

    def limit(self, n: int) -> "Compound":
        from .query import _check_int

        return self._with(limit_=_check_int("limit()", n))

    def offset(self, n: int) -> "Compound":
        from .query import _check_int

        return self._with(offset_=_check_int("offset()", n))

    def output_names(self) -> Optional[list[Optional[str]]]:
        return self.members[0].output_names()

    def nested(self) -> tuple[Query, ...]:
        return self.members

    def compile_into(self, c: Compiler) -> str:
        return compile_statement(self, c, self._compile_body)

    def _compile_body(self, c: Compiler) -> str:
        from .query import limit_clause

        sql = f" {self.op} ".join(m.compile_into(c) for m in self.members)
        tail = limit_clause(c, self.order, self.limit_, self.offset_)
        return sql + (" " + tail if tail else "")
