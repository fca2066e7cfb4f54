"""Tables and other things a query reads from (FROM items), with column
access by attribute.

``FromItem`` is what ``Select`` and the joins take: a ``Table``, a subquery
with an alias (``q.subquery("t")``) or a common table expression
(``q.cte("t")``), both in subquery.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Optional, Sequence, Union

from .compiler import Compiler
from .errors import BuildError
from .expr import Column, Expr, OrderTerm, Predicate

if TYPE_CHECKING:
    from .query import Select, Selectable
    from .writes import Delete, Insert, Update

__all__ = ["FromItem", "Table", "table"]

RefKey = tuple[Optional[str], str, Optional[str]]


class FromItem:
    """Something a query reads from. ``T.email`` is the column ``email``; a
    column whose name clashes with a method (``where``, ``select``, ``name``,
    ...) is ``T.c("where")`` or ``T["where"]``."""

    __slots__ = ()

    # ---- identity in a query (subclasses define these) ----
    @property
    def _ref_name(self) -> str:
        """How columns refer to this item: the alias, else the name."""
        raise NotImplementedError

    @property
    def _ref_key(self) -> RefKey:
        """What makes two references the same FROM item."""
        raise NotImplementedError

    def _compile_ref(self, c: Compiler) -> str:
        raise NotImplementedError

    def _compile_from(self, c: Compiler) -> str:
        raise NotImplementedError

    def _check_column(self, name: str) -> None:
        """Raise BuildError when this item has no column ``name`` (only
        items that know their columns check)."""

    # ---- columns ----
    def c(self, name: str) -> Column:
        self._check_column(name)
        return Column(self, name)

    def __getitem__(self, name: str) -> Column:
        return self.c(name)

    def __getattr__(self, name: str) -> Column:
        if name.startswith("_"):
            raise AttributeError(name)
        return self.c(name)

    def __setattr__(self, key: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __bool__(self) -> bool:
        return True

    # ---- starting a query ----
    def query(self) -> "Select":
        from .query import Select

        return Select(self)

    def select(self, *columns: "Selectable") -> "Select":
        return self.query().select(*columns)

    def where(self, *conditions: Predicate) -> "Select":
        return self.query().where(*conditions)

    def order_by(self, *terms: "Expr | OrderTerm") -> "Select":
        return self.query().order_by(*terms)

    def limit(self, n: int) -> "Select":
        return self.query().limit(n)

    def join(self, other: "FromItem", on: Optional[Predicate] = None) -> "Select":
        return self.query().join(other, on=on)

    def left_join(self, other: "FromItem", on: Optional[Predicate] = None) -> "Select":
        return self.query().left_join(other, on=on)

    def group_by(self, *exprs: Expr) -> "Select":
        return self.query().group_by(*exprs)

    def distinct(self) -> "Select":
        return self.query().distinct()


class Table(FromItem):
    """A table (optionally schema-qualified and aliased)."""

    __slots__ = ("_name", "_schema", "_alias")
    _name: str
    _schema: Optional[str]
    _alias: Optional[str]

    def __init__(self, name: str, *, schema: Optional[str] = None, alias: Optional[str] = None) -> None:
        for what, v in (("table name", name), ("schema", schema), ("alias", alias)):
            if v is not None and (not isinstance(v, str) or not v):
                raise BuildError(f"a {what} must be a non-empty str, got {v!r}")
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_schema", schema)
        object.__setattr__(self, "_alias", alias)

    @property
    def _ref_name(self) -> str:
        return self._alias or self._name

    @property
    def _ref_key(self) -> RefKey:
        return (self._schema, self._name, self._alias)

    def _compile_ref(self, c: Compiler) -> str:
        if self._alias:
            return c.ident(self._alias)
        if self._schema:
            return c.ident(self._schema) + "." + c.ident(self._name)
        return c.ident(self._name)

    def _compile_from(self, c: Compiler) -> str:
        s = (c.ident(self._schema) + "." if self._schema else "") + c.ident(self._name)
        if self._alias:
            s += " AS " + c.ident(self._alias)
        return s

    def alias(self, name: str) -> "Table":
        return Table(self._name, schema=self._schema, alias=name)

    def __repr__(self) -> str:
        q = f"{self._schema}.{self._name}" if self._schema else self._name
        return f"table({q!r}{', alias=' + repr(self._alias) if self._alias else ''})"

    # ---- writes (see writes.py) ----
    def insert(self, rows: Union[Mapping[str, Any], Sequence[Mapping[str, Any]]]) -> "Insert":
        """INSERT one row (a dict column -> value) or many (a list of dicts
        with the same keys)."""
        from .writes import Insert

        return Insert.of_rows(self, rows)

    def insert_from(self, columns: Sequence[str], query: Any) -> "Insert":
        """INSERT INTO this table (columns) the rows of ``query``."""
        from .writes import Insert

        return Insert.of_query(self, columns, query)

    def update(self, values: Mapping[str, Any]) -> "Update":
        """UPDATE this table SET column = value (a value or an expression)."""
        from .writes import Update

        return Update.of(self, values)

    def delete(self) -> "Delete":
        from .writes import Delete

        return Delete(self)


def table(name: str, *, schema: Optional[str] = None, alias: Optional[str] = None) -> Table:
    """A table by name: ``table("users")``, ``table("users", schema="app")``.

    The name is one identifier (a dot in it is part of the name, not a schema
    separator)."""
    return Table(name, schema=schema, alias=alias)
