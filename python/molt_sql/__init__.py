"""molt_sql: a small query builder that compiles to parameterized SQL.

    from molt_sql import table
    User = table("users")
    q = User.where(User.email.endswith("@austin.edu")).select(User.id, User.email).limit(100)
    sql, params = q.compile("postgres")
    rows = await q.fetch_all()          # through the configured AsyncMoltClient

Values never enter the SQL text; identifiers are always quoted.
"""

from .base import Query, Statement
from .compiler import ParamStyle
from .dialect import POSTGRES, SQLITE, Dialect, get_dialect
from .errors import BuildError
from .execution import configure, reset_configuration
from .expr import Column, Expr, OrderTerm, Predicate, escape_glob, escape_like
from .functions import (
    abs_, avg, case, cast, coalesce, count, cume_dist, date_trunc, dense_rank, exists, extract,
    first_value, greatest, lag, last_value, lead, least, length, lower, ltrim, max_, min_, nth_value,
    ntile, nullif, param, percent_rank, rank, replace, row_number, rtrim, strpos, substr, sum_, trim,
    upper,
)
from .query import Select
from .setops import Compound
from .subquery import Cte, Derived, recursive_cte
from .table import FromItem, Table, table
from .window import (
    CURRENT_ROW, UNBOUNDED_FOLLOWING, UNBOUNDED_PRECEDING, Window, following, groups_between,
    preceding, range_between, rows_between, window,
)
from .writes import Delete, Insert, Update, excluded

__all__ = [
    "table", "Table", "FromItem", "Statement", "Query", "Select", "Compound", "Derived", "Cte",
    "Insert", "Update", "Delete", "Column", "Expr", "Predicate", "OrderTerm", "Window",
    "BuildError", "Dialect", "POSTGRES", "SQLITE", "get_dialect", "ParamStyle",
    "configure", "reset_configuration",
    # aggregates
    "count", "sum_", "avg", "min_", "max_",
    # window functions and frames
    "row_number", "rank", "dense_rank", "percent_rank", "cume_dist", "ntile", "lag", "lead",
    "first_value", "last_value", "nth_value", "window", "rows_between", "range_between",
    "groups_between", "preceding", "following", "UNBOUNDED_PRECEDING", "CURRENT_ROW",
    "UNBOUNDED_FOLLOWING",
    # expressions
    "case", "cast", "coalesce", "nullif", "greatest", "least", "exists", "param", "recursive_cte",
    "excluded", "lower", "upper", "length", "trim", "ltrim", "rtrim", "replace", "substr", "strpos",
    "abs_", "extract", "date_trunc",
    "escape_like", "escape_glob",
]
