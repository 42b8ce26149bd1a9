from django.urls import path, re_path

from chats import views

app_name = "chats"

urlpatterns = [
    path("", views.index, name="index"),
    path("highlight.css", views.highlight_css, name="highlight_css"),
    path("new/", views.conversation_new, name="new"),
    path("<int:pk>/", views.conversation_detail, name="detail"),
    path("<int:pk>/settings/", views.conversation_settings, name="settings"),
    path("<int:pk>/rename/", views.conversation_rename, name="rename"),
    path("<int:pk>/title/", views.conversation_title, name="title"),
    path("<int:pk>/delete/", views.conversation_delete, name="delete"),
    path("<int:pk>/fork/", views.conversation_fork, name="fork"),
    re_path(r"^(?P<pk>[0-9]+)/export\.(?P<fmt>md|json)$", views.conversation_export, name="export"),
]
