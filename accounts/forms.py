from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import forms as auth_forms
from django.contrib.auth.forms import UserCreationForm

from accounts import signin
from accounts.models import Role, TokenScope, User
from accounts.services import unique_email


class SignupForm(UserCreationForm):
    email = forms.EmailField(
        required=True, help_text="Used for password resets and to add you to teams."
    )

    class Meta(UserCreationForm.Meta):
        model = User
        fields = ["username", "email"]

    def clean_username(self):
        username = self.cleaned_data["username"]
        if "@" in username:
            # Members are added "by username or email"; an address-shaped username is confusing.
            raise forms.ValidationError("Usernames can't contain “@”.")
        return username

    def clean_email(self):
        return unique_email(self.cleaned_data["email"])


class ProfileForm(forms.ModelForm):
    """Display names only. The email has its own form (it controls password resets, so it takes
    the current password), so a post without an email can never clear it."""

    class Meta:
        model = User
        fields = ["first_name", "last_name"]


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
        help_text="Optional. Leave empty for a token that never expires.",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
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


class SignInForm(_CountsPasswordAttempts, auth_forms.AuthenticationForm):
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
