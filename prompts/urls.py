from django.urls import path

from prompts import batch_views, insert_views, views

app_name = "prompts"

urlpatterns = [
    path("", views.prompt_list, name="index"),
    path("new/", views.prompt_new, name="new"),
    path("import/", views.prompt_import, name="import"),
    path("variables/", views.variables_table, name="variables"),
    path("picker/", insert_views.picker, name="picker"),
    path("<int:pk>/", views.prompt_detail, name="detail"),
    path("<int:pk>/edit/", views.prompt_edit, name="edit"),
    path("<int:pk>/delete/", views.prompt_delete, name="delete"),
    path("<int:pk>/try/", views.prompt_try, name="try"),
    path("<int:pk>/insert/", insert_views.insert_form, name="insert_form"),
    path("<int:pk>/v/<int:number>/", views.version_detail, name="version"),
    path("<int:pk>/diff/", views.version_diff, name="diff"),
    path("<int:pk>/labels/", views.label_set, name="label_set"),
    path("<int:pk>/labels/<slug:name>/delete/", views.label_delete, name="label_delete"),
    path("<int:pk>/export.<str:fmt>", views.prompt_export, name="export"),
    path("<int:pk>/batches/new/", batch_views.batch_new, name="batch_new"),
    path("batches/<int:pk>/", batch_views.batch_detail, name="batch_detail"),
    path("batches/<int:pk>/cancel/", batch_views.batch_cancel, name="batch_cancel"),
    path("batches/<int:pk>/delete/", batch_views.batch_delete, name="batch_delete"),
    path("batches/<int:pk>/export.<str:fmt>", batch_views.batch_export, name="batch_export"),
]
