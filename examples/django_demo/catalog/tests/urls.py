from django.urls import path

from demo_project.urls import urlpatterns as demo

from . import views

urlpatterns = demo + [
    path("t/short/<str:case>", views.short_deadline),
    path("t/long/<str:case>", views.long_deadline),
    path("t/long503/<str:case>", views.long_deadline_busy503),
    path("t/async/<str:case>", views.long_deadline_async),
    path("t/tricky", views.tricky),
]
