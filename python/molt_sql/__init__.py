"""molt_sql: a small query builder that compiles to parameterized SQL.

    from molt_sql import table
    User = table("users")
    q = User.where(User.email.endswith("@austin.edu")).select(User.id, User.email).limit(100)
    sql, params = q.compile("postgres")
    rows = await q.fetch_all()          # through the configured AsyncMoltClient

Values never enter the SQL text; identifiers are always quoted.
"""

from .compiler import ParamStyle
from .dialect import POSTGRES, SQLITE, Dialect, get_dialect
from .errors import BuildError
from .execution import configure, reset_configuration
from .expr import Column, Expr, OrderTerm, Predicate, escape_glob, escape_like
from .functions import avg, count, max_, min_, sum_
from .query import Select
from .table import Table, table

__all__ = [
    "table",
    "Table",
    "Select",
    "Column",
    "Expr",
    "Predicate",
    "OrderTerm",
    "BuildError",
    "Dialect",
    "POSTGRES",
    "SQLITE",
    "get_dialect",
    "ParamStyle",
    "configure",
    "reset_configuration",
    "count",
    "sum_",
    "avg",
    "min_",
    "max_",
    "escape_like",
    "escape_glob",
]
