"""Writes for accounts: sign-up, teams, memberships, API tokens, the first admin."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from django.contrib.auth.hashers import make_password
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, models, transaction
from django.utils import timezone

from accounts import access, emails, throttles
from accounts.access import Action
from accounts.models import (
    ApiToken,
    Invitation,
    InvitationStatus,
    Membership,
    Role,
    SignupRequest,
    Team,
    TokenScope,
    User,
)
from accounts.names import username_key, username_shape
from workbench import realtime

TOKEN_PREFIX = "wb_"


# --- Users ---------------------------------------------------------------------------------------


def signup_mode() -> str:
    """`open`, `approve` or `closed` (settings.WORKBENCH_SIGNUP; booleans as open/closed)."""
    from django.conf import settings

    mode = settings.WORKBENCH_SIGNUP
    if mode is True:
        return "open"
    if mode is False or mode not in {"open", "approve", "closed"}:
        return "closed"
    return mode


SIGNUP_LIFETIME = timedelta(hours=24)


def _username_taken(username: str) -> bool:
    return User.objects.filter(
        models.Q(username_key=username_key(username))
        | models.Q(username_shape=username_shape(username))
    ).exists()


@transaction.atomic
def signup_request(*, username: str, email: str, password: str) -> None:
    """Start a sign-up. Whatever exists already, the caller shows the same "check your email"
    page; the email says what happened: a confirmation link, "you already have an account" (to
    that account's owner) or "that username is taken". So the sign-up page never tells anyone
    which emails or usernames exist. `password` must already be validated."""
    SignupRequest.objects.filter(expires_at__lte=timezone.now()).delete()
    email = User.objects.normalize_email(email.strip())
    existing = User.objects.filter(email__iexact=email).first()
    if existing is not None:
        emails.signup_existing_account(to=existing.email, user=existing)
        return
    if _username_taken(username):
        emails.signup_username_taken(to=email, username=username)
        return
    raw = secrets.token_urlsafe(32)
    SignupRequest.objects.create(
        username=username,
        email=email,
        password=make_password(password),
        digest=_digest(raw),
        expires_at=timezone.now() + SIGNUP_LIFETIME,
    )
    emails.signup_confirm_link(
        to=email, username=username, token=raw, approval=signup_mode() == "approve"
    )


def signup_request_for(*, token: str) -> SignupRequest | None:
    """The open sign-up this link belongs to, or None (unknown, used or expired)."""
    return SignupRequest.objects.filter(
        digest=_digest(token or ""), expires_at__gt=timezone.now()
    ).first()


def signup_confirm(*, token: str) -> User:
    """Create the account of a confirmed sign-up (the link works once, even when it fails). The
    sign-up mode at this moment decides how: `open`, active; `approve`, inactive and waiting for
    a superuser (accounts.administration), who are told."""
    from accounts import administration

    with transaction.atomic():
        pending = (
            SignupRequest.objects.select_for_update()
            .filter(digest=_digest(token or ""), expires_at__gt=timezone.now())
            .first()
        )
        if pending is None:
            raise ValidationError("This link has expired or was already used. Sign up again.")
        pending.delete()
        hold = signup_mode() == "approve"
        user = User(
            username=pending.username,
            email=pending.email,
            password=pending.password,
            is_active=not hold,
            awaiting_approval=hold,
        )
        if not (
            User.objects.filter(email__iexact=pending.email).exists()
            or _username_taken(pending.username)
        ):
            try:
                with transaction.atomic():  # a confirmation racing for the same name or address
                    user.full_clean()
                    user.save()
            except (IntegrityError, ValidationError):
                pass
            else:
                SignupRequest.objects.filter(email__iexact=pending.email).delete()
                if hold:
                    administration.user_hold_for_approval(user=user)
                return user
    # Outside the transaction: the used link stays used.
    raise ValidationError(
        "Someone took this username or email address since you signed up. Sign up again."
    )


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


def user_set_time_zone(*, user: User, time_zone: str) -> User:
    """The zone every time is shown and entered in; empty: the browser's."""
    from accounts.middleware import time_zone_names

    if time_zone and time_zone not in time_zone_names():
        raise ValidationError({"time_zone": "Pick a time zone from the list."})
    user.time_zone = time_zone
    user.save(update_fields=["time_zone"])
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
    while (
        User.objects.filter(username_key=username_key(candidate)).exists()
        or User.objects.filter(username_shape=username_shape(candidate)).exists()
    ):
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


def _check_role_change(actor: User, team: Team, role: str, current: str | None) -> None:
    """Admins manage members but only owners touch owners; owners keep at least one owner."""
    if role not in Role.values:
        raise ValidationError({"role": f"Role must be one of {', '.join(Role.values)}."})
    actor_role = access.role_in(actor, team.pk)
    if Role.OWNER in (role, current) and actor_role != Role.OWNER:
        raise PermissionDenied("Only an owner can make or change an owner.")


# --- Invitations -------------------------------------------------------------------------------

INVITATION_LIFETIME = timedelta(days=7)
# Open as far as the team can tell: a decline looks pending until it expires.
OPEN = [InvitationStatus.PENDING, InvitationStatus.DECLINED]
OPEN_INVITATIONS_PER_TEAM = 50
# Invitations one person may send per hour across all teams: each may email someone.
INVITATIONS_SENT = throttles.Limit("invitations-sent", limit=30, window=3600)


def _invitee_named(identifier: str) -> User | None:
    """The active account `identifier` names, or None. An identifier with "@" is an email and
    matches only emails: a username that looks like someone's address never stands in for
    them."""
    users = User.objects.filter(is_active=True)
    if "@" in identifier:
        return users.filter(email__iexact=identifier).first()
    return users.filter(username=identifier).first() or next(
        iter(users.filter(username__iexact=identifier)[:1]), None
    )


def _names_a_member(team: Team, identifier: str) -> bool:
    """Only usernames and emails the inviter can already see on the team page count."""
    field = "user__email__iexact" if "@" in identifier else "user__username__iexact"
    return team.memberships.filter(**{field: identifier}).exists()


@transaction.atomic
def invitation_create(*, actor: User, team: Team, identifier: str, role: str) -> Invitation:
    """Invite someone by username or email. The answer — and what the team sees afterwards — is
    the same whether or not such an account exists; only the invitee learns of it (in the app,
    and by email when their account has an address)."""
    access.require(actor, team, Action.MANAGE)
    _check_role_change(actor, team, role, None)
    identifier = " ".join(identifier.split())
    if not identifier:
        raise ValidationError({"user": "Enter a username or an email address."})
    if len(identifier) > 254:
        raise ValidationError({"user": "That is too long for a username or an email address."})
    if _names_a_member(team, identifier):
        raise ValidationError({"user": f"“{identifier}” is already a member of {team.name}."})
    open_invitations = Invitation.objects.filter(
        team=team, status__in=OPEN, expires_at__gt=timezone.now()
    )
    existing = (
        Invitation.objects.select_for_update()
        .filter(team=team, identifier__iexact=identifier, status__in=OPEN)
        .first()
    )
    if existing is None and open_invitations.count() >= OPEN_INVITATIONS_PER_TEAM:
        raise ValidationError(
            {
                "user": f"{team.name} already has {OPEN_INVITATIONS_PER_TEAM} open invitations. "
                "Withdraw some, or wait until they are answered or expire."
            }
        )
    if throttles.hit(INVITATIONS_SENT, str(actor.pk)).over(INVITATIONS_SENT):
        raise ValidationError({"user": "You sent a lot of invitations; try again in an hour."})
    now = timezone.now()
    if (
        existing is not None
        and existing.status == InvitationStatus.DECLINED
        and not existing.is_expired
    ):
        # A decline stands until the invitation expires or a manager withdraws it; saying so
        # would tell the inviter that the account exists.
        return existing
    invitation = existing or Invitation(team=team)
    invitation.identifier = identifier
    invitation.invitee = _invitee_named(identifier)
    invitation.role = role
    invitation.invited_by = actor
    invitation.status = InvitationStatus.PENDING
    invitation.created_at = now
    invitation.expires_at = now + INVITATION_LIFETIME
    invitation.responded_at = None
    invitation.save()
    if invitation.invitee is not None:
        emails.invitation_notice(invitation=invitation)
    return invitation


def _respondable(invitation: Invitation) -> None:
    if invitation.status != InvitationStatus.PENDING or invitation.is_expired:
        raise ValidationError(
            "This invitation is no longer open: it expired, was withdrawn or was answered."
        )


@transaction.atomic
def invitation_accept(*, user: User, invitation: Invitation) -> Membership:
    invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if invitation.invitee_id != user.pk:
        from django.http import Http404

        raise Http404
    _respondable(invitation)
    membership, _ = Membership.objects.get_or_create(
        team_id=invitation.team_id, user=user, defaults={"role": invitation.role}
    )
    now = timezone.now()
    invitation.status = InvitationStatus.ACCEPTED
    invitation.responded_at = now
    invitation.save(update_fields=["status", "responded_at"])
    # Other open invitations to the same team (by username and by email) are answered too.
    Invitation.objects.filter(team_id=invitation.team_id, invitee=user, status__in=OPEN).exclude(
        pk=invitation.pk
    ).update(status=InvitationStatus.ACCEPTED, responded_at=now)
    return membership


@transaction.atomic
def invitation_decline(*, user: User, invitation: Invitation) -> Invitation:
    invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if invitation.invitee_id != user.pk:
        from django.http import Http404

        raise Http404
    _respondable(invitation)
    invitation.status = InvitationStatus.DECLINED
    invitation.responded_at = timezone.now()
    invitation.save(update_fields=["status", "responded_at"])
    return invitation


def invitation_revoke(*, actor: User, invitation: Invitation) -> Invitation:
    """Withdraw an open invitation (the team's managers)."""
    access.require(actor, invitation.team, Action.MANAGE)
    _check_role_change(actor, invitation.team, invitation.role, invitation.role)
    if invitation.status in OPEN:
        invitation.status = InvitationStatus.REVOKED
        invitation.responded_at = timezone.now()
        invitation.save(update_fields=["status", "responded_at"])
    return invitation


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
    tokens_forget(user_id=user.pk)
    return token


# Tokens this process checked recently: digest → (token with its user, monotonic time checked).
# A script sends its token with every request; looking it up each time was a query plus a
# thread hop per request (docs/performance.md). Revoking a token or disabling its user here
# forgets it at once; another process notices within TOKEN_CACHE_SECONDS.
_TOKENS: dict[str, tuple[ApiToken, float]] = {}
_TOKENS_MAX = 10_000


def token_cache_seconds() -> float:
    from django.conf import settings

    return float(getattr(settings, "WORKBENCH_TOKEN_CACHE_SECONDS", 5.0))


def tokens_forget(*, user_id: int | None = None) -> None:
    """Forget cached token checks (of one user, or all): after a revocation or deactivation."""
    if user_id is None:
        _TOKENS.clear()
        return
    for digest, (token, _) in list(_TOKENS.items()):
        if token.user_id == user_id:
            _TOKENS.pop(digest, None)


def token_cached(*, raw: str) -> ApiToken | None:
    """The token for this plaintext if this process checked it less than TOKEN_CACHE_SECONDS
    ago and it is still unexpired — no database work, safe on the event loop. None: ask
    `token_authenticate`."""
    if not raw.startswith(TOKEN_PREFIX):
        return None
    import time

    entry = _TOKENS.get(_digest(raw))
    if entry is None or time.monotonic() - entry[1] > token_cache_seconds():
        return None
    token = entry[0]
    return None if token.is_expired else token


def token_authenticate(*, raw: str) -> ApiToken | None:
    """The active token for this plaintext, or None. Records when it was last used (at most once a
    minute, so a busy script doesn't turn every request into a write)."""
    import time

    if not raw.startswith(TOKEN_PREFIX):
        return None
    cached = token_cached(raw=raw)
    if cached is not None:
        return cached
    digest = _digest(raw)
    token = (
        ApiToken.objects.select_related("user")
        .filter(digest=digest, revoked_at__isnull=True)
        .first()
    )
    if token is None or token.is_expired or not token.user.is_active:
        _TOKENS.pop(digest, None)
        return None
    now = timezone.now()
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    if token_cache_seconds() > 0:
        if len(_TOKENS) >= _TOKENS_MAX:
            _TOKENS.clear()
        _TOKENS[digest] = (token, time.monotonic())
    return token
