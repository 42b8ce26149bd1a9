from rest_framework import serializers

from accounts.models import ApiToken, Membership, Role, Team, TokenScope, User


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

    def get_teams(self, user) -> list[dict]:
        return MyTeamSerializer(self.context["teams"], many=True).data

    def get_token_scope(self, user) -> str | None:
        auth = self.context["request"].auth
        return auth.scope if isinstance(auth, ApiToken) else None


class TeamWriteSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)


class MemberUserSerializer(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = ["id", "username", "email"]


class MembershipSerializer(serializers.ModelSerializer):
    user = MemberUserSerializer(read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "user", "role", "created_at"]


class MembershipAddSerializer(serializers.Serializer):
    user = serializers.CharField(help_text="Username or email of an existing user.")
    role = serializers.ChoiceField(choices=Role.choices, default=Role.MEMBER)


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


class TokenCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    scope = serializers.ChoiceField(choices=TokenScope.choices, default=TokenScope.READ)
    expires_at = serializers.DateTimeField(required=False, allow_null=True)


class TokenCreatedSerializer(TokenSerializer):
    token = serializers.CharField(read_only=True, help_text="Shown once; store it now.")

    class Meta(TokenSerializer.Meta):
        fields = [*TokenSerializer.Meta.fields, "token"]
        read_only_fields = fields
