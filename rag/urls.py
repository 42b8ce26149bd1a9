from django.urls import path

from rag import views

app_name = "rag"

urlpatterns = [
    path("", views.collection_list, name="index"),
    path("new/", views.collection_new, name="new"),
    path("<int:pk>/", views.collection_detail, name="detail"),
    path("<int:pk>/edit/", views.collection_edit, name="edit"),
    path("<int:pk>/delete/", views.collection_delete, name="delete"),
    path("<int:pk>/upload/", views.document_upload, name="upload"),
    path("<int:pk>/paste/", views.document_paste, name="paste"),
    path("<int:pk>/fetch/", views.document_fetch, name="fetch"),
    path(
        "<int:pk>/documents/<int:document_id>/cancel/",
        views.document_cancel,
        name="document_cancel",
    ),
    path(
        "<int:pk>/documents/<int:document_id>/retry/", views.document_retry, name="document_retry"
    ),
    path(
        "<int:pk>/documents/<int:document_id>/delete/",
        views.document_delete,
        name="document_delete",
    ),
    path("<int:pk>/search/", views.collection_search, name="search"),
    path("<int:pk>/chunks/<int:chunk_id>/", views.chunk_detail, name="chunk"),
]
