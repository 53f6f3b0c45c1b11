"""The example site's routes."""

from django.urls import path

from shopsite import views

urlpatterns = [
    path("", views.page),
    path("tyres", views.page),
    path("contact", views.page),
    path("stream", views.streamed),
    path("api/stock", views.stock),
    path("offers", views.offers),
    path("print", views.printable),
]
