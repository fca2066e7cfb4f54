"""Golden SQL: every molt_sql construct compiled for PostgreSQL and SQLite.

Each case is (query, expected postgres (sql, params), expected sqlite (sql,
params)). A change in any compiled text is a deliberate change to this file.
"""

import pytest

from molt_sql import avg, count, max_, min_, sum_, table

U = table("users")
O = table("orders")
A = U.alias("a")
B = U.alias("b")
ODD = table('odd "name" %s')

CASES = {
    "select_columns": (
        lambda: U.select(U.id, U.email),
        ('SELECT "users"."id", "users"."email" FROM "users"', []),
        ('SELECT "users"."id", "users"."email" FROM "users"', []),
    ),
    "select_star": (
        lambda: U.query(),
        ('SELECT * FROM "users"', []),
        ('SELECT * FROM "users"', []),
    ),
    "select_table_star_join": (
        lambda: U.join(O, on=(O.user_id == U.id)).select(U, O.total),
        ('SELECT "users".*, "orders"."total" FROM "users" JOIN "orders" ON "orders"."user_id" = "users"."id"', []),
        ('SELECT "users".*, "orders"."total" FROM "users" JOIN "orders" ON "orders"."user_id" = "users"."id"', []),
    ),
    "where_eq": (
        lambda: U.where(U.id == 3),
        ('SELECT * FROM "users" WHERE "users"."id" = $1', [3]),
        ('SELECT * FROM "users" WHERE "users"."id" = $1', [3]),
    ),
    "where_ne": (
        lambda: U.where(U.name != "bob").select(U.id),
        ('SELECT "users"."id" FROM "users" WHERE "users"."name" <> $1', ['bob']),
        ('SELECT "users"."id" FROM "users" WHERE "users"."name" <> $1', ['bob']),
    ),
    "where_lt_le_gt_ge": (
        lambda: U.where((U.age < 40) & (U.age <= 39) & (U.age > 18) & (U.age >= 19)).select(U.id),
        ('SELECT "users"."id" FROM "users" WHERE ("users"."age" < $1 AND "users"."age" <= $2 AND "users"."age" > $3 AND "users"."age" >= $4)', [40, 39, 18, 19]),
        ('SELECT "users"."id" FROM "users" WHERE ("users"."age" < $1 AND "users"."age" <= $2 AND "users"."age" > $3 AND "users"."age" >= $4)', [40, 39, 18, 19]),
    ),
    "where_reversed_operand": (
        lambda: U.where(5 < U.age).select(U.id),
        ('SELECT "users"."id" FROM "users" WHERE "users"."age" > $1', [5]),
        ('SELECT "users"."id" FROM "users" WHERE "users"."age" > $1', [5]),
    ),
    "where_column_vs_column": (
        lambda: O.where(O.total > O.user_id).select(O.id),
        ('SELECT "orders"."id" FROM "orders" WHERE "orders"."total" > "orders"."user_id"', []),
        ('SELECT "orders"."id" FROM "orders" WHERE "orders"."total" > "orders"."user_id"', []),
    ),
    "and_or_not": (
        lambda: U.where(((U.age > 30) | U.email.is_null()) & ~(U.name == "bob")).select(U.id),
        ('SELECT "users"."id" FROM "users" WHERE (("users"."age" > $1 OR "users"."email" IS NULL) AND NOT ("users"."name" = $2))', [30, 'bob']),
        ('SELECT "users"."id" FROM "users" WHERE (("users"."age" > $1 OR "users"."email" IS NULL) AND NOT ("users"."name" = $2))', [30, 'bob']),
    ),
    "in_list": (
        lambda: U.where(U.id.in_([1, 2, 3])).select(U.id),
        ('SELECT "users"."id" FROM "users" WHERE "users"."id" IN ($1, $2, $3)', [1, 2, 3]),
        ('SELECT "users"."id" FROM "users" WHERE "users"."id" IN ($1, $2, $3)', [1, 2, 3]),
    ),
    "not_in": (
        lambda: U.where(U.id.not_in((4, 5))).select(U.id),
        ('SELECT "users"."id" FROM "users" WHERE "users"."id" NOT IN ($1, $2)', [4, 5]),
        ('SELECT "users"."id" FROM "users" WHERE "users"."id" NOT IN ($1, $2)', [4, 5]),
    ),
    "in_empty": (
        lambda: U.where(U.id.in_([])).select(U.id),
        ('SELECT "users"."id" FROM "users" WHERE (1 = 0)', []),
        ('SELECT "users"."id" FROM "users" WHERE (1 = 0)', []),
    ),
    "in_subquery": (
        lambda: U.where(U.id.in_(O.where(O.total > 100).select(O.user_id))).select(U.id),
        ('SELECT "users"."id" FROM "users" WHERE "users"."id" IN (SELECT "orders"."user_id" FROM "orders" WHERE "orders"."total" > $1)', [100]),
        ('SELECT "users"."id" FROM "users" WHERE "users"."id" IN (SELECT "orders"."user_id" FROM "orders" WHERE "orders"."total" > $1)', [100]),
    ),
    "between": (
        lambda: U.where(U.age.between(20, 40)).select(U.id),
        ('SELECT "users"."id" FROM "users" WHERE "users"."age" BETWEEN $1 AND $2', [20, 40]),
        ('SELECT "users"."id" FROM "users" WHERE "users"."age" BETWEEN $1 AND $2', [20, 40]),
    ),
    "is_null": (
        lambda: U.where(U.age.is_null()).select(U.id),
        ('SELECT "users"."id" FROM "users" WHERE "users"."age" IS NULL', []),
        ('SELECT "users"."id" FROM "users" WHERE "users"."age" IS NULL', []),
    ),
    "is_not_null": (
        lambda: U.where(U.age.is_not_null()).select(U.id),
        ('SELECT "users"."id" FROM "users" WHERE "users"."age" IS NOT NULL', []),
        ('SELECT "users"."id" FROM "users" WHERE "users"."age" IS NOT NULL', []),
    ),
    "like": (
        lambda: U.where(U.name.like("A%")).select(U.id),
        ('SELECT "users"."id" FROM "users" WHERE "users"."name" LIKE $1 ESCAPE \'\\\'', ['A%']),
        ('SELECT "users"."id" FROM "users" WHERE "users"."name" LIKE $1 ESCAPE \'\\\'', ['A%']),
    ),
    "ilike": (
        lambda: U.where(U.name.ilike("a%")).select(U.id),
        ('SELECT "users"."id" FROM "users" WHERE "users"."name" ILIKE $1 ESCAPE \'\\\'', ['a%']),
        ('SELECT "users"."id" FROM "users" WHERE lower("users"."name") LIKE lower($1) ESCAPE \'\\\'', ['a%']),
    ),
    "startswith_escapes": (
        lambda: U.where(U.name.startswith("100%_\\*?[")).select(U.id),
        ('SELECT "users"."id" FROM "users" WHERE "users"."name" LIKE $1 ESCAPE \'\\\'', ['100\\%\\_\\\\*?[%']),
        ('SELECT "users"."id" FROM "users" WHERE "users"."name" GLOB $1', ['100%_\\[*][?][[]*']),
    ),
    "endswith": (
        lambda: U.where(U.email.endswith("@austin.edu")).select(U.id),
        ('SELECT "users"."id" FROM "users" WHERE "users"."email" LIKE $1 ESCAPE \'\\\'', ['%@austin.edu']),
        ('SELECT "users"."id" FROM "users" WHERE "users"."email" GLOB $1', ['*@austin.edu']),
    ),
    "contains": (
        lambda: U.where(U.name.contains("_")).select(U.id),
        ('SELECT "users"."id" FROM "users" WHERE "users"."name" LIKE $1 ESCAPE \'\\\'', ['%\\_%']),
        ('SELECT "users"."id" FROM "users" WHERE "users"."name" GLOB $1', ['*_*']),
    ),
    "order_by": (
        lambda: U.select(U.id).order_by(U.age.desc().nulls_last(), U.id.asc().nulls_first(), U.name),
        ('SELECT "users"."id" FROM "users" ORDER BY "users"."age" DESC NULLS LAST, "users"."id" ASC NULLS FIRST, "users"."name" ASC', []),
        ('SELECT "users"."id" FROM "users" ORDER BY "users"."age" DESC NULLS LAST, "users"."id" ASC NULLS FIRST, "users"."name" ASC', []),
    ),
    "limit_offset": (
        lambda: U.select(U.id).order_by(U.id).limit(3).offset(2),
        ('SELECT "users"."id" FROM "users" ORDER BY "users"."id" ASC LIMIT $1 OFFSET $2', [3, 2]),
        ('SELECT "users"."id" FROM "users" ORDER BY "users"."id" ASC LIMIT $1 OFFSET $2', [3, 2]),
    ),
    "offset_only": (
        lambda: U.select(U.id).order_by(U.id).offset(2),
        ('SELECT "users"."id" FROM "users" ORDER BY "users"."id" ASC OFFSET $1', [2]),
        ('SELECT "users"."id" FROM "users" ORDER BY "users"."id" ASC LIMIT -1 OFFSET $1', [2]),
    ),
    "inner_join": (
        lambda: U.join(O, on=(O.user_id == U.id)).select(U.name, O.total).where(O.status == "paid"),
        ('SELECT "users"."name", "orders"."total" FROM "users" JOIN "orders" ON "orders"."user_id" = "users"."id" WHERE "orders"."status" = $1', ['paid']),
        ('SELECT "users"."name", "orders"."total" FROM "users" JOIN "orders" ON "orders"."user_id" = "users"."id" WHERE "orders"."status" = $1', ['paid']),
    ),
    "left_join": (
        lambda: U.left_join(O, on=(O.user_id == U.id) & (O.status == "open")).select(U.id, O.id.as_("order_id")),
        ('SELECT "users"."id", "orders"."id" AS "order_id" FROM "users" LEFT JOIN "orders" ON ("orders"."user_id" = "users"."id" AND "orders"."status" = $1)', ['open']),
        ('SELECT "users"."id", "orders"."id" AS "order_id" FROM "users" LEFT JOIN "orders" ON ("orders"."user_id" = "users"."id" AND "orders"."status" = $1)', ['open']),
    ),
    "self_join_alias": (
        lambda: A.join(B, on=(A.age == B.age) & (A.id < B.id)).select(A.id, B.id.as_("other")),
        ('SELECT "a"."id", "b"."id" AS "other" FROM "users" AS "a" JOIN "users" AS "b" ON ("a"."age" = "b"."age" AND "a"."id" < "b"."id")', []),
        ('SELECT "a"."id", "b"."id" AS "other" FROM "users" AS "a" JOIN "users" AS "b" ON ("a"."age" = "b"."age" AND "a"."id" < "b"."id")', []),
    ),
    "group_by_having": (
        lambda: O.group_by(O.user_id).select(O.user_id, count().as_("n"), sum_(O.total).as_("total"), avg(O.total), min_(O.total), max_(O.total)).having(count() > 1).order_by(O.user_id),
        ('SELECT "orders"."user_id", count(*) AS "n", sum("orders"."total") AS "total", avg("orders"."total"), min("orders"."total"), max("orders"."total") FROM "orders" GROUP BY "orders"."user_id" HAVING count(*) > $1 ORDER BY "orders"."user_id" ASC', [1]),
        ('SELECT "orders"."user_id", count(*) AS "n", sum("orders"."total") AS "total", avg("orders"."total"), min("orders"."total"), max("orders"."total") FROM "orders" GROUP BY "orders"."user_id" HAVING count(*) > $1 ORDER BY "orders"."user_id" ASC', [1]),
    ),
    "count_distinct": (
        lambda: O.select(O.user_id.count(distinct=True)),
        ('SELECT count(DISTINCT "orders"."user_id") FROM "orders"', []),
        ('SELECT count(DISTINCT "orders"."user_id") FROM "orders"', []),
    ),
    "aggregate_whole_table": (
        lambda: U.select(count(), U.age.max()),
        ('SELECT count(*), max("users"."age") FROM "users"', []),
        ('SELECT count(*), max("users"."age") FROM "users"', []),
    ),
    "order_by_alias": (
        lambda: O.group_by(O.status).select(O.status, O.total.sum().as_("s")).order_by(O.total.sum().as_("s").desc()),
        ('SELECT "orders"."status", sum("orders"."total") AS "s" FROM "orders" GROUP BY "orders"."status" ORDER BY "s" DESC', []),
        ('SELECT "orders"."status", sum("orders"."total") AS "s" FROM "orders" GROUP BY "orders"."status" ORDER BY "s" DESC', []),
    ),
    "distinct": (
        lambda: U.select(U.age).distinct().order_by(U.age),
        ('SELECT DISTINCT "users"."age" FROM "users" ORDER BY "users"."age" ASC', []),
        ('SELECT DISTINCT "users"."age" FROM "users" ORDER BY "users"."age" ASC', []),
    ),
    "arithmetic": (
        lambda: O.select((O.total * 2 + 1).as_("x")).where(O.total - 5 > 50),
        ('SELECT (("orders"."total" * $1) + $2) AS "x" FROM "orders" WHERE ("orders"."total" - $3) > $4', [2, 1, 5, 50]),
        ('SELECT (("orders"."total" * $1) + $2) AS "x" FROM "orders" WHERE ("orders"."total" - $3) > $4', [2, 1, 5, 50]),
    ),
    "schema_table": (
        lambda: table("users", schema="app").select(table("users", schema="app").id),
        ('SELECT "app"."users"."id" FROM "app"."users"', []),
        ('SELECT "app"."users"."id" FROM "app"."users"', []),
    ),
    "quoted_identifiers": (
        lambda: ODD.select(ODD.c("select"), ODD["Mixed Case"]).where(ODD.c("select") == 1),
        ('SELECT "odd ""name"" %s"."select", "odd ""name"" %s"."Mixed Case" FROM "odd ""name"" %s" WHERE "odd ""name"" %s"."select" = $1', [1]),
        ('SELECT "odd ""name"" %s"."select", "odd ""name"" %s"."Mixed Case" FROM "odd ""name"" %s" WHERE "odd ""name"" %s"."select" = $1', [1]),
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_postgres(name):
    build, pg, _ = CASES[name]
    assert build().compile("postgres") == pg


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_sqlite(name):
    build, _, lite = CASES[name]
    assert build().compile("sqlite") == lite


def test_the_issue_example():
    User = table("users")
    q = User.where(User.email.endswith("@austin.edu")).select(User.id, User.email).limit(100)
    assert q.compile("postgres") == (
        'SELECT "users"."id", "users"."email" FROM "users" '
        "WHERE \"users\".\"email\" LIKE $1 ESCAPE '\\' LIMIT $2",
        ["%@austin.edu", 100],
    )


def test_paramstyles_number_in_text_order():
    q = U.where((U.age > 1) & (U.name == "x")).select(U.id).limit(5)
    assert q.compile("sqlite", paramstyle="qmark") == (
        'SELECT "users"."id" FROM "users" WHERE ("users"."age" > ? AND "users"."name" = ?) LIMIT ?',
        [1, "x", 5],
    )
    assert q.compile("postgres", paramstyle="format") == (
        'SELECT "users"."id" FROM "users" WHERE ("users"."age" > %s AND "users"."name" = %s) LIMIT %s',
        [1, "x", 5],
    )


def test_format_paramstyle_doubles_percent_in_identifiers():
    sql, params = ODD.select(ODD.c("select")).where(ODD.c("select") == 1).compile(
        "postgres", paramstyle="format"
    )
    assert sql == 'SELECT "odd ""name"" %%s"."select" FROM "odd ""name"" %%s" WHERE "odd ""name"" %%s"."select" = %s'
    assert params == [1]


def test_queries_are_immutable():
    base = U.select(U.id)
    narrowed = base.where(U.id == 1)
    assert base.compile() == ('SELECT "users"."id" FROM "users"', [])
    assert narrowed.compile()[1] == [1]


def test_where_calls_and_together():
    q = U.where(U.id > 1).where(U.id < 9, U.age == 3).select(U.id)
    assert q.compile() == (
        'SELECT "users"."id" FROM "users" WHERE ("users"."id" > $1 AND "users"."id" < $2 AND "users"."age" = $3)',
        [1, 9, 3],
    )


def test_column_names_that_clash_with_methods():
    T = table("t")
    assert T.select(T.c("where"), T["limit"], T.name).compile()[0] == (
        'SELECT "t"."where", "t"."limit", "t"."name" FROM "t"'
    )

