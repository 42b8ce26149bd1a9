from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.utils import timezone

from accounts.forms import AdminSignInForm
from accounts.models import ApiToken, Invitation, InvitationStatus, Membership, Team, User


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    inlines = [MembershipInline]
    list_display = [
        "username",
        "email",
        "first_name",
        "last_name",
        "is_staff",
        "is_active",
        "date_joined",
    ]


class TeamMembershipInline(MembershipInline):
    fk_name = "team"


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ["name", "created_by", "created_at"]
    search_fields = ["name"]
    inlines = [TeamMembershipInline]
    autocomplete_fields = ["created_by"]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["team", "user", "role", "created_at"]
    list_filter = ["role"]
    search_fields = ["team__name", "user__username", "user__email"]
    autocomplete_fields = ["team", "user"]


@admin.action(description="Revoke selected tokens")
def revoke_tokens(modeladmin, request, queryset):
    queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are created by their owners (shown once); the admin can only look and revoke."""

    list_display = [
        "name",
        "user",
        "prefix",
        "scope",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
    ]
    list_filter = ["scope"]
    search_fields = ["name", "user__username", "prefix"]
    fields = [
        "user",
        "name",
        "scope",
        "prefix",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
    ]
    readonly_fields = fields
    actions = [revoke_tokens]

    def has_add_permission(self, request):
        return False


@admin.action(description="Withdraw selected open invitations")
def withdraw_invitations(modeladmin, request, queryset):
    queryset.filter(status__in=[InvitationStatus.PENDING, InvitationStatus.DECLINED]).update(
        status=InvitationStatus.REVOKED, responded_at=timezone.now()
    )


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    """Invitations are sent from the team page; staff can look (the real status, declines
    included) and withdraw."""

    list_display = [
        "identifier",
        "team",
        "invitee",
        "role",
        "status",
        "invited_by",
        "created_at",
        "expires_at",
    ]
    list_filter = ["status", "role"]
    search_fields = ["identifier", "team__name", "invitee__username", "invited_by__username"]
    fields = [
        "team",
        "identifier",
        "invitee",
        "role",
        "status",
        "invited_by",
        "created_at",
        "expires_at",
        "responded_at",
    ]
    readonly_fields = fields
    actions = [withdraw_invitations]

    def has_add_permission(self, request):
        return False


# The admin's login form counts password attempts like the app's (accounts.signin).
admin.site.login_form = AdminSignInForm
