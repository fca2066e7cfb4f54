"""GET /api/items?user_id=&q=&status=&limit=&cursor=, twice.

    {"items": [{"ref", "title", "status", "amount", "created", "color",
                "seller_id", "seller_name", "id"}, ...],
     "next_cursor": id or null, "counts": {status: n}}

Public items, newest first (id descending); ``user_id`` is the seller,
``q`` a case-insensitive title substring, ``cursor`` the ``next_cursor`` of
the previous page. ``counts`` are over the same filters without ``status``
and ``cursor`` (facet counts). /baseline/ builds it with the ORM and
JsonResponse; /offload/ hands the same QuerySets to molt_worker, which
writes the rows' JSON; the two bodies decode to equal values.
"""
from django.db.models import Count, F
from django.db.models.fields.json import KT
from django.http import JsonResponse

from molt_django_adapter.views import Pairs, Rows, molt_offload

from .formats import IsoUtc, Money2, UuidText, iso_utc
from .models import Item

MAX_LIMIT = 1000


class BadRequest(ValueError):
    pass


def _int(params, name, lo, hi, default=None):
    v = params.get(name, "")
    if v == "":
        return default
    try:
        n = int(v)
    except ValueError:
        raise BadRequest(f"{name} must be an integer") from None
    if not lo <= n <= hi:
        raise BadRequest(f"{name} must be between {lo} and {hi}")
    return n


def parse(params):
    status = params.get("status") or None
    if status is not None and status not in Item.STATUSES:
        raise BadRequest(f"status must be one of {', '.join(Item.STATUSES)}")
    return dict(user_id=_int(params, "user_id", 1, 2**62), q=params.get("q") or None, status=status,
                limit=_int(params, "limit", 1, MAX_LIMIT, 50), cursor=_int(params, "cursor", 1, 2**62))


def facet_filter(f):
    qs = Item.objects.filter(is_public=True)
    if f["user_id"] is not None:
        qs = qs.filter(seller_id=f["user_id"])
    if f["q"] is not None:
        qs = qs.filter(title__icontains=f["q"])
    return qs


def page_filter(f):
    qs = facet_filter(f)
    if f["status"] is not None:
        qs = qs.filter(status=f["status"])
    if f["cursor"] is not None:
        qs = qs.filter(id__lt=f["cursor"])
    return qs.order_by("-id")


def counts_query(f):
    return facet_filter(f).values("status").annotate(n=Count("id")).order_by()


def _bad(e):
    return JsonResponse({"error": {"status": "InvalidInput", "message": str(e)}}, status=400)


def item_json(i):
    return {"ref": str(i.uuid), "title": i.title, "status": i.status, "amount": str(i.price),
            "created": iso_utc(i.created_at), "color": i.meta.get("color"),
            "seller_id": i.seller_id, "seller_name": i.seller.name, "id": i.id}


def baseline_items(request):
    try:
        f = parse(request.GET)
    except BadRequest as e:
        return _bad(e)
    page = list(page_filter(f).select_related("seller")[: f["limit"] + 1])
    more = len(page) > f["limit"]
    page = page[: f["limit"]]
    return JsonResponse({
        "items": [item_json(i) for i in page],
        "next_cursor": page[-1].id if more else None,
        "counts": {s: n for s, n in counts_query(f).values_list("status", "n")},
    })


def offload_spec(request):
    try:
        f = parse(request.GET)
    except BadRequest as e:
        return _bad(e)
    rows = (page_filter(f)
            .annotate(ref=UuidText("uuid"), amount=Money2("price"), created=IsoUtc("created_at"),
                      color=KT("meta__color"), seller_name=F("seller__name"))
            .values("ref", "title", "status", "amount", "created", "color", "seller_id", "seller_name", "id"))
    page = Rows(rows[: f["limit"] + 1], max_rows=f["limit"], tag="items_page")
    return {"items": page, "next_cursor": page.next_cursor("id"),
            "counts": Pairs(counts_query(f), tag="items_counts")}


offload_items = molt_offload(offload_spec)


@molt_offload
async def offload_items_async(request):
    return offload_spec(request)
