from django import forms

from accounts.access import Action
from accounts.fields import ScopedFormMixin, ScopedModelChoiceField
from accounts.models import Team
from providers import presets
from providers.models import ProviderCredential


class CredentialForm(ScopedFormMixin, forms.Form):
    preset = forms.ChoiceField(label="Provider", choices=presets.CHOICES)
    name = forms.CharField(
        max_length=100,
        required=False,
        help_text="How it shows in model pickers, e.g. “Work OpenAI”. Defaults to the provider's name.",
    )
    api_key = forms.CharField(
        label="API key",
        max_length=500,
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="Stored encrypted, never shown again (only a mask like sk-…9f3b).",
    )
    base_url = forms.CharField(
        label="Base URL",
        max_length=500,
        required=False,
        widget=forms.TextInput(attrs={"placeholder": "Leave empty for the provider's default"}),
    )
    organization = forms.CharField(
        max_length=200, required=False, help_text="OpenAI organization id, if you use one."
    )
    is_local = forms.BooleanField(label="Local (calls cost $0)", required=False)
    owner_team = ScopedModelChoiceField(
        label="Owner",
        queryset=Team.objects.all(),
        action=Action.MANAGE,
        required=False,
        empty_label="Personal (only you)",
        help_text="Team credentials can be used by members and changed by admins.",
    )


class CredentialEditForm(forms.Form):
    name = forms.CharField(max_length=100)
    api_key = forms.CharField(
        label="New API key",
        max_length=500,
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="Leave empty to keep the stored key. Changing the base URL clears the key.",
    )
    base_url = forms.CharField(label="Base URL", max_length=500, required=False)
    organization = forms.CharField(max_length=200, required=False)
    is_local = forms.BooleanField(label="Local (calls cost $0)", required=False)
    is_active = forms.BooleanField(label="Active", required=False)


class EgressEntryForm(forms.Form):
    host_port = forms.CharField(
        label="Host and port",
        max_length=300,
        widget=forms.TextInput(attrs={"placeholder": "gpu-box.lan:8000"}),
        help_text="An internal host:port models or webhooks may reach (loopback, LAN, …).",
    )
    note = forms.CharField(max_length=200, required=False, help_text="Optional: what it is.")


class FavouriteForm(ScopedFormMixin, forms.Form):
    """Star or unstar a model of a credential, as the pickers post it. The credential goes
    through the access rules (404 outside the tenant, 403 without `use`)."""

    credential = ScopedModelChoiceField(
        queryset=ProviderCredential.objects.all(), action=Action.USE
    )
    model = forms.CharField(max_length=200)
    favourite = forms.BooleanField(required=False)


class DefaultModelForm(ScopedFormMixin, forms.Form):
    """Set (or, with `clear`, remove) the default model of your personal chats or of a team's
    chats (`team`, managed by its admins)."""

    credential = ScopedModelChoiceField(
        queryset=ProviderCredential.objects.all(), action=Action.USE, required=False
    )
    model = forms.CharField(max_length=200, required=False)
    team = ScopedModelChoiceField(queryset=Team.objects.all(), action=Action.MANAGE, required=False)
    clear = forms.BooleanField(required=False)

    def clean(self):
        data = super().clean()
        if not data.get("clear") and not (data.get("credential") and data.get("model")):
            raise forms.ValidationError("Pick a model, or clear the default.")
        return data
