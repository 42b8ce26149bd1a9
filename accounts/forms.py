from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import forms as auth_forms
from django.contrib.auth import password_validation
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.utils import timezone

from accounts import signin
from accounts.middleware import time_zone_names
from accounts.models import Role, TokenScope, User
from accounts.names import username_mixes_scripts, username_normalize


class SignupForm(forms.Form):
    """What can be checked without looking at other accounts (the rest is answered by email, so
    the page reveals no existing username or address)."""

    username = forms.CharField(
        max_length=150,
        help_text="Letters, digits and . _ - + in one alphabet. Case doesn't matter.",
        validators=[UnicodeUsernameValidator()],
        widget=forms.TextInput(attrs={"autocomplete": "username", "autocapitalize": "none"}),
    )
    email = forms.EmailField(
        max_length=254, help_text="We send a link there to confirm your account."
    )
    password1 = forms.CharField(
        label="Password",
        strip=False,
        max_length=4096,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=password_validation.password_validators_help_text_html(),
    )
    password2 = forms.CharField(
        label="Password again",
        strip=False,
        max_length=4096,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def clean_username(self):
        username = username_normalize(self.cleaned_data["username"])
        if "@" in username:
            # People are invited "by username or email"; an address-shaped username is confusing.
            raise forms.ValidationError("Usernames can't contain “@”.")
        if username_mixes_scripts(username):
            raise forms.ValidationError(
                "Use letters from one alphabet: mixing scripts (like a Cyrillic “а” among Latin "
                "letters) makes names that look like someone else's."
            )
        return username

    def clean(self):
        cleaned = super().clean()
        first, second = cleaned.get("password1"), cleaned.get("password2")
        if first and second and first != second:
            self.add_error("password2", "The two passwords don't match.")
        elif first:
            candidate = User(username=cleaned.get("username", ""), email=cleaned.get("email", ""))
            try:
                password_validation.validate_password(first, candidate)
            except forms.ValidationError as exc:
                self.add_error("password1", exc)
        return cleaned


class ProfileForm(forms.ModelForm):
    """Display names and the time zone. The email has its own form (it controls password
    resets, so it takes the current password), so a post without an email can never clear it."""

    time_zone = forms.ChoiceField(
        label="Time zone",
        required=False,
        help_text="Every time shown and entered — token expiry included — is in this zone.",
    )

    class Meta:
        model = User
        fields = ["first_name", "last_name", "time_zone"]

    def __init__(self, *args, browser_time_zone: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        browser = f" (now {browser_time_zone})" if browser_time_zone else ""
        self.fields["time_zone"].choices = [
            ("", f"Your browser’s time zone{browser}"),
            *((name, name.replace("_", " ")) for name in sorted(time_zone_names())),
        ]


class EmailChangeForm(forms.Form):
    email = forms.EmailField(label="New email address", max_length=254)
    current_password = forms.CharField(
        label="Current password",
        strip=False,
        max_length=4096,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        help_text="We send a notice to your old address.",
    )


class TeamForm(forms.Form):
    name = forms.CharField(
        max_length=100, widget=forms.TextInput(attrs={"placeholder": "e.g. Research"})
    )


class InviteForm(forms.Form):
    user = forms.CharField(
        label="Username or email",
        max_length=254,
        widget=forms.TextInput(
            attrs={"placeholder": "bob or bob@example.com", "autocomplete": "off"}
        ),
    )
    role = forms.ChoiceField(choices=Role.choices, initial=Role.MEMBER)


class MemberRoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class TokenForm(forms.Form):
    name = forms.CharField(
        max_length=100, widget=forms.TextInput(attrs={"placeholder": "e.g. CI script"})
    )
    scope = forms.ChoiceField(choices=TokenScope.choices, initial=TokenScope.READ)
    expires_at = forms.DateTimeField(
        required=False,
        label="Expires",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Django reads the entered time in the active zone (the viewer's): say which it is.
        self.fields["expires_at"].help_text = (
            f"Optional, in your time zone ({timezone.get_current_timezone_name()}). "
            "Leave empty for a token that never expires."
        )


class _CountsPasswordAttempts:
    """Sign-in forms: each attempt counts before the password is checked (accounts.signin)."""

    def clean(self):
        username = self.cleaned_data.get("username")
        if not username or not self.cleaned_data.get("password"):
            return super().clean()
        attempt = signin.attempt(request=self.request, username=username)
        cleaned = super().clean()
        attempt.succeeded()
        return cleaned


class _TellsWaitingAccounts:
    """One honest answer: the right password for an account that waits for approval (sign-up
    mode `approve`) says so — only someone who knows the password learns the account exists,
    the same as logging in would tell them."""

    def clean(self):
        try:
            return super().clean()
        except forms.ValidationError as error:
            username = self.cleaned_data.get("username") or ""
            password = self.cleaned_data.get("password") or ""
            try:  # the account sign-in would find: any case or width ("DANA")
                waiting = User.objects.get_by_natural_key(username)
            except User.DoesNotExist:
                raise error from None
            if waiting.awaiting_approval and waiting.check_password(password):
                raise forms.ValidationError(
                    "Your account is waiting for an administrator’s approval.", code="waiting"
                ) from None
            raise


class SignInForm(_CountsPasswordAttempts, _TellsWaitingAccounts, auth_forms.AuthenticationForm):
    pass


class AdminSignInForm(_CountsPasswordAttempts, AdminAuthenticationForm):
    pass


class PasswordChangeForm(auth_forms.PasswordChangeForm):
    """The old password is a password attempt like a sign-in: a stolen session must not be a
    way to guess it."""

    def __init__(self, *args, request, **kwargs):
        self.request = request
        super().__init__(*args, **kwargs)

    def clean_old_password(self):
        attempt = signin.attempt(request=self.request, username=self.user.get_username())
        old_password = super().clean_old_password()
        attempt.succeeded()
        return old_password
