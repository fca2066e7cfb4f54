"""Mistakes in molt_sql queries are BuildErrors, raised before anything runs,
with messages that name the construct and the fix."""

import datetime
import decimal

import pytest

from molt_sql import BuildError, count, table

U = table("users")
O = table("orders")


def raises(fn, *fragments):
    with pytest.raises(BuildError) as ei:
        fn()
    msg = str(ei.value)
    for f in fragments:
        assert f in msg, f"{f!r} not in {msg!r}"
    return msg


def test_comparing_to_a_list_needs_in():
    raises(lambda: U.id == [1, 2], "users.id", "list", "in_(")
    raises(lambda: U.id != (1, 2), "tuple", "in_(")
    raises(lambda: U.id > {1}, "set")


def test_comparing_to_none_needs_is_null():
    raises(lambda: U.age == None, "is_null()")  # noqa: E711
    raises(lambda: U.age != None, "is_not_null()")  # noqa: E711


def test_python_boolean_operators_are_refused():
    raises(lambda: (U.id == 1) and (U.id == 2), "&", "|")
    raises(lambda: not (U.id == 1), "~")
    raises(lambda: 1 if U.id else 2, "truth value")


def test_join_without_on():
    raises(lambda: U.join(O), "join(orders)", "on=")
    raises(lambda: U.query().left_join(O), "left_join(orders)", "on=")


def test_join_on_must_be_a_condition():
    raises(lambda: U.join(O, on=O.user_id), "join(orders, on=...)", "condition")


def test_join_same_table_twice_needs_alias():
    raises(lambda: U.join(U, on=(U.id == U.id)), "alias")


def test_aggregate_mixed_with_plain_column_without_group_by():
    msg = raises(lambda: U.select(U.name, count()).compile(), "count(*)", "users.name", "group_by")
    assert "not aggregated" in msg


def test_ungrouped_column_with_group_by():
    raises(
        lambda: O.group_by(O.user_id).select(O.user_id, O.status, count()).compile(),
        "orders.status",
        "grouped or aggregated",
    )


def test_aggregate_in_where():
    raises(lambda: O.where(count() > 1), "having")


def test_having_without_group_by():
    raises(lambda: O.select(count()).having(count() > 1).compile(), "having() without group_by()")


def test_group_by_aggregate():
    raises(lambda: O.group_by(count()), "cannot group by an aggregate")


def test_nested_aggregates():
    raises(lambda: count(O.total.sum()), "nested")


def test_column_of_a_table_not_in_the_query():
    raises(lambda: U.where(O.status == "x").compile(), "orders.status", "join(orders")


def test_in_with_a_string_or_none():
    raises(lambda: U.name.in_("abc"), "list, tuple or set")
    raises(lambda: U.name.in_([None]), "is_null()")


def test_between_none():
    raises(lambda: U.age.between(None, 3), "None")


def test_values_of_unknown_types():
    raises(lambda: U.id == object(), "object", "cannot be a query value")
    raises(lambda: U.id == {"a": 1}, "dict")


def test_supported_value_types_pass_through_as_params():
    vals = [True, 1, 1.5, "s", b"b", decimal.Decimal("1.2"), datetime.date(2020, 1, 2)]
    for v in vals:
        assert U.where(U.id == v).compile()[1] == [v]


def test_limit_and_offset():
    raises(lambda: U.limit(-1), "limit()", "negative")
    raises(lambda: U.limit("10"), "limit()", "int")
    raises(lambda: U.limit(True), "limit()", "int")
    raises(lambda: U.query().offset(2**63), "offset()", "64-bit")


def test_strings_are_not_raw_sql():
    raises(lambda: U.select("id"), "raw SQL", "T.id")
    raises(lambda: U.order_by("id desc"), "raw SQL")
    raises(lambda: U.where("id = 1"), "where() takes conditions")


def test_startswith_needs_str():
    raises(lambda: U.name.startswith(5), "startswith()", "str")


def test_identifiers_are_checked():
    raises(lambda: table(""), "non-empty")
    raises(lambda: U.c(""), "non-empty")
    raises(lambda: table("a\x00b").query().compile(), "NUL")


def test_unknown_dialect_and_paramstyle():
    raises(lambda: U.query().compile("mysql"), "mysql", "postgres", "sqlite")
    raises(lambda: U.query().compile("sqlite", paramstyle="named"), "paramstyle")


def test_fetch_without_a_client():
    from molt_sql import reset_configuration

    reset_configuration()
    raises(lambda: U.query().fetch_all_sync(), "no MoltClient", "configure")


# ---- DF1: windows, expressions, subqueries, set operations, writes ----

from molt_sql import (  # noqa: E402
    CURRENT_ROW, UNBOUNDED_FOLLOWING, UNBOUNDED_PRECEDING, case, cast, date_trunc, excluded, exists,
    extract, following, lag, ntile, preceding, rank, recursive_cte, row_number, rows_between, sum_,
    window,
)

I = table("items")


def test_window_function_needs_over():
    raises(lambda: U.select(U.id, row_number()).compile(), "row_number()", ".over(")
    raises(lambda: U.select(U.id, lag(U.age).as_("x")).compile("sqlite"), "lag(", ".over(")


def test_window_calls_are_refused_where_sql_refuses_them():
    raises(lambda: U.where(rank().over(order_by=[U.id]) == 1), "where(", "subquery")
    raises(lambda: U.group_by(rank().over(order_by=[U.id])), "group_by(", "window")
    raises(lambda: O.group_by(O.user_id).select(O.user_id).having(sum_(O.total).over() > 1), "having(")
    raises(lambda: U.join(O, on=row_number().over() == O.id), "on=")
    raises(lambda: sum_(row_number().over()), "nested")


def test_frames_must_start_before_they_end():
    raises(lambda: rows_between(CURRENT_ROW, preceding(1)), "start before it ends")
    raises(lambda: rows_between(UNBOUNDED_FOLLOWING, CURRENT_ROW), "start before it ends")
    raises(lambda: rows_between(following(1), UNBOUNDED_PRECEDING), "start before it ends")
    raises(lambda: preceding(-1), "non-negative")
    raises(lambda: rows_between(1, 2), "bounds")
    raises(lambda: ntile(0), "ntile()")


def test_two_windows_one_name():
    a = window("w", order_by=[O.id])
    b = window("w", order_by=[O.total])
    raises(lambda: O.select(rank().over(a), rank().over(b)).compile(), "two different windows", "'w'")
    raises(lambda: rank().over(a, order_by=[O.id]), "either a window or")


def test_expression_refusals():
    raises(lambda: cast(U.age, "varchar(10)"), "the type must be one of")
    raises(lambda: extract("century", U.age), "the part must be one of")
    raises(lambda: date_trunc("week", U.age), "the unit must be one of")
    raises(lambda: case(), "at least one")
    raises(lambda: case((U.age, 1)), "condition")
    raises(lambda: U.select(U.id.in_(O.select(O.id, O.total))), "exactly one column")
    raises(lambda: U.where(U.age > O.select(O.id, O.total)), "exactly one column")
    raises(lambda: exists(O), "takes a query")


def test_subquery_and_cte_columns_are_checked():
    sq = O.group_by(O.user_id).select(O.user_id, sum_(O.total).as_("s")).subquery("sq")
    raises(lambda: sq.total, "subquery 'sq' has no column 'total'", "user_id, s")
    c = O.select(O.id).cte("c")
    raises(lambda: c.user_id, "cte 'c' has no column 'user_id'")
    raises(lambda: O.select(O.id).cte("c", columns=["a", "b"]), "names 2 columns", "selects 1")
    raises(lambda: U.select(sq.s).compile(), "sq.s", "not in the query")


def test_recursive_cte_placeholder_must_be_defined():
    n = recursive_cte("n", ["k"])
    raises(lambda: n.select(n.k).compile(), "never defined", "defined_as")
    raises(lambda: recursive_cte("n", "k"), "columns=")
    raises(lambda: O.select(O.id).cte("c").defined_as(O.select(O.id)), "placeholder")


def test_cte_shadowing_its_table_and_two_ctes_one_name():
    c = O.select(O.id).cte("orders")
    raises(lambda: c.select(c.id).compile(), "reads the table 'orders'")
    a, b = O.select(O.id).cte("x"), U.select(U.id).cte("x")
    raises(lambda: a.join(b, on=a.id == b.id).compile(), "already in the query")
    b2 = U.select(U.id).cte("x").alias("y")
    raises(lambda: a.join(b2, on=a.id == b2.id).compile(), "two different CTEs", "'x'")


def test_set_operation_refusals():
    a, b, c = U.select(U.id), O.select(O.id), O.select(O.user_id)
    raises(lambda: a.union(b).intersect(c), "group mixed set operations differently", "subquery")
    raises(lambda: a.union(b.limit(1)), "own order_by/limit/offset")
    raises(lambda: a.union(O.select(O.id, O.total)), "different numbers of columns")
    raises(lambda: a.union(b).order_by(O.total), "no result column")
    raises(lambda: a.union(b).order_by(O.total + 1), "result column or alias")
    raises(lambda: a.union(O), "takes a query")


def test_write_refusals():
    raises(lambda: I.update({"qty": 1}).compile(), "update() without where()", "all_rows()")
    raises(lambda: I.delete().compile(), "delete() without where()", "all_rows()")
    assert I.delete().all_rows().compile() == ('DELETE FROM "items"', [])
    raises(lambda: I.insert([{"id": 1}, {"id": 2, "name": "x"}]), "row 1 has columns")
    raises(lambda: I.insert([]), "non-empty list")
    raises(lambda: I.insert({"id": I.qty}), "cannot name a column")
    raises(lambda: I.alias("i").insert({"id": 1}), "not its alias")
    raises(lambda: I.insert([{"id": i, "a": 1} for i in range(20000)]), "executemany")
    raises(lambda: I.update({"qty": O.total}).where(I.id == 1), "belongs to orders")
    raises(lambda: I.delete().where(O.id == 1), "belongs to orders")
    raises(lambda: I.insert({"id": 1}).on_conflict(O.id), "not a column of items")
    raises(lambda: I.insert({"id": 1}).on_conflict().do_update({"id": 2}), "conflict columns")
    raises(lambda: I.insert({"id": 1}).on_conflict(I.id).do_update({"qty": O.total}), "not a column of items")
    raises(lambda: I.insert({"id": 1}).returning(O.id), "belongs to orders")
    raises(lambda: I.insert_from(["id", "qty"], O.select(O.id)), "2 columns", "selects 1")
    raises(lambda: excluded("qty"), "takes a column")


def test_a_construct_sqlite_cannot_express_is_refused_for_sqlite_only():
    q = U.where(U.email.matches("^[a-z]+@")).select(U.id)
    assert q.compile("postgres") == (
        'SELECT "users"."id" FROM "users" WHERE "users"."email" ~ $1', ["^[a-z]+@"])
    raises(lambda: q.compile("sqlite"), "users.email.matches()", "SQLite has no regular expressions", "like()")
