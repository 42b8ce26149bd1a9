from django.urls import path

from providers import views

app_name = "providers"

urlpatterns = [
    path("", views.credential_list, name="list"),
    path("add/", views.credential_add, name="add"),
    path("egress/", views.egress_allowlist, name="egress"),
    path("models/favourite/", views.model_favourite, name="model_favourite"),
    path("models/default/", views.model_default, name="model_default"),
    path("egress/<int:pk>/delete/", views.egress_entry_delete, name="egress_delete"),
    path("<int:pk>/", views.credential_detail, name="detail"),
    path("<int:pk>/edit/", views.credential_edit, name="edit"),
    path("<int:pk>/test/", views.credential_test, name="test"),
    path("<int:pk>/refresh/", views.catalogue_refresh, name="refresh"),
    path("<int:pk>/toggle/", views.credential_toggle, name="toggle"),
    path("<int:pk>/delete/", views.credential_delete, name="delete"),
]
