"""HTML views for accounts: sign-up, profile, teams and members, the team switcher, API tokens."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.formats import date_format
from django.utils.timezone import localtime
from django.views.decorators.http import require_POST

from accounts import access, selectors, services, signin
from accounts.access import Action
from accounts.forms import (
    EmailChangeForm,
    InviteForm,
    MemberRoleForm,
    PasswordChangeForm,
    ProfileForm,
    SignInForm,
    SignupForm,
    TeamForm,
    TokenForm,
)
from accounts.middleware import SESSION_KEY
from accounts.models import Role
from workbench import realtime


def _form_errors(form, exc: ValidationError) -> None:
    """Put a service's ValidationError onto the form so the page shows it next to the field."""
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)


def _signup_mode() -> str:
    """The instance's sign-up mode; `closed` means the sign-up pages don't exist."""
    mode = services.signup_mode()
    if mode == "closed":
        raise Http404("Sign-up is closed on this instance.")
    return mode


def signup(request):
    """Every valid form gets the same answer — "check your email" — whether the username or the
    address is taken or not; the email says which (accounts.services.signup_request)."""
    mode = _signup_mode()
    if request.user.is_authenticated:
        return redirect("home")
    form = SignupForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            signin.signup_requested(request=request, email=form.cleaned_data["email"])
        except signin.TooManyAttempts as exc:
            form.add_error(None, exc)
            status = 429
        else:
            services.signup_request(
                username=form.cleaned_data["username"],
                email=form.cleaned_data["email"],
                password=form.cleaned_data["password1"],
            )
            request.session["signup_email"] = form.cleaned_data["email"]
            return redirect("accounts:signup_sent")
    return render(
        request, "accounts/signup.html", {"form": form, "signup_mode": mode}, status=status
    )


def signup_sent(request):
    mode = _signup_mode()
    email = request.session.pop("signup_email", None)
    return render(request, "accounts/signup_sent.html", {"email": email, "signup_mode": mode})


def signup_confirm(request, token):
    """GET shows what will be created (mail scanners that open links create nothing); POST
    creates the account: signed in at once in `open` mode, waiting for a superuser in
    `approve` mode."""
    mode = _signup_mode()
    pending = services.signup_request_for(token=token)
    error = None
    if request.method == "POST":
        try:
            user = services.signup_confirm(token=token)
        except ValidationError as exc:
            error = " ".join(exc.messages)
        else:
            if user.awaiting_approval:
                return render(request, "accounts/signup_waiting.html", {"waiting": user})
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(request, f"Welcome, {user.username}! Your account is ready.")
            return redirect("home")
    return render(
        request,
        "accounts/signup_confirm.html",
        {"pending": pending, "error": error, "signup_mode": mode},
        status=400 if error else 200,
    )


def _profile_page(request, *, form=None, email_form=None, status=200):
    context = {
        "form": form
        or ProfileForm(
            instance=request.user,
            browser_time_zone=getattr(request, "browser_time_zone", ""),
        ),
        "email_form": email_form or EmailChangeForm(),
        "tab": "profile",
    }
    return render(request, "accounts/profile.html", context, status=status)


@login_required
def profile(request):
    if request.method != "POST":
        return _profile_page(request)
    form = ProfileForm(
        request.POST,
        instance=request.user,
        browser_time_zone=getattr(request, "browser_time_zone", ""),
    )
    if form.is_valid():
        services.user_update_names(
            user=request.user,
            first_name=form.cleaned_data["first_name"],
            last_name=form.cleaned_data["last_name"],
        )
        services.user_set_time_zone(user=request.user, time_zone=form.cleaned_data["time_zone"])
        messages.success(request, "Profile saved.")
        return redirect("accounts:profile")
    return _profile_page(request, form=form, status=400)


@login_required
@require_POST
def email_change(request):
    form = EmailChangeForm(request.POST)
    if form.is_valid():
        old = request.user.email
        try:
            attempt = signin.attempt(request=request, username=request.user.get_username())
            services.user_change_email(
                user=request.user,
                email=form.cleaned_data["email"],
                password=form.cleaned_data["current_password"],
            )
        except signin.TooManyAttempts as exc:
            form.add_error(None, exc)
            return _profile_page(request, email_form=form, status=429)
        except ValidationError as exc:
            if "current_password" not in getattr(exc, "error_dict", {}):
                attempt.succeeded()
            _form_errors(form, exc)
        else:
            attempt.succeeded()
            if request.user.email != old:
                messages.success(
                    request,
                    f"Email changed to {request.user.email}. We told {old} too."
                    if old
                    else f"Email set to {request.user.email}.",
                )
            return redirect("accounts:profile")
    return _profile_page(request, email_form=form, status=400)


@login_required
@require_POST
def checklist_hide(request):
    """Hide the home page's first-run checklist for good."""
    request.user.checklist_hidden = True
    request.user.save(update_fields=["checklist_hidden"])
    return redirect("home")


# --- Teams ---------------------------------------------------------------------------------------


@login_required
def team_list(request):
    form = TeamForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        team = services.team_create(user=request.user, name=form.cleaned_data["name"])
        request.session[SESSION_KEY] = team.pk
        messages.success(request, f"Team “{team.name}” created — it is now your current team.")
        return redirect("accounts:team_detail", pk=team.pk)
    teams = selectors.teams_for_user(user=request.user)
    return render(
        request, "accounts/team_list.html", {"form": form, "teams": teams, "tab": "teams"}
    )


def _team_page(request, team, *, invite_form=None, rename_form=None, status=200):
    memberships = selectors.memberships_for_team(user=request.user, team=team)
    can_manage = access.allows(request.user, team, Action.MANAGE)
    my_role = access.role_in(request.user, team.pk)
    context = {
        "team": team,
        "memberships": memberships,
        "invitations": (
            selectors.invitations_for_team(user=request.user, team=team) if can_manage else ()
        ),
        "my_role": my_role,
        "can_manage": can_manage,
        "is_owner": my_role == Role.OWNER,
        # The last owner can't leave: say so up front instead of confirming, then refusing.
        "sole_owner": my_role == Role.OWNER
        and not team.memberships.filter(role=Role.OWNER).exclude(user_id=request.user.pk).exists(),
        "roles": Role.choices,
        "invite_form": invite_form or InviteForm(),
        "rename_form": rename_form or TeamForm(initial={"name": team.name}),
        "tab": "teams",
    }
    return render(request, "accounts/team_detail.html", context, status=status)


@login_required
def team_detail(request, pk):
    return _team_page(request, selectors.team_for_user(user=request.user, pk=pk))


@login_required
@require_POST
def team_rename(request, pk):
    team = selectors.team_for_user(user=request.user, pk=pk, action=Action.MANAGE)
    form = TeamForm(request.POST)
    if form.is_valid():
        services.team_rename(actor=request.user, team=team, name=form.cleaned_data["name"])
        messages.success(request, "Team renamed.")
        return redirect("accounts:team_detail", pk=team.pk)
    return _team_page(request, team, rename_form=form, status=400)


@login_required
def team_delete(request, pk):
    team = selectors.team_for_user(user=request.user, pk=pk, action=Action.MANAGE)
    if request.method == "POST":
        name = team.name
        services.team_delete(actor=request.user, team=team)
        messages.success(request, f"Team “{name}” deleted.")
        return redirect("accounts:team_list")
    return render(request, "accounts/team_delete.html", {"team": team, "tab": "teams"})


@login_required
@require_POST
def invitation_create(request, pk):
    team = selectors.team_for_user(user=request.user, pk=pk, action=Action.MANAGE)
    form = InviteForm(request.POST)
    if form.is_valid():
        try:
            invitation = services.invitation_create(
                actor=request.user,
                team=team,
                identifier=form.cleaned_data["user"],
                role=form.cleaned_data["role"],
            )
        except ValidationError as exc:
            _form_errors(form, exc)
        else:
            messages.success(request, _invitation_sent(invitation))
            return redirect("accounts:team_detail", pk=team.pk)
    return _team_page(request, team, invite_form=form, status=400)


def _invitation_sent(invitation) -> str:
    """The same words whether or not the invitation reached anyone."""
    return (
        f"Invitation to “{invitation.identifier}” sent as {invitation.get_role_display().lower()}. "
        "If there is an account by that name, its owner sees it when they sign in; "
        f"it expires on {date_format(localtime(invitation.expires_at), 'j F')}."
    )


@login_required
@require_POST
def invitation_revoke(request, pk, invitation_pk):
    team = selectors.team_for_user(user=request.user, pk=pk)
    invitation = selectors.invitation_for_team(user=request.user, team=team, pk=invitation_pk)
    services.invitation_revoke(actor=request.user, invitation=invitation)
    messages.success(request, f"Invitation to “{invitation.identifier}” withdrawn.")
    return redirect("accounts:team_detail", pk=team.pk)


@login_required
def invitation_list(request):
    invitations = selectors.invitations_for_invitee(user=request.user)
    return render(
        request,
        "accounts/invitation_list.html",
        {"invitations": invitations, "tab": "invitations"},
    )


@login_required
@require_POST
def invitation_accept(request, pk):
    invitation = selectors.invitation_for_invitee(user=request.user, pk=pk)
    try:
        membership = services.invitation_accept(user=request.user, invitation=invitation)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("accounts:invitation_list")
    messages.success(
        request,
        f"You joined “{invitation.team.name}” as {membership.get_role_display().lower()}.",
    )
    return redirect("accounts:team_detail", pk=invitation.team_id)


@login_required
@require_POST
def invitation_decline(request, pk):
    invitation = selectors.invitation_for_invitee(user=request.user, pk=pk)
    try:
        services.invitation_decline(user=request.user, invitation=invitation)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"You declined the invitation to “{invitation.team.name}”.")
    return redirect("accounts:invitation_list")


@login_required
@require_POST
def member_role(request, pk, membership_pk):
    team = selectors.team_for_user(user=request.user, pk=pk, action=Action.MANAGE)
    membership = selectors.membership_for_user(user=request.user, team=team, pk=membership_pk)
    form = MemberRoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Pick a role.")
        return redirect("accounts:team_detail", pk=team.pk)
    try:
        services.membership_change_role(
            actor=request.user, membership=membership, role=form.cleaned_data["role"]
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(
            request, f"{membership.user.username} is now {membership.get_role_display().lower()}."
        )
    return redirect("accounts:team_detail", pk=team.pk)


@login_required
@require_POST
def member_remove(request, pk, membership_pk):
    team = selectors.team_for_user(user=request.user, pk=pk)
    membership = selectors.membership_for_user(user=request.user, team=team, pk=membership_pk)
    leaving = membership.user_id == request.user.pk
    try:
        services.membership_remove(actor=request.user, membership=membership)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("accounts:team_detail", pk=team.pk)
    if leaving:
        if request.session.get(SESSION_KEY) == team.pk:
            request.session.pop(SESSION_KEY)
        messages.success(request, f"You left “{team.name}”.")
        return redirect("accounts:team_list")
    messages.success(request, f"Removed {membership.user.username}.")
    return redirect("accounts:team_detail", pk=team.pk)


@login_required
@require_POST
def team_switch(request, pk):
    team = selectors.team_for_user(user=request.user, pk=pk)
    request.session[SESSION_KEY] = team.pk
    messages.info(request, f"Now working in “{team.name}”.")
    return redirect(_safe_next(request))


@login_required
@require_POST
def personal_switch(request):
    request.session.pop(SESSION_KEY, None)
    messages.info(request, "Now working in your personal space.")
    return redirect(_safe_next(request))


def _safe_next(request) -> str:
    from django.utils.http import url_has_allowed_host_and_scheme

    target = request.POST.get("next") or reverse("home")
    if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return reverse("home")


# --- API tokens ----------------------------------------------------------------------------------


NEW_TOKEN_SESSION_KEY = "new_api_token"


@login_required
def token_list(request):
    """Create-then-redirect, so reloading the page can't create a second token. The plaintext
    rides in the session for exactly one page view, then it is gone for good."""
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            token, raw = services.token_create(user=request.user, **form.cleaned_data)
        except ValidationError as exc:
            _form_errors(form, exc)
        else:
            request.session[NEW_TOKEN_SESSION_KEY] = {"id": token.pk, "raw": raw}
            return redirect("accounts:token_list")
    created = None
    if request.method == "GET" and (new := request.session.pop(NEW_TOKEN_SESSION_KEY, None)):
        token = selectors.tokens_for_user(user=request.user).filter(pk=new["id"]).first()
        created = {"token": token, "raw": new["raw"]} if token else None
    tokens = selectors.tokens_for_user(user=request.user)
    return render(
        request,
        "accounts/token_list.html",
        {"form": form, "tokens": tokens, "created": created, "tab": "tokens"},
        status=400 if request.method == "POST" else 200,
    )


@login_required
@require_POST
def token_revoke(request, pk):
    token = selectors.token_for_user(user=request.user, pk=pk)
    services.token_revoke(user=request.user, token=token)
    messages.success(request, f"Token “{token.name}” revoked. Scripts using it now get 401.")
    return redirect("accounts:token_list")


def _throttled(form) -> bool:
    return form.has_error(NON_FIELD_ERRORS, "throttled")


class LoginView(auth_views.LoginView):
    """Log in; failed attempts are throttled per account and address (accounts.signin)."""

    template_name = "accounts/login.html"
    redirect_authenticated_user = True
    authentication_form = SignInForm

    def form_invalid(self, form):
        response = super().form_invalid(form)
        if _throttled(form):
            response.status_code = 429
        return response


class PasswordChangeView(auth_views.PasswordChangeView):
    template_name = "accounts/password_change.html"
    form_class = PasswordChangeForm
    extra_context = {"tab": "profile"}

    def get_success_url(self):
        return reverse("accounts:password_change_done")

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "request": self.request}

    def form_invalid(self, form):
        response = super().form_invalid(form)
        if form.has_error("old_password", "throttled"):
            response.status_code = 429
        return response


class PasswordResetView(auth_views.PasswordResetView):
    """Ask for a reset link: throttled per address and per typed email (accounts.signin); the
    link is built from WORKBENCH_SITE_URL, never from the request's Host."""

    template_name = "accounts/password_reset.html"
    email_template_name = "accounts/password_reset_email.txt"
    subject_template_name = "accounts/password_reset_subject.txt"

    def get_success_url(self):
        return reverse("accounts:password_reset_done")

    def form_valid(self, form):
        try:
            signin.reset_requested(request=self.request, email=form.cleaned_data["email"])
        except signin.TooManyAttempts as exc:
            form.add_error(None, exc)
            response = self.form_invalid(form)
            response.status_code = 429
            return response
        self.extra_email_context = {"site_url": settings.WORKBENCH_SITE_URL}
        return super().form_valid(form)


class LogoutView(auth_views.LogoutView):
    """Log out, and close this session's open websockets (a chat tab must not keep streaming to a
    signed-out browser)."""

    def post(self, request, *args, **kwargs):
        session_key = request.session.session_key
        response = super().post(request, *args, **kwargs)
        if session_key:
            realtime.session_ended(session_key)
        return response
