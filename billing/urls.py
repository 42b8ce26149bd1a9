from django.urls import path

from billing import views
from workbench.views import area

app_name = "billing"

# Mounted at the site root: billing owns a page under Usage, Settings and the bell.
urlpatterns = [
    path("usage/", area("usage"), name="index"),
    path("settings/budgets/", views.budget_list, name="budget_list"),
    path("settings/budgets/add/", views.budget_add, name="budget_add"),
    path("settings/budgets/<int:pk>/edit/", views.budget_edit, name="budget_edit"),
    path("settings/budgets/<int:pk>/delete/", views.budget_delete, name="budget_delete"),
    path("notifications/", views.notification_list, name="notification_list"),
    path("notifications/read/", views.notifications_read, name="notifications_read"),
]
