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
