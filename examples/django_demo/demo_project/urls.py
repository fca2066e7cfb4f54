from django.urls import path

from catalog import api

urlpatterns = [
    path("baseline/api/items", api.baseline_items),
    path("offload/api/items", api.offload_items),
    path("offload/api/items-async", api.offload_items_async),
]
