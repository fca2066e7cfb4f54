"""Every molt_sql DF1 construct once: the Python that builds it, and the
same question written by hand in SQL for PostgreSQL and SQLite.

Used by test_sql_differential.py (run through the worker on both databases,
rows compared with the hand-written SQL run by psycopg and sqlite3) and by
test_sql_docs.py (docs/python.md shows each construct with what it compiles
to, generated from this list).

``code`` is evaluated with the molt_sql names and the tables U (users), O
(orders), E (events), I (items) in scope; the last line is the statement.
Hand SQL takes no parameters. ``lite`` is None when the SQLite hand SQL is
the PostgreSQL one.
"""

import ast
from dataclasses import dataclass
from typing import Optional

import molt_sql


@dataclass(frozen=True)
class Case:
    section: str
    name: str
    code: str
    pg: str
    lite: Optional[str] = None
    ordered: bool = False
    write: bool = False


def namespace(schema=None):
    """The names a case's code sees; on PostgreSQL the tables live in
    ``schema`` (the worker cannot set a search_path)."""
    ns = {k: getattr(molt_sql, k) for k in molt_sql.__all__}
    for var, name in (("U", "users"), ("O", "orders"), ("E", "events"), ("I", "items")):
        ns[var] = molt_sql.table(name, schema=schema)
    return ns


def build(case, schema=None):
    ns = namespace(schema)
    tree = ast.parse(case.code)
    *setup, last = tree.body
    exec(compile(ast.Module(setup, type_ignores=[]), case.name, "exec"), ns)
    return eval(compile(ast.Expression(last.value), case.name, "eval"), ns)


W, X, S, O_, WR = "Window functions", "Expressions", "Subqueries and CTEs", "Set operations", "Writes"

CASES = [
    # ---- window functions ----
    Case(W, "row_number", "U.select(U.id, row_number().over(partition_by=[U.age], order_by=[U.id]).as_('rn'))",
         "SELECT id, row_number() OVER (PARTITION BY age ORDER BY id) FROM users"),
    Case(W, "rank_dense_rank_percent_rank",
         "O.select(O.id, rank().over(order_by=[O.total.desc()]), dense_rank().over(order_by=[O.status]),\n"
         "         percent_rank().over(order_by=[O.total]), cume_dist().over(order_by=[O.user_id]))",
         "SELECT id, rank() OVER (ORDER BY total DESC), dense_rank() OVER (ORDER BY status), "
         "percent_rank() OVER (ORDER BY total), cume_dist() OVER (ORDER BY user_id) FROM orders"),
    Case(W, "ntile", "O.select(O.id, ntile(3).over(order_by=[O.id]))",
         "SELECT id, ntile(3) OVER (ORDER BY id) FROM orders"),
    Case(W, "lag_lead",
         "O.select(O.id, lag(O.total).over(partition_by=[O.user_id], order_by=[O.id]),\n"
         "         lead(O.total, 2, 0).over(order_by=[O.id]))",
         "SELECT id, lag(total) OVER (PARTITION BY user_id ORDER BY id), "
         "lead(total, 2, 0) OVER (ORDER BY id) FROM orders"),
    Case(W, "first_last_nth_value",
         "whole = rows_between(UNBOUNDED_PRECEDING, UNBOUNDED_FOLLOWING)\n"
         "O.select(O.id, first_value(O.total).over(partition_by=[O.user_id], order_by=[O.id]),\n"
         "         last_value(O.total).over(partition_by=[O.user_id], order_by=[O.id], frame=whole),\n"
         "         nth_value(O.total, 2).over(order_by=[O.id], frame=whole))",
         "SELECT id, first_value(total) OVER (PARTITION BY user_id ORDER BY id), "
         "last_value(total) OVER (PARTITION BY user_id ORDER BY id ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING), "
         "nth_value(total, 2) OVER (ORDER BY id ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) FROM orders"),
    Case(W, "aggregate_over_rows_frame",
         "O.select(O.id, sum_(O.total).over(order_by=[O.id], frame=rows_between(preceding(1), following(1))),\n"
         "         avg(O.total).over(partition_by=[O.status]), count().over())",
         "SELECT id, sum(total) OVER (ORDER BY id ROWS BETWEEN 1 PRECEDING AND 1 FOLLOWING), "
         "avg(total) OVER (PARTITION BY status), count(*) OVER () FROM orders"),
    Case(W, "range_frame",
         "O.select(O.id, sum_(O.total).over(order_by=[O.total], frame=range_between(preceding(100), CURRENT_ROW)))",
         "SELECT id, sum(total) OVER (ORDER BY total RANGE BETWEEN 100 PRECEDING AND CURRENT ROW) FROM orders"),
    Case(W, "groups_frame",
         "O.select(O.id, count().over(order_by=[O.user_id], frame=groups_between(preceding(1), CURRENT_ROW)))",
         "SELECT id, count(*) OVER (ORDER BY user_id GROUPS BETWEEN 1 PRECEDING AND CURRENT ROW) FROM orders"),
    Case(W, "named_window",
         "w = window('w', partition_by=[O.user_id], order_by=[O.total.desc(), O.id])\n"
         "O.select(O.id, rank().over(w), sum_(O.total).over(w).as_('running'))",
         "SELECT id, rank() OVER w, sum(total) OVER w FROM orders "
         "WINDOW w AS (PARTITION BY user_id ORDER BY total DESC, id)"),
    Case(W, "aggregate_filter",
         "O.group_by(O.user_id).select(O.user_id, count().filter(O.status == 'paid').as_('paid'),\n"
         "                              sum_(O.total).filter(O.status != 'void'))",
         "SELECT user_id, count(*) FILTER (WHERE status = 'paid'), "
         "sum(total) FILTER (WHERE status <> 'void') FROM orders GROUP BY user_id"),
    Case(W, "filter_over_window",
         "O.select(O.id, count().filter(O.status == 'open').over(order_by=[O.id]))",
         "SELECT id, count(*) FILTER (WHERE status = 'open') OVER (ORDER BY id) FROM orders"),
    Case(W, "window_over_groups",
         "O.group_by(O.user_id).select(O.user_id, sum_(O.total).as_('spent'),\n"
         "                              rank().over(order_by=[sum_(O.total).desc()]).as_('place'))",
         "SELECT user_id, sum(total), rank() OVER (ORDER BY sum(total) DESC) FROM orders GROUP BY user_id"),
    Case(W, "window_then_filter_in_subquery",
         "r = O.select(O.id, O.user_id, row_number().over(partition_by=[O.user_id],\n"
         "                                                order_by=[O.total.desc(), O.id]).as_('rn')).subquery('r')\n"
         "r.where(r.rn == 1).select(r.id, r.user_id)",
         "SELECT id, user_id FROM (SELECT id, user_id, row_number() OVER "
         "(PARTITION BY user_id ORDER BY total DESC, id) AS rn FROM orders) r WHERE rn = 1"),

    # ---- expressions ----
    Case(X, "case", "U.select(U.id, case((U.age < 30, 'young'), (U.age < 50, 'mid'), else_='old').as_('band'))",
         "SELECT id, CASE WHEN age < 30 THEN 'young' WHEN age < 50 THEN 'mid' ELSE 'old' END FROM users"),
    Case(X, "cast", "U.select(U.id, U.age.cast('text'), cast(U.score, 'integer'), cast(U.age, 'float'))",
         "SELECT id, CAST(age AS text), CAST(score AS integer), CAST(age AS double precision) FROM users",
         "SELECT id, CAST(age AS TEXT), CAST(score AS INTEGER), CAST(age AS REAL) FROM users"),
    Case(X, "coalesce_nullif", "U.select(U.id, coalesce(U.email, U.name), nullif(U.age, 36))",
         "SELECT id, coalesce(email, name), nullif(age, 36) FROM users"),
    Case(X, "greatest_least", "U.select(U.id, greatest(U.age, U.score, 30), least(U.age, U.score))",
         "SELECT id, greatest(age, score, 30), least(age, score) FROM users",
         "SELECT id, (SELECT max(x) FROM (SELECT age AS x UNION ALL SELECT score UNION ALL SELECT 30)), "
         "(SELECT min(x) FROM (SELECT age AS x UNION ALL SELECT score)) FROM users"),
    Case(X, "arithmetic_and_concat",
         "O.select(O.id, (O.total * 2 - O.user_id) % 7, -O.total, O.status.concat('-', O.id.cast('text')))",
         "SELECT id, (total * 2 - user_id) % 7, -total, status || '-' || CAST(id AS text) FROM orders"),
    Case(X, "is_distinct_from", "U.where(U.age.is_distinct_from(36)).select(U.id)",
         "SELECT id FROM users WHERE age IS DISTINCT FROM 36",
         "SELECT id FROM users WHERE age IS NOT 36"),
    Case(X, "is_not_distinct_from_column", "U.where(U.age.is_not_distinct_from(U.score)).select(U.id)",
         "SELECT id FROM users WHERE age IS NOT DISTINCT FROM score",
         "SELECT id FROM users WHERE age IS score"),
    Case(X, "string_functions",
         "U.select(U.id, lower(U.name), upper(U.name), length(U.name), trim(param('  x ')),\n"
         "         replace(U.name, 'a', 'A'), substr(U.name, 2, 3), strpos(U.name, 'a'))",
         "SELECT id, lower(name), upper(name), length(name), trim('  x '), replace(name, 'a', 'A'), "
         "substr(name, 2, 3), strpos(name, 'a') FROM users",
         "SELECT id, lower(name), upper(name), length(name), trim('  x '), replace(name, 'a', 'A'), "
         "substr(name, 2, 3), instr(name, 'a') FROM users"),
    Case(X, "date_functions",
         "E.select(E.id, extract('year', E.at), extract('month', E.at), extract('dow', E.at),\n"
         "         extract('hour', E.at), date_trunc('month', E.at))",
         "SELECT id, extract(year FROM at)::int, extract(month FROM at)::int, extract(dow FROM at)::int, "
         "extract(hour FROM at)::int, date_trunc('month', at)::date FROM events",
         "SELECT id, CAST(strftime('%Y', at) AS INTEGER), CAST(strftime('%m', at) AS INTEGER), "
         "CAST(strftime('%w', at) AS INTEGER), CAST(strftime('%H', at) AS INTEGER), "
         "date(at, 'start of month') FROM events"),
    Case(X, "group_by_date_trunc",
         "m = date_trunc('year', E.at).as_('y')\n"
         "E.group_by(m).select(m, count())",
         "SELECT date_trunc('year', at)::date, count(*) FROM events GROUP BY 1",
         "SELECT date(at, 'start of year'), count(*) FROM events GROUP BY 1"),

    # ---- subqueries and CTEs ----
    Case(S, "in_subquery", "U.where(U.id.in_(O.where(O.total > 90).select(O.user_id))).select(U.id)",
         "SELECT id FROM users WHERE id IN (SELECT user_id FROM orders WHERE total > 90)"),
    Case(S, "not_in_subquery", "U.where(U.id.not_in(O.where(O.status == 'void').select(O.user_id))).select(U.id)",
         "SELECT id FROM users WHERE id NOT IN (SELECT user_id FROM orders WHERE status = 'void')"),
    Case(S, "exists", "U.where(exists(O.where((O.user_id == U.id) & (O.total > 200)))).select(U.id)",
         "SELECT id FROM users u WHERE EXISTS (SELECT 1 FROM orders o WHERE o.user_id = u.id AND o.total > 200)"),
    Case(S, "not_exists", "U.where(~exists(O.where(O.user_id == U.id))).select(U.id)",
         "SELECT id FROM users u WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.user_id = u.id)"),
    Case(S, "scalar_subquery",
         "spent = O.where(O.user_id == U.id).select(sum_(O.total)).scalar().as_('spent')\n"
         "U.where(U.age > U.select(avg(U.age))).select(U.id, spent)",
         "SELECT id, (SELECT sum(total) FROM orders o WHERE o.user_id = u.id) FROM users u "
         "WHERE age > (SELECT avg(age) FROM users)"),
    Case(S, "subquery_in_from",
         "per = O.group_by(O.user_id).select(O.user_id, sum_(O.total).as_('spent')).subquery('per')\n"
         "U.join(per, on=per.user_id == U.id).where(per.spent > 100).select(U.name, per.spent)",
         "SELECT u.name, per.spent FROM users u JOIN (SELECT user_id, sum(total) AS spent FROM orders "
         "GROUP BY user_id) per ON per.user_id = u.id WHERE per.spent > 100"),
    Case(S, "cte",
         "big = O.where(O.total >= 100).select(O.user_id, O.total).cte('big')\n"
         "U.join(big, on=big.user_id == U.id).select(U.name, big.total)",
         "WITH big AS (SELECT user_id, total FROM orders WHERE total >= 100) "
         "SELECT u.name, big.total FROM users u JOIN big ON big.user_id = u.id"),
    Case(S, "cte_reading_cte",
         "paid = O.where(O.status == 'paid').select(O.user_id, O.total).cte('paid')\n"
         "per = paid.group_by(paid.user_id).select(paid.user_id, sum_(paid.total).as_('s')).cte('per')\n"
         "per.where(per.s > 100).select(per.user_id, per.s)",
         "WITH paid AS (SELECT user_id, total FROM orders WHERE status = 'paid'), "
         "per AS (SELECT user_id, sum(total) AS s FROM paid GROUP BY user_id) "
         "SELECT user_id, s FROM per WHERE s > 100"),
    Case(S, "with_recursive",
         "n = recursive_cte('n', ['k'])\n"
         "n = n.defined_as(U.where(U.id == 1).select(U.id).union_all(n.where(n.k < 6).select(n.k + 1)))\n"
         "n.select(n.k, (n.k * n.k).as_('sq'))",
         "WITH RECURSIVE n(k) AS (SELECT id FROM users WHERE id = 1 UNION ALL SELECT k + 1 FROM n WHERE k < 6) "
         "SELECT k, k * k FROM n"),

    # ---- set operations ----
    Case(O_, "union", "U.where(U.age > 40).select(U.id).union(O.where(O.total > 400).select(O.user_id))",
         "SELECT id FROM users WHERE age > 40 UNION SELECT user_id FROM orders WHERE total > 400"),
    Case(O_, "union_all_ordered",
         "U.select(U.id).union_all(O.select(O.user_id)).order_by(U.id.desc()).limit(5)",
         "SELECT id FROM users UNION ALL SELECT user_id FROM orders ORDER BY id DESC LIMIT 5", ordered=True),
    Case(O_, "intersect", "U.select(U.id).intersect(O.where(O.status == 'paid').select(O.user_id))",
         "SELECT id FROM users INTERSECT SELECT user_id FROM orders WHERE status = 'paid'"),
    Case(O_, "except", "U.select(U.id).except_(O.select(O.user_id))",
         "SELECT id FROM users EXCEPT SELECT user_id FROM orders"),

    # ---- writes ----
    Case(WR, "insert_one", "I.insert({'id': 10, 'name': 'fig', 'qty': 3}).returning(I.id, I.name)",
         "INSERT INTO items (id, name, qty) VALUES (10, 'fig', 3) RETURNING id, name", write=True),
    Case(WR, "insert_many",
         "I.insert([{'id': 10, 'name': 'fig', 'qty': 3}, {'id': 11, 'name': 'kiwi', 'qty': None}])",
         "INSERT INTO items (id, name, qty) VALUES (10, 'fig', 3), (11, 'kiwi', NULL)", write=True),
    Case(WR, "insert_from_select",
         "I.insert_from(['id', 'name', 'qty'], U.where(U.age > 40).select(U.id + 100, U.name, U.age))\\\n"
         " .returning(I)",
         "INSERT INTO items (id, name, qty) SELECT id + 100, name, age FROM users WHERE age > 40 RETURNING *",
         write=True),
    Case(WR, "insert_from_cte",
         "old = U.where(U.age > 35).select(U.id, U.name).cte('old')\n"
         "I.insert_from(['id', 'name'], old.select(old.id + 200, old.name)).returning(I.id)",
         "INSERT INTO items (id, name) WITH old AS (SELECT id, name FROM users WHERE age > 35) "
         "SELECT id + 200, name FROM old RETURNING id", write=True),
    Case(WR, "update",
         "I.update({'qty': coalesce(I.qty, 0) + 1, 'name': I.name.concat('!')}).where(I.name.startswith('a'))\\\n"
         " .returning(I.id, I.qty)",
         "UPDATE items SET qty = coalesce(qty, 0) + 1, name = name || '!' WHERE name LIKE 'a%' RETURNING id, qty",
         "UPDATE items SET qty = coalesce(qty, 0) + 1, name = name || '!' WHERE name GLOB 'a*' RETURNING id, qty",
         write=True),
    Case(WR, "update_with_subquery",
         "I.update({'qty': 0}).where(I.id.in_(O.where(O.status == 'void').select(O.id)))",
         "UPDATE items SET qty = 0 WHERE id IN (SELECT id FROM orders WHERE status = 'void')", write=True),
    Case(WR, "delete", "I.delete().where((I.qty < 3) | I.qty.is_null()).returning(I.id)",
         "DELETE FROM items WHERE qty < 3 OR qty IS NULL RETURNING id", write=True),
    Case(WR, "upsert_do_update",
         "I.insert([{'id': 1, 'name': 'apple', 'qty': 10}, {'id': 12, 'name': 'lime', 'qty': 1}])\\\n"
         " .on_conflict(I.id).do_update({'qty': I.qty + excluded(I.qty)}).returning(I.id, I.qty)",
         "INSERT INTO items (id, name, qty) VALUES (1, 'apple', 10), (12, 'lime', 1) "
         "ON CONFLICT (id) DO UPDATE SET qty = items.qty + excluded.qty RETURNING id, qty", write=True),
    Case(WR, "upsert_do_nothing",
         "I.insert({'id': 2, 'name': 'other', 'qty': 0}).on_conflict(I.id).do_nothing().returning(I.id)",
         "INSERT INTO items (id, name, qty) VALUES (2, 'other', 0) ON CONFLICT (id) DO NOTHING RETURNING id",
         write=True),
    Case(WR, "upsert_from_select",
         "I.insert_from(['id', 'name', 'qty'], U.where(U.id <= 6).select(U.id, U.name, U.age))\\\n"
         " .on_conflict(I.id).do_update({'name': excluded(I.name)})",
         "INSERT INTO items (id, name, qty) SELECT id, name, age FROM users WHERE id <= 6 "
         "ON CONFLICT (id) DO UPDATE SET name = excluded.name", write=True),
]
