from django import forms

from accounts.access import Action
from accounts.fields import ScopedFormMixin, ScopedModelChoiceField
from providers.models import ProviderCredential


class CredentialModelField(ScopedModelChoiceField):
    """One picker for credential and model: the value is `<credential id>|<model id>`. The
    credential goes through the access rules (404 outside the tenant, 403 without `use`)."""

    def __init__(self, **kwargs):
        super().__init__(
            queryset=ProviderCredential.objects.filter(is_active=True), action=Action.USE, **kwargs
        )

    def to_python(self, value):
        if value in self.empty_values:
            return None
        credential_id, _, model = str(value).partition("|")
        model = model.strip()
        if not model:
            raise forms.ValidationError("Pick a model.")
        return super().to_python(credential_id), model[:200]


class SettingsForm(ScopedFormMixin, forms.Form):
    model_choice = CredentialModelField(label="Model", required=False)
    system_prompt = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 3}), max_length=100_000
    )
    temperature = forms.FloatField(required=False, min_value=0, max_value=2)
    top_p = forms.FloatField(label="Top p", required=False, min_value=0.001, max_value=1)
    max_tokens = forms.IntegerField(
        label="Max tokens", required=False, min_value=1, max_value=1_000_000
    )
    seed = forms.IntegerField(required=False)


class NewConversationForm(ScopedFormMixin, forms.Form):
    model_choice = CredentialModelField(label="Model", required=False)


class RenameForm(forms.Form):
    title = forms.CharField(max_length=200, required=False)
