from django.urls import path

from billing import api

urlpatterns = [
    path("usage/", api.UsageListView.as_view(), name="api-usage-list"),
]
