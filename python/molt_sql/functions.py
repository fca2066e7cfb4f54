"""Aggregate functions as free functions: count(), sum_(T.x), ..."""

from __future__ import annotations

from typing import Optional

from .expr import Aggregate, Expr

__all__ = ["count", "sum_", "avg", "min_", "max_"]


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
