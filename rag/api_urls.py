from django.urls import path

from rag import api

urlpatterns = [
    path("collections/", api.CollectionListView.as_view(), name="api-collection-list"),
    path("collections/<int:pk>/", api.CollectionDetailView.as_view(), name="api-collection-detail"),
    path(
        "collections/<int:pk>/documents/", api.DocumentListView.as_view(), name="api-document-list"
    ),
    path(
        "collections/<int:pk>/documents/<int:document_id>/",
        api.DocumentDetailView.as_view(),
        name="api-document-detail",
    ),
    path(
        "collections/<int:pk>/documents/<int:document_id>/cancel/",
        api.DocumentCancelView.as_view(),
        name="api-document-cancel",
    ),
    path(
        "collections/<int:pk>/status/",
        api.IngestionStatusView.as_view(),
        name="api-collection-status",
    ),
    path("collections/<int:pk>/search/", api.SearchView.as_view(), name="api-collection-search"),
]
