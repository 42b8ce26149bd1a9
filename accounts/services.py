"""Writes for accounts: sign-up, teams, memberships, API tokens, the first admin."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from accounts import access, emails
from accounts.access import Action
from accounts.models import ApiToken, Membership, Role, Team, TokenScope, User
from workbench import realtime

TOKEN_PREFIX = "wb_"


# --- Users ---------------------------------------------------------------------------------------


def user_signup(*, username: str, email: str, password: str) -> User:
    user = User(username=username, email=email)
    validate_password(password, user)
    user.set_password(password)
    user.full_clean()
    user.save()
    return user


def unique_email(email: str, exclude: User | None = None) -> str:
    others = User.objects.filter(email__iexact=email)
    if exclude is not None:
        others = others.exclude(pk=exclude.pk)
    if email and others.exists():
        raise ValidationError("An account with this email already exists.")
    return email


def user_update_names(*, user: User, first_name: str, last_name: str) -> User:
    """Display names: anything that does not control how one logs in."""
    user.first_name = first_name
    user.last_name = last_name
    user.full_clean(exclude=["password"])
    user.save(update_fields=["first_name", "last_name"])
    return user


@transaction.atomic
def user_change_email(*, user: User, email: str, password: str) -> User:
    """Change the address that password resets go to — so it controls the account: it takes the
    current password (a stolen session alone is not enough; callers let only a browser session
    get here, never an API token), and the old address is told."""
    if not user.check_password(password or ""):
        raise ValidationError({"current_password": "Your current password is not correct."})
    try:
        email = unique_email(User.objects.normalize_email(email.strip()), exclude=user)
    except ValidationError as exc:
        raise ValidationError({"email": exc.messages}) from None
    if not email:
        raise ValidationError({"email": "Enter an email address: password resets go there."})
    old = user.email
    if email == old:
        return user
    user.email = email
    user.full_clean(exclude=["password"])
    user.save(update_fields=["email"])
    emails.email_changed_notice(user=user, old_email=old, new_email=email)
    return user


def admin_ensure(*, username: str = "admin") -> tuple[User, str | None]:
    """Create a superuser with a generated password when the instance has none. Returns the user
    and the password (None when an admin already existed: the password is shown only once)."""
    existing = User.objects.filter(is_superuser=True).order_by("pk").first()
    if existing:
        return existing, None
    password = secrets.token_urlsafe(12)
    # Never promote an ordinary user who happens to be called "admin".
    candidate, n = username, 1
    while User.objects.filter(username=candidate).exists():
        n += 1
        candidate = f"{username}{n}"
    user = User.objects.create_superuser(username=candidate, email="", password=password)
    return user, password


# --- Teams ---------------------------------------------------------------------------------------


@transaction.atomic
def team_create(*, user: User, name: str) -> Team:
    name = name.strip()
    if not name:
        raise ValidationError({"name": "A team needs a name."})
    team = Team.objects.create(name=name, created_by=user)
    Membership.objects.create(team=team, user=user, role=Role.OWNER)
    return team


def team_rename(*, actor: User, team: Team, name: str) -> Team:
    access.require(actor, team, Action.MANAGE)
    name = name.strip()
    if not name:
        raise ValidationError({"name": "A team needs a name."})
    team.name = name
    team.save(update_fields=["name"])
    return team


def team_delete(*, actor: User, team: Team) -> None:
    access.require(actor, team, Action.MANAGE)
    if access.role_in(actor, team.pk) != Role.OWNER:
        raise PermissionDenied("Only an owner can delete the team.")
    members = list(team.memberships.values_list("user_id", flat=True))
    team.delete()
    realtime.access_changed(*members)


def _find_user(identifier: str) -> User:
    identifier = identifier.strip()
    if not identifier:
        raise ValidationError({"user": "Enter a username or an email address."})
    # An identifier with "@" is an email and matches only emails: a username that looks like
    # someone else's address must never stand in for them.
    if "@" in identifier:
        user = User.objects.filter(email__iexact=identifier).first()
    else:
        user = User.objects.filter(username=identifier).first()
    if user is None or not user.is_active:
        raise ValidationError({"user": f"No user with the username or email “{identifier}”."})
    return user


def _check_role_change(actor: User, team: Team, role: str, current: str | None) -> None:
    """Admins manage members but only owners touch owners; owners keep at least one owner."""
    if role not in Role.values:
        raise ValidationError({"role": f"Role must be one of {', '.join(Role.values)}."})
    actor_role = access.role_in(actor, team.pk)
    if Role.OWNER in (role, current) and actor_role != Role.OWNER:
        raise PermissionDenied("Only an owner can make or change an owner.")


@transaction.atomic
def membership_add(*, actor: User, team: Team, identifier: str, role: str) -> Membership:
    access.require(actor, team, Action.MANAGE)
    _check_role_change(actor, team, role, None)
    user = _find_user(identifier)
    if Membership.objects.filter(team=team, user=user).exists():
        raise ValidationError({"user": f"{user.username} is already a member of {team.name}."})
    return Membership.objects.create(team=team, user=user, role=role)


def _owners_left(team: Team, *, without: Membership) -> int:
    return team.memberships.filter(role=Role.OWNER).exclude(pk=without.pk).count()


@transaction.atomic
def membership_change_role(*, actor: User, membership: Membership, role: str) -> Membership:
    team = Team.objects.select_for_update().get(pk=membership.team_id)
    access.require(actor, team, Action.MANAGE)
    _check_role_change(actor, team, role, membership.role)
    if (
        membership.role == Role.OWNER
        and role != Role.OWNER
        and not _owners_left(team, without=membership)
    ):
        raise ValidationError({"role": "A team needs at least one owner."})
    membership.role = role
    membership.save(update_fields=["role"])
    realtime.access_changed(membership.user_id)
    return membership


@transaction.atomic
def membership_remove(*, actor: User, membership: Membership) -> None:
    """Remove someone (manage), or leave (anyone may remove themselves)."""
    team = Team.objects.select_for_update().get(pk=membership.team_id)
    if membership.user_id != actor.pk:
        access.require(actor, team, Action.MANAGE)
        _check_role_change(actor, team, membership.role, membership.role)
    if membership.role == Role.OWNER and not _owners_left(team, without=membership):
        raise ValidationError(
            "The last owner cannot leave. Make someone else an owner first, or delete the team."
        )
    membership.delete()
    realtime.access_changed(membership.user_id)


# --- API tokens ----------------------------------------------------------------------------------


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def token_create(
    *, user: User, name: str, scope: str = TokenScope.READ, expires_at: datetime | None = None
) -> tuple[ApiToken, str]:
    """Returns the token and its plaintext, which is shown once and never stored."""
    name = name.strip()
    if not name:
        raise ValidationError({"name": "Give the token a name, e.g. “CI script”."})
    if scope not in TokenScope.values:
        raise ValidationError({"scope": f"Scope must be one of {', '.join(TokenScope.values)}."})
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationError({"expires_at": "The expiry must be in the future."})
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user,
        name=name,
        scope=scope,
        prefix=raw[: len(TOKEN_PREFIX) + 6],
        digest=_digest(raw),
        expires_at=expires_at,
    )
    return token, raw


def token_revoke(*, user: User, token: ApiToken) -> ApiToken:
    if token.user_id != user.pk:
        from django.http import Http404

        raise Http404
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
    return token


def token_authenticate(*, raw: str) -> ApiToken | None:
    """The active token for this plaintext, or None. Records when it was last used (at most once a
    minute, so a busy script doesn't turn every request into a write)."""
    if not raw.startswith(TOKEN_PREFIX):
        return None
    token = (
        ApiToken.objects.select_related("user")
        .filter(digest=_digest(raw), revoked_at__isnull=True)
        .first()
    )
    if token is None or token.is_expired or not token.user.is_active:
        return None
    now = timezone.now()
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token
