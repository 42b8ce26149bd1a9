from django.urls import path

from billing import api

urlpatterns = [
    path("usage/", api.UsageListView.as_view(), name="api-usage-list"),
    path("usage/summary/", api.UsageSummaryView.as_view(), name="api-usage-summary"),
    path("budgets/", api.BudgetListView.as_view(), name="api-budget-list"),
    path("budgets/<int:pk>/", api.BudgetDetailView.as_view(), name="api-budget-detail"),
    path("notifications/", api.NotificationListView.as_view(), name="api-notification-list"),
    path("notifications/read/", api.NotificationsReadView.as_view(), name="api-notifications-read"),
]
