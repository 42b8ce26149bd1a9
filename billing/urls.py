from django.urls import path

from billing import views

app_name = "billing"

# Mounted at the site root: billing owns a page under Usage, Settings and the bell.
urlpatterns = [
    path("usage/", views.usage_index, name="index"),
    path("usage/export.csv", views.usage_export, name="usage_export"),
    path("usage/calls/", views.usage_calls, name="usage_calls"),
    path("settings/budgets/", views.budget_list, name="budget_list"),
    path("settings/budgets/add/", views.budget_add, name="budget_add"),
    path("settings/budgets/<int:pk>/edit/", views.budget_edit, name="budget_edit"),
    path("settings/budgets/<int:pk>/delete/", views.budget_delete, name="budget_delete"),
    path("notifications/", views.notification_list, name="notification_list"),
    path("notifications/read/", views.notifications_read, name="notifications_read"),
]
