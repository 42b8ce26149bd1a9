"""Users, teams, memberships and API tokens. The rules about who may do what live in access.py."""

from __future__ import annotations

from django.contrib.auth.models import AbstractUser, UserManager
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from accounts.names import (
    name_clean,
    username_key,
    username_mixes_scripts,
    username_normalize,
    username_shape,
)


class Users(UserManager):
    def get_by_natural_key(self, username):
        """Sign in with the username as typed in any case or width ("ALICE", "ａｌｉｃｅ")."""
        username = username_normalize(username or "")
        exact = self.filter(username=username).first()
        if exact is not None:
            return exact
        matches = list(self.filter(username__iexact=username)[:2])
        if len(matches) != 1:
            raise self.model.DoesNotExist
        return matches[0]


class User(AbstractUser):
    """Our own user model from the first migration, so adding fields later needs no data surgery."""

    # The username's skeleton (accounts.names): "Alice", "аlice" (Cyrillic а) and "a1ice" share
    # one, so only one of them can exist.
    username_key = models.CharField(max_length=600, unique=True, editable=False)
    username_shape = models.CharField(max_length=600, unique=True, editable=False)

    objects = Users()

    class Meta:
        constraints = [
            # Members are added "by username or email", so an email must name one person.
            models.UniqueConstraint(
                Lower("email"), condition=~models.Q(email=""), name="accounts_user_email_ci_unique"
            )
        ]

    # An IANA name ("Europe/Paris"); empty: the browser's zone (sent in a cookie), else the
    # server's TIME_ZONE. Every time shown or entered uses it (accounts.middleware).
    time_zone = models.CharField(max_length=64, blank=True)
    # Sign-up mode `approve`: the account exists but can't log in until a superuser approves it.
    awaiting_approval = models.BooleanField(default=False)
    # The first-run checklist on the home page, once its owner hid it.
    checklist_hidden = models.BooleanField(default=False)

    @property
    def display_name(self) -> str:
        return self.get_full_name() or self.username

    @classmethod
    def from_db(cls, db, field_names, values, **kwargs):
        user = super().from_db(db, field_names, values, **kwargs)
        # What was stored, to notice below when a save changes the password or deactivates.
        user._stored = (user.__dict__.get("password"), user.__dict__.get("is_active"))
        return user

    def clean(self):
        super().clean()
        self.username = username_normalize(self.username)
        if username_mixes_scripts(self.username):
            raise ValidationError(
                {
                    "username": "Use letters from one alphabet: mixing scripts (like a Cyrillic “а” "
                    "among Latin letters) makes names that look like someone else's."
                }
            )
        others = User.objects.filter(
            models.Q(username_key=username_key(self.username))
            | models.Q(username_shape=username_shape(self.username))
        ).exclude(pk=self.pk)
        if others.exists():
            raise ValidationError({"username": "A user with that username already exists."})

    def save(self, *args, **kwargs):
        self.username = username_normalize(self.username)
        self.username_key = username_key(self.username)
        self.username_shape = username_shape(self.username)
        self.first_name, self.last_name = name_clean(self.first_name), name_clean(self.last_name)
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "username" in update_fields:
            kwargs["update_fields"] = {*update_fields, "username_key", "username_shape"}
        self._save_signing_out(*args, **kwargs)

    def _save_signing_out(self, *args, **kwargs):
        """A new password (changed, reset, set by an admin or `changepassword`) or a deactivation
        closes every open websocket of the user. Here rather than in each view because every one
        of those paths ends in this save, and a path that forgot would leave a socket streaming
        to someone who should no longer see anything."""
        stored = getattr(self, "_stored", None)
        signed_out = stored is not None and (
            (stored[0] is not None and self.password != stored[0])
            or (stored[1] is True and not self.is_active)
        )
        super().save(*args, **kwargs)
        self._stored = (self.password, self.is_active)
        if signed_out:
            from workbench import realtime

            realtime.user_signed_out(self.pk)


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    MEMBER = "member", "Member"
    VIEWER = "viewer", "Viewer"


class Team(models.Model):
    name = models.CharField(max_length=100)
    created_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):
        self.name = name_clean(self.name)  # no bidi controls, however the team was named
        super().save(*args, **kwargs)


class Membership(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["team", "user__username"]
        constraints = [
            models.UniqueConstraint(fields=["team", "user"], name="accounts_membership_unique")
        ]
        indexes = [models.Index(fields=["user", "team"])]

    def __str__(self) -> str:
        return f"{self.user} in {self.team} ({self.role})"


class SignupRequest(models.Model):
    """A sign-up waiting for its email to be confirmed. Nothing is reserved until then: the
    account is created when the link is used, if its username and email are still free. The
    password is stored hashed, the link's token only as a digest."""

    username = models.CharField(max_length=150)
    email = models.EmailField()
    password = models.CharField(max_length=128)
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.username} <{self.email}>"


class InvitationStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    ACCEPTED = "accepted", "Accepted"
    DECLINED = "declined", "Declined"
    REVOKED = "revoked", "Withdrawn"


class Invitation(models.Model):
    """An invitation to join a team; the invitee accepts or declines it in the app.

    `identifier` is what the inviter typed (a username or an email): the team's managers see only
    that, never the account behind it. `invitee` is the active account it named when it was sent,
    or None when it named nobody — such an invitation just expires, and the inviter can't tell
    the difference. A declined invitation looks pending to the team until it expires, so that
    declining doesn't reveal that an account exists either."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="invitations")
    invited_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    invitee = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.CASCADE, related_name="invitations"
    )
    identifier = models.CharField(max_length=254)
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    status = models.CharField(
        max_length=10, choices=InvitationStatus.choices, default=InvitationStatus.PENDING
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    responded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # One open invitation per team and typed name: inviting again refreshes it.
            models.UniqueConstraint(
                "team",
                Lower("identifier"),
                condition=models.Q(status__in=["pending", "declined"]),
                name="accounts_invitation_open_unique",
            )
        ]
        indexes = [
            models.Index(fields=["invitee", "status", "expires_at"]),
            models.Index(fields=["team", "status", "expires_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.identifier} to {self.team} ({self.status})"

    @property
    def is_expired(self) -> bool:
        return self.expires_at <= timezone.now()


class TokenScope(models.TextChoices):
    READ = "read", "Read only"
    WRITE = "write", "Read and write"


class ApiToken(models.Model):
    """A personal API token. Only a SHA-256 digest is stored: the token has 256 bits of entropy,
    so a slow hash would add nothing but latency to every request."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    scope = models.CharField(max_length=10, choices=TokenScope.choices, default=TokenScope.READ)
    # The first characters of the token, shown in lists so people can tell tokens apart.
    prefix = models.CharField(max_length=16, db_index=True)
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None and not self.is_expired

    @property
    def status(self) -> str:
        if self.revoked_at:
            return "revoked"
        if self.is_expired:
            return "expired"
        return "active"


class ThrottleWindow(models.Model):
    """One fixed-window counter of `accounts.throttles` (failed logins, failed tokens, password
    reset requests). `key` is a digest: what people type into a username field is sometimes
    their password, and it must not be stored."""

    key = models.CharField(max_length=64, primary_key=True)
    count = models.PositiveIntegerField(default=0)
    window_ends = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["window_ends"])]

    def __str__(self) -> str:
        return f"{self.key[:12]}… {self.count} until {self.window_ends:%H:%M:%S}"
