"""One small data set loaded into SQLite and PostgreSQL for the molt_sql
oracle tests. The strings hold every character a pattern could misread:
% _ \\ * ? [ ] quotes, mixed case and non-ASCII."""

USERS_DDL = (
    'CREATE TABLE "users" (id integer PRIMARY KEY, name text NOT NULL, '
    "email text, age integer, score double precision)"
)
ORDERS_DDL = (
    'CREATE TABLE "orders" (id integer PRIMARY KEY, user_id integer NOT NULL, '
    "total integer NOT NULL, status text NOT NULL)"
)
# a table and a column whose names need quoting
ODD_DDL = 'CREATE TABLE "odd ""name"" %s" ("select" integer, "Mixed Case" text)'

USERS = [
    (1, "Ada", "ada@austin.edu", 36, 9.5),
    (2, "bob", "bob@example.com", None, 7.25),
    (3, "Carla_100%", "carla@AUSTIN.EDU", 41, None),
    (4, "dan\\x", "dan@austin.edu.evil.com", 19, 3.0),
    (5, "Eve*?[x]", "eve@austin.edu", 28, 8.0),
    (6, "fréd", None, 55, 6.5),
    (7, "Gus O'Neil", "gus_1@austin.edu", 36, 9.5),
    (8, "hal%", "hal%@austin.edu", None, None),
    (9, "ADA", "ada2@Austin.edu", 22, 1.0),
    (10, "ivy_", "ivy@x_y.org", 36, 4.75),
]
ORDERS = [
    (1, 1, 100, "paid"),
    (2, 1, 250, "paid"),
    (3, 2, 75, "open"),
    (4, 3, 500, "paid"),
    (5, 3, 20, "void"),
    (6, 3, 80, "paid"),
    (7, 5, 60, "open"),
    (8, 7, 999, "paid"),
    (9, 9, 10, "paid"),
    (10, 9, 15, "open"),
]
ODD = [(1, "a"), (2, "B"), (3, None)]

# events: a timestamp per row (text on SQLite, timestamp on PostgreSQL)
EVENTS_DDL = {
    "sqlite": 'CREATE TABLE "events" (id integer PRIMARY KEY, user_id integer NOT NULL, at text NOT NULL)',
    "postgres": 'CREATE TABLE "events" (id integer PRIMARY KEY, user_id integer NOT NULL, at timestamp NOT NULL)',
}
EVENTS = [
    (1, 1, "2024-01-15 08:30:00"),
    (2, 1, "2024-02-29 23:59:00"),
    (3, 2, "2024-02-03 12:00:00"),
    (4, 3, "2023-12-31 00:00:00"),
    (5, 5, "2024-07-04 17:45:00"),
    (6, 9, "2025-03-09 06:15:00"),
]
# items: the table the write cases change (reset before each)
ITEMS_DDL = 'CREATE TABLE "items" (id integer PRIMARY KEY, name text NOT NULL, qty integer)'
ITEMS = [
    (1, "apple", 5),
    (2, "banana", 2),
    (3, "avocado", None),
    (4, "cherry", 1),
    (5, "a'pos%_\\", 7),
]
