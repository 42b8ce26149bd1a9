from drf_spectacular.utils import OpenApiExample, extend_schema_serializer
from rest_framework import serializers

from accounts.models import (
    ApiToken,
    Invitation,
    InvitationStatus,
    Membership,
    Role,
    Team,
    TokenScope,
    User,
)


class MyTeamSerializer(serializers.ModelSerializer):
    role = serializers.CharField(source="my_role", read_only=True)
    member_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Team
        fields = ["id", "name", "role", "member_count", "created_at"]
        read_only_fields = ["id", "created_at"]


class MeSerializer(serializers.ModelSerializer):
    teams = serializers.SerializerMethodField()
    token_scope = serializers.SerializerMethodField()
    current_password = serializers.CharField(
        write_only=True,
        required=False,
        trim_whitespace=False,
        max_length=4096,
        help_text="Required to change `email`, which only a browser session may do.",
    )

    class Meta:
        model = User
        fields = [
            "id",
            "username",
            "email",
            "first_name",
            "last_name",
            "time_zone",
            "is_staff",
            "teams",
            "token_scope",
            "current_password",
        ]
        read_only_fields = ["id", "username", "is_staff"]

    def validate_email(self, value):
        from django import forms

        from accounts.services import unique_email

        try:
            return unique_email(value, exclude=self.instance)
        except forms.ValidationError as exc:
            raise serializers.ValidationError(exc.messages) from None

    def validate_time_zone(self, value):
        from accounts.middleware import time_zone_names

        if value and value not in time_zone_names():
            raise serializers.ValidationError(
                "An IANA time zone name like “Europe/Paris”, or empty for the browser's."
            )
        return value

    def get_teams(self, user) -> list[dict]:
        return MyTeamSerializer(self.context["teams"], many=True).data

    def get_token_scope(self, user) -> str | None:
        auth = self.context["request"].auth
        return auth.scope if isinstance(auth, ApiToken) else None


@extend_schema_serializer(
    examples=[OpenApiExample("A team", value={"name": "Research"}, request_only=True)]
)
class TeamWriteSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)


class MemberUserSerializer(serializers.ModelSerializer):
    email = serializers.SerializerMethodField(
        help_text="Shown to the team's owners and admins (and to the member themselves); "
        "null for everyone else."
    )

    class Meta:
        model = User
        fields = ["id", "username", "email"]

    def get_email(self, user) -> str | None:
        request = self.context.get("request")
        if self.context.get("show_emails") or (request and request.user.pk == user.pk):
            return user.email
        return None


class MembershipSerializer(serializers.ModelSerializer):
    user = MemberUserSerializer(read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "user", "role", "created_at"]


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "Invite a member",
            value={"user": "bob@example.com", "role": "member"},
            request_only=True,
        )
    ]
)
class InvitationCreateSerializer(serializers.Serializer):
    user = serializers.CharField(
        max_length=254,
        help_text="A username or an email address. The answer is the same whether or not "
        "an account by that name exists.",
    )
    role = serializers.ChoiceField(choices=Role.choices, default=Role.MEMBER)


class TeamInvitationSerializer(serializers.ModelSerializer):
    """An invitation as the team's managers see it: what they typed, never the account."""

    user = serializers.CharField(source="identifier", read_only=True)
    status = serializers.SerializerMethodField()
    invited_by = serializers.CharField(source="invited_by.username", default=None, read_only=True)

    class Meta:
        model = Invitation
        fields = ["id", "user", "role", "status", "invited_by", "created_at", "expires_at"]
        read_only_fields = fields

    def get_status(self, invitation) -> str:
        # A decline looks pending to the team (it would reveal that the account exists).
        if invitation.status == InvitationStatus.DECLINED:
            return InvitationStatus.PENDING
        return invitation.status


class InvitationTeamSerializer(serializers.ModelSerializer):
    class Meta:
        model = Team
        fields = ["id", "name"]


class MyInvitationSerializer(serializers.ModelSerializer):
    """An invitation as its invitee sees it."""

    team = InvitationTeamSerializer(read_only=True)
    invited_by = serializers.CharField(source="invited_by.username", default=None, read_only=True)

    class Meta:
        model = Invitation
        fields = ["id", "team", "role", "status", "invited_by", "created_at", "expires_at"]
        read_only_fields = fields


class MembershipRoleSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices)


class TokenSerializer(serializers.ModelSerializer):
    status = serializers.CharField(read_only=True)

    class Meta:
        model = ApiToken
        fields = [
            "id",
            "name",
            "scope",
            "prefix",
            "status",
            "created_at",
            "expires_at",
            "last_used_at",
            "revoked_at",
        ]
        read_only_fields = fields


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "A read-only token for a dashboard",
            value={"name": "Grafana", "scope": "read", "expires_at": "2027-06-30T18:00:00+02:00"},
            request_only=True,
        )
    ]
)
class TokenCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    scope = serializers.ChoiceField(choices=TokenScope.choices, default=TokenScope.READ)
    expires_at = serializers.DateTimeField(required=False, allow_null=True)


class TokenCreatedSerializer(TokenSerializer):
    token = serializers.CharField(read_only=True, help_text="Shown once; store it now.")

    class Meta(TokenSerializer.Meta):
        fields = [*TokenSerializer.Meta.fields, "token"]
        read_only_fields = fields
