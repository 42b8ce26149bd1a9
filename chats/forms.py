from django import forms

from accounts import access
from accounts.access import Action
from accounts.fields import ScopedFormMixin, ScopedModelChoiceField
from accounts.models import Team
from chats.models import Folder
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
    """A new chat is created with its first message, never empty (so "New chat" leaves no pile
    of empty conversations behind)."""

    owner_team = ScopedModelChoiceField(
        label="Who can see it",
        queryset=Team.objects.all(),
        action=Action.USE,
        required=False,
        empty_label="Personal — only you",
    )
    model_choice = CredentialModelField(label="Model", required=False)
    content = forms.CharField(
        label="Message",
        max_length=200_000,
        strip=False,  # the message is sent as written
        widget=forms.Textarea(attrs={"rows": 3}),
        error_messages={"required": "Write a message first."},
    )

    def clean_content(self):
        content = self.cleaned_data["content"]
        if not content.strip():
            raise forms.ValidationError("Write a message first.")
        return content


class RenameForm(forms.Form):
    title = forms.CharField(max_length=200, required=False)


class IdListField(forms.Field):
    """Several ids under one name (checkboxes named `conversation_id`), each a positive int."""

    widget = forms.MultipleHiddenInput

    def __init__(self, *, max_ids: int = 200, **kwargs):
        self.max_ids = max_ids
        super().__init__(**kwargs)

    def to_python(self, value):
        values = value if isinstance(value, list | tuple) else ([value] if value else [])
        if len(values) > self.max_ids:
            raise forms.ValidationError(f"At most {self.max_ids} at a time.")
        ids = []
        for item in values:
            parsed = access.parse_id(str(item).strip())  # ASCII digits only: "²" isn't 2
            if parsed is None:
                raise forms.ValidationError("Ids are whole numbers.")
            ids.append(parsed)
        return ids


class BulkForm(forms.Form):
    """Several conversations of the list: the ids still go through the access rules one by one
    (organisation.conversations_bulk)."""

    conversation_id = IdListField(
        required=True, error_messages={"required": "Select some conversations first."}
    )
    action = forms.ChoiceField(
        choices=[("archive", "Archive"), ("unarchive", "Unarchive"), ("delete", "Delete")]
    )


class MoveForm(ScopedFormMixin, forms.Form):
    folder = ScopedModelChoiceField(
        queryset=Folder.objects.all(),
        action=Action.WRITE,
        required=False,
        empty_label="No folder",
    )


class FolderForm(forms.Form):
    name = forms.CharField(max_length=100)


class ShareForm(forms.Form):
    show_costs = forms.BooleanField(label="Show what each reply cost", required=False)
    show_key_names = forms.BooleanField(
        label="Show the names of the credentials that answered", required=False
    )


class CollectionLinkForm(forms.Form):
    """Attach or detach a collection (the id goes through the access rules in chats.grounding)."""

    action = forms.ChoiceField(choices=[("attach", "attach"), ("detach", "detach")])
    collection_id = forms.IntegerField(min_value=1, max_value=2**63 - 1)


class RatingForm(forms.Form):
    """Thumbs up or down on a reply ("" takes the rating back), with an optional note."""

    value = forms.ChoiceField(
        choices=[("", "no rating"), ("up", "good"), ("down", "bad")], required=False
    )
    note = forms.CharField(max_length=1000, required=False)
