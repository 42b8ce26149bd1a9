from django.contrib.auth import views as auth_views
from django.urls import path, reverse_lazy

from accounts import instance_views, views

app_name = "accounts"

urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    path("signup/", views.signup, name="signup"),
    path("signup/sent/", views.signup_sent, name="signup_sent"),
    path("signup/confirm/<str:token>/", views.signup_confirm, name="signup_confirm"),
    path("password/change/", views.PasswordChangeView.as_view(), name="password_change"),
    path(
        "password/change/done/",
        auth_views.PasswordChangeDoneView.as_view(
            template_name="accounts/password_change_done.html", extra_context={"tab": "profile"}
        ),
        name="password_change_done",
    ),
    path("password/reset/", views.PasswordResetView.as_view(), name="password_reset"),
    path(
        "password/reset/sent/",
        auth_views.PasswordResetDoneView.as_view(template_name="accounts/password_reset_done.html"),
        name="password_reset_done",
    ),
    path(
        "password/reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(
            template_name="accounts/password_reset_confirm.html",
            success_url=reverse_lazy("accounts:password_reset_complete"),
        ),
        name="password_reset_confirm",
    ),
    path(
        "password/reset/complete/",
        auth_views.PasswordResetCompleteView.as_view(
            template_name="accounts/password_reset_complete.html"
        ),
        name="password_reset_complete",
    ),
    path("settings/profile/", views.profile, name="profile"),
    path("settings/profile/email/", views.email_change, name="email_change"),
    path("settings/teams/", views.team_list, name="team_list"),
    path("settings/teams/<int:pk>/", views.team_detail, name="team_detail"),
    path("settings/teams/<int:pk>/rename/", views.team_rename, name="team_rename"),
    path("settings/teams/<int:pk>/delete/", views.team_delete, name="team_delete"),
    path(
        "settings/teams/<int:pk>/invitations/",
        views.invitation_create,
        name="invitation_create",
    ),
    path(
        "settings/teams/<int:pk>/invitations/<int:invitation_pk>/withdraw/",
        views.invitation_revoke,
        name="invitation_revoke",
    ),
    path("settings/invitations/", views.invitation_list, name="invitation_list"),
    path(
        "settings/invitations/<int:pk>/accept/",
        views.invitation_accept,
        name="invitation_accept",
    ),
    path(
        "settings/invitations/<int:pk>/decline/",
        views.invitation_decline,
        name="invitation_decline",
    ),
    path(
        "settings/teams/<int:pk>/members/<int:membership_pk>/role/",
        views.member_role,
        name="member_role",
    ),
    path(
        "settings/teams/<int:pk>/members/<int:membership_pk>/remove/",
        views.member_remove,
        name="member_remove",
    ),
    path("teams/<int:pk>/switch/", views.team_switch, name="team_switch"),
    path("teams/personal/switch/", views.personal_switch, name="personal_switch"),
    path("settings/users/", instance_views.user_list, name="user_list"),
    path("settings/users/<int:pk>/approve/", instance_views.user_approve, name="user_approve"),
    path("settings/users/<int:pk>/disable/", instance_views.user_disable, name="user_disable"),
    path("settings/users/<int:pk>/enable/", instance_views.user_enable, name="user_enable"),
    path(
        "settings/users/<int:pk>/password-reset/",
        instance_views.user_password_reset,
        name="user_password_reset",
    ),
    path("checklist/hide/", views.checklist_hide, name="checklist_hide"),
    path("settings/tokens/", views.token_list, name="token_list"),
    path("settings/tokens/<int:pk>/revoke/", views.token_revoke, name="token_revoke"),
]
