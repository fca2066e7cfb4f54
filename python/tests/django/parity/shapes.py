"""The QuerySet shapes of the parity suite. Each takes a database alias and
returns what a caller would hold (instances, dicts, tuples, numbers).
``fallback`` maps a vendor to a word of the reason for which that shape is
expected to stay on the ORM."""

import datetime
import decimal
import uuid
import zoneinfo
from dataclasses import dataclass, field
from typing import Any, Callable

from django.conf import settings
from django.db import connections
from django.db.models import (
    Avg, Case, CharField, Count, DateTimeField, DurationField, Exists, ExpressionWrapper, F,
    FloatField, Max, Min, OuterRef, Q,
    StdDev, Subquery, Sum, Value, Variance, When, Window,
)
from django.db.models.functions import (
    MD5, SHA1, SHA224, SHA256, SHA384, SHA512, Cast, Ceil, Coalesce, Concat, Cot, Degrees,
    ExtractHour, ExtractYear, Floor, Greatest, Least, Length, Ln, Lower, LPad, Mod, NullIf, Power,
    Rank, Repeat, Reverse, RowNumber, RPad, Sign, Sqrt, Trunc, TruncDate, TruncMonth, Upper,
)

from .models import Author, Book, Publisher, Tag


@dataclass
class Shape:
    name: str
    run: Callable[[str], Any]
    fallback: dict[str, str] = field(default_factory=dict)
    no_query: bool = False
    raises: bool = False     # the ORM raises (DoesNotExist ...): both paths must raise alike


def dt(*args: int) -> datetime.datetime:
    """A datetime as the code of a project with this USE_TZ would write it."""
    value = datetime.datetime(*args)
    return value.replace(tzinfo=datetime.timezone.utc) if settings.USE_TZ else value


def zone(z: Any) -> Any:
    """A tzinfo argument (Django refuses one when USE_TZ is off)."""
    if not settings.USE_TZ:
        return None
    return zoneinfo.ZoneInfo(z) if isinstance(z, str) else z


A, B, T, P = (m.objects for m in (Author, Book, Tag, Publisher))
SHAPES: list[Shape] = []


def shape(name: str, **opts: Any) -> Callable[[Callable[[str], Any]], Callable[[str], Any]]:
    def add(fn: Callable[[str], Any]) -> Callable[[str], Any]:
        SHAPES.append(Shape(name, fn, **opts))
        return fn
    return add


def simple(name: str, make: Callable[[str], Any], **opts: Any) -> None:
    SHAPES.append(Shape(name, make, **opts))


# ---- instances, values, values_list ----
simple("instances", lambda db: list(A.using(db).order_by("id")))
simple("book_instances", lambda db: list(B.using(db).order_by("id")))
simple("values_all", lambda db: list(B.using(db).order_by("id").values()))
simple("values_some", lambda db: list(B.using(db).order_by("-id").values("id", "title", "price", "published")))
simple("values_list", lambda db: list(A.using(db).order_by("id").values_list("id", "name", "joined", "born", "key")))
simple("values_list_flat", lambda db: list(B.using(db).order_by("title").values_list("title", flat=True)))
simple("values_list_named", lambda db: list(A.using(db).order_by("id").values_list("id", "rating", "profile", named=True)))
simple("only_defer", lambda db: [(a.id, a.name) for a in A.using(db).only("name").order_by("id")] + [a.email for a in A.using(db).defer("profile").order_by("id")])
simple("iterator_chunks", lambda db: list(B.using(db).order_by("id").iterator(chunk_size=7)))
simple("iterator_default_chunks", lambda db: list(A.using(db).order_by("id").iterator()))
simple("iterator_values", lambda db: list(B.using(db).order_by("id").values("id", "published", "wake", "length", "price").iterator(chunk_size=6)))
simple("iterator_values_list_named", lambda db: list(A.using(db).order_by("id").values_list("id", "joined", "key", "active", named=True).iterator(chunk_size=5)))

# ---- lookups ----
simple("exact", lambda db: list(A.using(db).filter(name="bob")))
simple("iexact", lambda db: list(A.using(db).filter(name__iexact="BOB")))
simple("contains", lambda db: list(A.using(db).filter(name__contains="o").order_by("id")))
simple("icontains", lambda db: list(A.using(db).filter(name__icontains="O").order_by("id")))
simple("contains_percent_literal", lambda db: list(A.using(db).filter(name__contains="%")))
simple("contains_underscore_literal", lambda db: list(A.using(db).filter(name__contains="_")))
simple("contains_quote", lambda db: list(A.using(db).filter(name__contains="'")))
simple("startswith", lambda db: list(A.using(db).filter(email__startswith="user1").order_by("id")))
simple("istartswith", lambda db: list(A.using(db).filter(name__istartswith="j").order_by("id")))
simple("endswith", lambda db: list(A.using(db).filter(email__endswith="@austin.edu").order_by("id")))
simple("iendswith", lambda db: list(A.using(db).filter(name__iendswith="N").order_by("id")))
simple("in_list", lambda db: list(B.using(db).filter(id__in=[1, 3, 5, 40]).order_by("id")))
simple("in_empty", lambda db: list(B.using(db).filter(id__in=[])))
simple("in_empty_count", lambda db: B.using(db).filter(id__in=[]).count())
simple("in_subquery", lambda db: list(B.using(db).filter(author__in=A.using(db).filter(active=True)).order_by("id").values_list("id", flat=True)))
simple("range_int", lambda db: list(B.using(db).filter(pages__range=(100, 300)).order_by("id")))
simple("range_datetime", lambda db: list(B.using(db).filter(published__range=(dt(2024, 5, 1), dt(2024, 9, 1))).order_by("id")))
simple("isnull_true", lambda db: list(A.using(db).filter(nick__isnull=True).order_by("id")))
simple("isnull_false", lambda db: list(A.using(db).filter(born__isnull=False).order_by("id")))
simple("gt_decimal", lambda db: list(B.using(db).filter(price__gt=decimal.Decimal("50.5")).order_by("id")))
simple("lte_int", lambda db: list(B.using(db).filter(pages__lte=200).order_by("id")))
simple("lt_datetime", lambda db: list(A.using(db).filter(joined__lt=dt(2024, 4, 1, 12)).order_by("id")))
simple("regex", lambda db: list(A.using(db).filter(name__regex=r"^[A-D]").order_by("id")))
simple("iregex", lambda db: list(A.using(db).filter(name__iregex=r"^[a-d]").order_by("id")))
simple("bool_filter", lambda db: list(B.using(db).filter(in_print=False).order_by("id")))
simple("decimal_exact", lambda db: list(A.using(db).filter(rating=decimal.Decimal("-0.50"))))
simple("uuid_exact", lambda db: list(A.using(db).filter(key=uuid.UUID(int=0x1234_5678_9ABC_DEF0 * 3))))
simple("uuid_values", lambda db: list(A.using(db).order_by("key").values_list("key", flat=True)))
simple("duration_gt", lambda db: list(B.using(db).filter(length__gt=datetime.timedelta(hours=5)).order_by("id").values("id", "length")))
simple("time_lt", lambda db: list(B.using(db).filter(wake__lt=datetime.time(12, 0)).order_by("id").values("id", "wake")))
simple("binary_values", lambda db: list(B.using(db).order_by("id").values_list("cover", flat=True)))

# ---- date and time lookups (SQLite: Django's registered functions) ----
simple("date_lookup", lambda db: list(B.using(db).filter(published__date=datetime.date(2024, 4, 21)).order_by("id")))
simple("year_lookup", lambda db: list(B.using(db).filter(published__year=2024).order_by("id").values_list("id", flat=True)))
simple("month_lookup", lambda db: list(B.using(db).filter(published__month=5).order_by("id").values_list("id", flat=True)))
simple("week_day_lookup", lambda db: list(A.using(db).filter(joined__week_day=1).order_by("id").values_list("id", flat=True)))
simple("date_field_year", lambda db: list(A.using(db).filter(born__year__gte=1985).order_by("id").values_list("id", flat=True)))
simple("time_hour", lambda db: list(B.using(db).filter(wake__hour__gte=12).order_by("id").values_list("id", flat=True)))
simple("trunc_month_group", lambda db: list(B.using(db).annotate(m=TruncMonth("published")).values("m").annotate(n=Count("id")).order_by("m")))
simple("trunc_date", lambda db: list(A.using(db).annotate(d=TruncDate("joined")).order_by("id").values_list("id", "d")))
simple("extract_year", lambda db: list(A.using(db).annotate(y=ExtractYear("joined")).order_by("id").values_list("id", "y")))
simple("dates", lambda db: list(B.using(db).dates("published", "month")))
simple("datetimes", lambda db: list(B.using(db).datetimes("published", "day")))

# ---- Q, F, expressions ----
simple("q_or", lambda db: list(A.using(db).filter(Q(name__startswith="A") | Q(active=False)).order_by("id")))
simple("q_not_and", lambda db: list(A.using(db).filter(~Q(nick__isnull=True) & Q(rating__gt=0)).order_by("id")))
simple("f_compare", lambda db: list(B.using(db).filter(pages__gt=F("author__id") * 20).order_by("id").values_list("id", flat=True)))
simple("f_annotate", lambda db: list(B.using(db).annotate(double=F("pages") * 2, dprice=F("price") * 2).order_by("id").values("id", "double", "dprice")))
simple("functions", lambda db: list(A.using(db).annotate(lo=Lower("name"), up=Upper("name"), n=Length("email"), c=Concat("name", Value("<"), "email", output_field=CharField())).order_by("id").values("lo", "up", "n", "c")))
simple("coalesce", lambda db: list(A.using(db).annotate(n=Coalesce("nick", Value("-"))).order_by("id").values_list("n", flat=True)))
simple("case_when", lambda db: list(B.using(db).annotate(size=Case(When(pages__gt=300, then=Value("big")), When(pages__gt=150, then=Value("mid")), default=Value("small"))).order_by("id").values_list("id", "size")))
simple("cast_float", lambda db: list(B.using(db).annotate(p=Cast("pages", FloatField())).order_by("id").values_list("p", flat=True)))
simple("exists_annotation", lambda db: list(A.using(db).annotate(has_big=Exists(B.using(db).filter(author=OuterRef("pk"), pages__gt=300))).order_by("id").values_list("id", "has_big")))
simple("subquery_annotation", lambda db: list(A.using(db).annotate(top=Subquery(B.using(db).filter(author=OuterRef("pk")).order_by("-price").values("price")[:1])).order_by("id").values_list("id", "top")))

# ---- aggregation ----
simple("annotate_count", lambda db: list(A.using(db).annotate(n=Count("books")).order_by("id")))
simple("annotate_sum_avg_max", lambda db: list(A.using(db).annotate(total=Sum("books__price"), avg=Avg("books__pages"), latest=Max("books__published")).order_by("id").values("id", "total", "avg", "latest")))
simple("values_annotate_group_by", lambda db: list(B.using(db).values("author__name").annotate(n=Count("id"), s=Sum("price"), lo=Min("price")).order_by("author__name")))
simple("m2m_count", lambda db: list(T.using(db).annotate(n=Count("books")).order_by("label").values_list("label", "n")))
simple("aggregate", lambda db: B.using(db).aggregate(Sum("price"), Avg("pages"), Max("published"), Min("price"), Count("id")))
simple("aggregate_avg_decimal", lambda db: B.using(db).aggregate(a=Avg("price"), s=Sum("pages", filter=Q(in_print=True))))
simple("aggregate_over_slice", lambda db: B.using(db).order_by("id")[:10].aggregate(Sum("pages")))
simple("count", lambda db: B.using(db).count())
simple("count_filtered_join", lambda db: B.using(db).filter(author__active=True).count())
simple("count_distinct", lambda db: B.using(db).values("author").distinct().count())
simple("stddev_variance", lambda db: B.using(db).aggregate(sd=StdDev("pages"), v=Variance("pages")), fallback={"sqlite": "stddev_pop"})
simple("random_order", lambda db: len(list(B.using(db).order_by("?"))), fallback={"sqlite": "rand"})

# ---- single rows, existence ----
simple("exists_true", lambda db: B.using(db).filter(pages__gt=100).exists())
simple("exists_false", lambda db: B.using(db).filter(pages__gt=10_000).exists())
simple("first", lambda db: B.using(db).order_by("price").first())
simple("last", lambda db: B.using(db).order_by("price", "id").last())
simple("get", lambda db: A.using(db).get(name="Gül"))
simple("get_missing", lambda db: A.using(db).get(name="nobody"), raises=True)
simple("earliest_latest", lambda db: (B.using(db).earliest("published"), B.using(db).latest("published")))
simple("in_bulk", lambda db: B.using(db).in_bulk([2, 4, 6]))
simple("contains_obj", lambda db: B.using(db).filter(pages__gt=100).contains(B.using(db).order_by("id")[0]))

# ---- ordering, distinct, slicing ----
simple("order_by_related", lambda db: list(B.using(db).order_by("author__name", "-price").values_list("id", flat=True)))
simple("order_by_nulls", lambda db: list(A.using(db).order_by(F("score").desc(nulls_last=True), "id").values_list("id", "score")))
simple("distinct", lambda db: list(B.using(db).values("author_id").distinct().order_by("author_id")))
simple("distinct_m2m", lambda db: list(B.using(db).filter(tags__label__in=["sf", "kids"]).distinct().order_by("id")))
simple("reverse_fk_filter", lambda db: list(A.using(db).filter(books__price__gt=90).distinct().order_by("id")))
simple("slice", lambda db: list(B.using(db).order_by("id")[5:15]))
simple("slice_index", lambda db: B.using(db).order_by("-id")[3])
simple("none", lambda db: list(B.using(db).none()), no_query=True)

# ---- relations ----
simple("select_related", lambda db: list(B.using(db).select_related("author__publisher").order_by("id")))
simple("select_related_nullable", lambda db: list(A.using(db).select_related("publisher").order_by("id")))
simple("prefetch_related", lambda db: [(a, list(a.books.all())) for a in A.using(db).prefetch_related("books").order_by("id")])
simple("prefetch_m2m", lambda db: [(b.id, [t.label for t in b.tags.all()]) for b in B.using(db).prefetch_related("tags").order_by("id")])

# ---- JSON ----
simple("json_key", lambda db: list(A.using(db).filter(profile__level=1).order_by("id")))
simple("json_nested_key", lambda db: list(A.using(db).filter(profile__nested__x__gte=5).order_by("id").values_list("id", flat=True)))
simple("json_key_isnull", lambda db: list(A.using(db).filter(profile__city__isnull=True).order_by("id").values_list("id", flat=True)))
simple("json_has_key", lambda db: list(A.using(db).filter(profile__has_key="city").order_by("id").values_list("id", flat=True)))
simple("json_values", lambda db: list(A.using(db).order_by("id").values("profile", "profile__tags")))

# ---- parameters inside grouped expressions (server-side binding numbers each one apart) ----
simple("group_by_param_expression", lambda db: list(A.using(db).annotate(tagged=Concat("name", Value("!"), output_field=CharField())).values("tagged").annotate(n=Count("id")).order_by("tagged")))
simple("group_by_param_case", lambda db: list(B.using(db).annotate(band=Case(When(pages__gt=200, then=Value("long")), default=Value("short"))).values("band").annotate(n=Count("id"), p=Sum("price")).order_by("band")))
simple("value_annotations", lambda db: list(B.using(db).annotate(one=Value(1), half=Value(decimal.Decimal("0.5")), yes=Value(True), word=Value("w")).order_by("id").values("one", "half", "yes", "word")[:3]))

# ---- duration and difference arithmetic (SQLite: django_format_dtdelta, django_timestamp_diff, django_time_diff) ----
simple("duration_plus", lambda db: list(B.using(db).filter(length__isnull=False).annotate(d=F("length") + datetime.timedelta(hours=1)).order_by("id").values_list("id", "d")))
simple("datetime_minus_datetime", lambda db: list(B.using(db).annotate(age=ExpressionWrapper(F("published") - F("author__joined"), output_field=DurationField())).order_by("id").values_list("id", "age")))
simple("datetime_plus_duration", lambda db: list(B.using(db).filter(length__isnull=False).annotate(end=ExpressionWrapper(F("published") + F("length"), output_field=DateTimeField())).order_by("id").values_list("id", "end")))

# ---- Django's SQLite text, hash and math functions; time zone arguments ----
simple("text_functions", lambda db: list(A.using(db).annotate(l=LPad("name", 8, Value("*")), r=RPad("name", 8, Value("-")), rep=Repeat("nick", 2), rev=Reverse("name")).order_by("id").values("l", "r", "rep", "rev")))
simple("md5", lambda db: list(A.using(db).annotate(m=MD5("email")).order_by("id").values_list("m", flat=True)))
# SHA* on PostgreSQL need the pgcrypto extension, which the test server does not have
simple("sha_functions_sqlite", lambda db: list(A.using(db).annotate(s1=SHA1("name"), s224=SHA224("name"), s256=SHA256("email"), s384=SHA384("name"), s512=SHA512("name")).order_by("id").values("s1", "s224", "s256", "s384", "s512")) if connections[db].vendor == "sqlite" else list(A.using(db).values("id")[:1]))
simple("math_functions", lambda db: list(B.using(db).annotate(sq=Sqrt("pages"), pw=Power("pages", 2), ln=Ln("pages"), md=Mod("pages", 7), ce=Ceil(F("price") / 3), fl=Floor(F("price") / 3), dg=Degrees("pages"), sg=Sign(F("pages") - 200), ct=Cot("pages")).order_by("id").values("sq", "pw", "ln", "md", "ce", "fl", "dg", "sg", "ct")))
simple("bitxor", lambda db: list(B.using(db).annotate(x=F("pages").bitxor(5)).order_by("id").values_list("x", flat=True)))
simple("trunc_iana_zone", lambda db: list(B.using(db).annotate(d=Trunc("published", "day", tzinfo=zone("America/New_York"))).order_by("id").values_list("id", "d")))
simple("extract_fixed_offset", lambda db: list(B.using(db).annotate(h=ExtractHour("published", tzinfo=zone(datetime.timezone(datetime.timedelta(hours=5, minutes=30))))).order_by("id").values_list("id", "h")))
simple("trunc_hour_time", lambda db: list(B.using(db).filter(wake__isnull=False).annotate(t=Trunc("wake", "hour")).order_by("id").values_list("id", "t")))

# ---- combinators, exclude, windows, more expressions ----
simple("union", lambda db: list(A.using(db).filter(active=False).values_list("id", "name").union(A.using(db).filter(rating__gt=5).values_list("id", "name")).order_by("id")))
simple("exclude", lambda db: list(B.using(db).exclude(author__name__startswith="A").exclude(pages__lt=100).order_by("id").values_list("id", flat=True)))
simple("window_rank", lambda db: list(B.using(db).annotate(r=Window(Rank(), partition_by=F("author_id"), order_by=F("pages").desc()), rn=Window(RowNumber(), order_by=F("id").asc())).order_by("id").values_list("id", "r", "rn")))
simple("filter_exists", lambda db: list(A.using(db).filter(Exists(B.using(db).filter(author=OuterRef("pk"), in_print=False))).order_by("id").values_list("id", flat=True)))
simple("greatest_least_nullif", lambda db: list(B.using(db).annotate(g=Greatest("pages", 200), l=Least("pages", 200), n=NullIf("pages", 50)).order_by("id").values_list("g", "l", "n")))
simple("order_by_annotation", lambda db: list(A.using(db).annotate(n=Count("books")).order_by("-n", "id").values_list("id", "n")))
simple("alias_filter", lambda db: list(B.using(db).alias(dp=F("pages") * 2).filter(dp__gt=500).order_by("id").values_list("id", flat=True)))
simple("coalesce_sum_empty", lambda db: B.using(db).filter(pages__gt=10_000).aggregate(s=Coalesce(Sum("price"), Value(decimal.Decimal("0")))))
