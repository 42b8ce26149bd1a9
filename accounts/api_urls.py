from django.urls import path

from accounts import api

urlpatterns = [
    path("me/", api.MeView.as_view(), name="api-me"),
    path("teams/", api.TeamListView.as_view(), name="api-team-list"),
    path("teams/<int:pk>/", api.TeamDetailView.as_view(), name="api-team-detail"),
    path("teams/<int:team_pk>/members/", api.MemberListView.as_view(), name="api-member-list"),
    path(
        "teams/<int:team_pk>/members/<int:pk>/",
        api.MemberDetailView.as_view(),
        name="api-member-detail",
    ),
    path("tokens/", api.TokenListView.as_view(), name="api-token-list"),
    path("tokens/<int:pk>/", api.TokenDetailView.as_view(), name="api-token-detail"),
]
