from django.urls import path

from accounts import api

urlpatterns = [
    path("me/", api.me, name="api-me"),
    path("teams/", api.TeamListView.as_view(), name="api-team-list"),
    path("teams/<int:pk>/", api.TeamDetailView.as_view(), name="api-team-detail"),
    path("teams/<int:team_pk>/members/", api.MemberListView.as_view(), name="api-member-list"),
    path(
        "teams/<int:team_pk>/members/<int:pk>/",
        api.MemberDetailView.as_view(),
        name="api-member-detail",
    ),
    path(
        "teams/<int:team_pk>/invitations/",
        api.TeamInvitationListView.as_view(),
        name="api-team-invitation-list",
    ),
    path(
        "teams/<int:team_pk>/invitations/<int:pk>/",
        api.TeamInvitationDetailView.as_view(),
        name="api-team-invitation-detail",
    ),
    path("invitations/", api.InvitationListView.as_view(), name="api-invitation-list"),
    path("invitations/<int:pk>/", api.InvitationDetailView.as_view(), name="api-invitation-detail"),
    path(
        "invitations/<int:pk>/accept/",
        api.InvitationAcceptView.as_view(),
        name="api-invitation-accept",
    ),
    path(
        "invitations/<int:pk>/decline/",
        api.InvitationDeclineView.as_view(),
        name="api-invitation-decline",
    ),
    path("tokens/", api.TokenListView.as_view(), name="api-token-list"),
    path("tokens/<int:pk>/", api.TokenDetailView.as_view(), name="api-token-detail"),
]
