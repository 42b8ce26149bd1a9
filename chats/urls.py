from django.urls import path, re_path

from chats import list_views, share_views, views

app_name = "chats"

urlpatterns = [
    path("", views.index, name="index"),
    path("highlight.css", views.highlight_css, name="highlight_css"),
    path("new/", views.conversation_new, name="new"),
    path("<int:pk>/", views.conversation_detail, name="detail"),
    path("<int:pk>/settings/", views.conversation_settings, name="settings"),
    path("<int:pk>/collections/", views.conversation_collections, name="collections"),
    path("<int:pk>/attachments/", views.attachment_upload, name="attach"),
    path(
        "<int:pk>/attachments/<int:attachment_id>/remove/",
        views.attachment_remove,
        name="attachment_remove",
    ),
    re_path(
        r"^(?P<pk>[0-9]+)/attachments/(?P<attachment_id>[0-9]+)/(?P<variant>full|thumb)$",
        views.attachment_file,
        name="attachment",
    ),
    path("<int:pk>/rename/", views.conversation_rename, name="rename"),
    path("<int:pk>/title/", views.conversation_title, name="title"),
    path("<int:pk>/delete/", views.conversation_delete, name="delete"),
    path("<int:pk>/fork/", views.conversation_fork, name="fork"),
    path("<int:pk>/messages/<int:message_pk>/rating/", views.message_rate, name="rate"),
    path("<int:pk>/pin/", list_views.conversation_pin, name="pin"),
    path("<int:pk>/archive/", list_views.conversation_archive, name="archive"),
    path("<int:pk>/move/", list_views.conversation_move, name="move"),
    path("<int:pk>/list-rename/", list_views.conversation_list_rename, name="list_rename"),
    path("bulk/", list_views.conversations_bulk, name="bulk"),
    path("folders/", list_views.folder_create, name="folder_create"),
    path("folders/<int:pk>/rename/", list_views.folder_rename, name="folder_rename"),
    path("folders/<int:pk>/delete/", list_views.folder_delete, name="folder_delete"),
    path("<int:pk>/share/", share_views.conversation_share, name="share"),
    path("<int:pk>/share/revoke/", share_views.share_revoke, name="share_revoke"),
    path("shared/<str:token>/", share_views.shared, name="shared"),
    re_path(r"^(?P<pk>[0-9]+)/export\.(?P<fmt>md|json)$", views.conversation_export, name="export"),
]
