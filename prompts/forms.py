"""Forms of the prompt pages. Ids (owner team, collection, model credentials) go through the
access rules: a foreign id is a 404, never a "not a valid choice" that confirms it exists."""

from __future__ import annotations

from django import forms

from accounts import access
from accounts.access import Action
from accounts.fields import ScopedFormMixin, ScopedModelChoiceField
from accounts.models import Team
from prompts.exchange import MAX_BYTES
from prompts.models import VariableType
from prompts.services import MAX_NAME, MAX_NOTE, MAX_PART_CHARS, MAX_TOP_K
from prompts.variables import MAX_DEFINITION_CHARS, Variable
from providers.models import ProviderCredential
from rag.models import Collection


def model_groups(credentials, *, owners: bool = True) -> list[tuple[str, list[tuple[str, str]]]]:
    """Grouped <select> choices "credential id|model id" for these credentials (`owners`: say
    whose each credential is, when they may differ)."""
    groups = []
    for credential in credentials:
        models = [m.model_id for m in credential.models.all() if m.kind == "chat"] or [
            m.model_id for m in credential.models.all()
        ]
        owner = credential.owner_team.name if credential.owner_team_id else "Personal"
        label = f"{credential.name} ({owner})" if owners else credential.name
        groups.append((label, [(f"{credential.pk}|{model}", model) for model in models]))
    return groups


def credential_from_choice(user, value: str, action: Action = Action.READ):
    """ "<credential id>|<model>" → (credential, model) through the rules (404 when foreign)."""
    credential_id, _, model = (value or "").partition("|")
    if not credential_id or not model:
        raise forms.ValidationError("Pick a model from the list.")
    credential = access.get_for(user, ProviderCredential.objects.all(), credential_id, action)
    return credential, model


class ModelChoiceField(forms.ChoiceField):
    """ "<credential id>|<model>" from a grouped <select>. The options are only what the page
    offers; a submitted value is judged by the access rules (`credential_from_choice`: 404 for
    an id outside the tenant), never by "not one of the choices" — the rule every id follows."""

    def valid_value(self, value):
        return True


class ModelChoicesField(forms.MultipleChoiceField):
    """Several of those (a batch's models)."""

    def valid_value(self, value):
        return True


class PromptForm(ScopedFormMixin, forms.Form):
    name = forms.CharField(max_length=MAX_NAME)
    description = forms.CharField(
        max_length=2000, required=False, widget=forms.Textarea(attrs={"rows": 2})
    )
    tags = forms.CharField(
        max_length=900,
        required=False,
        help_text="Comma-separated, e.g. writing, support.",
    )
    owner_team = ScopedModelChoiceField(
        label="Owner",
        queryset=Team.objects.all(),
        action=Action.WRITE,
        required=False,
        empty_label="Personal (only you)",
        help_text="Team prompts are usable by every member; members edit them.",
    )
    system_text = forms.CharField(
        label="System part",
        max_length=MAX_PART_CHARS,
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "true"}),
        help_text="How the model should behave. Use {{variable}} for what changes each time.",
    )
    user_text = forms.CharField(
        label="User part",
        max_length=MAX_PART_CHARS,
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "true"}),
        help_text="The message sent as the user, e.g. “Summarize {{topic}} in {{words}} words.”",
    )
    model_choice = ModelChoiceField(label="Preferred model", required=False)
    temperature = forms.FloatField(min_value=0, max_value=2, required=False)
    top_p = forms.FloatField(label="Top p", min_value=0.000001, max_value=1, required=False)
    max_tokens = forms.IntegerField(min_value=1, max_value=1_000_000, required=False)
    seed = forms.IntegerField(min_value=-(2**63), max_value=2**63 - 1, required=False)
    collection = ScopedModelChoiceField(
        label="Search a collection",
        queryset=Collection.objects.all(),
        action=Action.READ,
        required=False,
        empty_label="No retrieval",
        help_text="Its best-matching chunks go in front of the user part as quoted sources.",
    )
    top_k = forms.IntegerField(
        label="Chunks", min_value=1, max_value=MAX_TOP_K, initial=5, required=False
    )
    change_note = forms.CharField(
        label="What changed",
        max_length=MAX_NOTE,
        required=False,
        widget=forms.TextInput(attrs={"placeholder": "e.g. shorter answers, added a tone"}),
    )
    based_on = forms.IntegerField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args, credentials=(), editing=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["model_choice"].choices = [("", "None"), *model_groups(credentials)]
        if editing:
            del self.fields["owner_team"]

    def clean_model_choice(self):
        value = self.cleaned_data.get("model_choice")
        if not value:
            return None
        return credential_from_choice(self.user, value)


def variables_from_post(data, names: list[str]) -> list[Variable]:
    """The variables table of the editor: `var-<name>-<field>` inputs, one row per placeholder."""
    result = []
    for name in names:
        prefix = f"var-{name}-"
        kind = data.get(prefix + "type") or VariableType.TEXT
        choices = [
            line.strip()
            for line in (data.get(prefix + "choices") or "").splitlines()
            if line.strip()
        ]
        result.append(
            Variable(
                name=name,
                type=kind,
                description=(data.get(prefix + "description") or "")[: MAX_DEFINITION_CHARS + 1],
                required=bool(data.get(prefix + "required")),
                default=(data.get(prefix + "default") or "")[: MAX_DEFINITION_CHARS + 1],
                example=(data.get(prefix + "example") or "")[: MAX_DEFINITION_CHARS + 1],
                choices=tuple(choices) if kind == VariableType.CHOICE else (),
            )
        )
    return result


class LabelForm(forms.Form):
    name = forms.CharField(max_length=40)
    version = forms.IntegerField(min_value=1)


def values_form(variables: list[Variable], *, prefix: str = "v", data=None) -> forms.Form:
    """A form with one field per variable (typed), for Try it, the chat's insert dialog and the
    playground. Validation is the renderer's; this only draws the right inputs."""
    fields = {}
    for variable in variables:
        common = {
            "label": variable.name.replace("_", " "),
            "required": variable.required and not variable.has_default,
            "help_text": variable.description,
            "initial": variable.default,
        }
        placeholder = {"placeholder": f"e.g. {variable.example}"} if variable.example else {}
        if variable.type == VariableType.CHOICE:
            choices = [(c, c) for c in variable.choices]
            if not common["required"]:
                choices = [("", "—"), *choices]
            fields[variable.name] = forms.ChoiceField(choices=choices, **common)
        elif variable.type == VariableType.NUMBER:
            fields[variable.name] = forms.CharField(
                widget=forms.TextInput(attrs={"inputmode": "decimal", **placeholder}), **common
            )
        elif variable.type == VariableType.LONG_TEXT:
            fields[variable.name] = forms.CharField(
                strip=False, widget=forms.Textarea(attrs={"rows": 4, **placeholder}), **common
            )
        else:
            fields[variable.name] = forms.CharField(
                strip=False, widget=forms.TextInput(attrs=placeholder), **common
            )
    form_class = type("ValuesForm", (forms.Form,), fields)
    return form_class(data=data, prefix=prefix)


def values_from(form_data, variables: list[Variable], prefix: str = "v") -> dict:
    """The submitted values by variable name (unknown keys can't come from here)."""
    return {v.name: form_data.get(f"{prefix}-{v.name}", "") for v in variables}


class BatchForm(forms.Form):
    title = forms.CharField(max_length=200, required=False)
    version = forms.ChoiceField()
    targets = ModelChoicesField(label="Models", widget=forms.CheckboxSelectMultiple, required=True)
    csv_file = forms.FileField(label="Or upload a CSV", required=False)
    max_tokens = forms.IntegerField(min_value=1, max_value=1_000_000, required=False)
    temperature = forms.FloatField(min_value=0, max_value=2, required=False)

    def __init__(self, *args, user, versions, credentials, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.fields["version"].choices = versions
        choices = []
        for label, options in model_groups(credentials, owners=False):
            choices += [(value, f"{model} · {label}") for value, model in options]
        self.fields["targets"].choices = choices

    def clean_targets(self):
        return [
            credential_from_choice(self.user, value, Action.USE)
            for value in self.cleaned_data["targets"]
        ]


class ImportForm(ScopedFormMixin, forms.Form):
    file = forms.FileField(
        required=False, help_text=f"A .json or .yaml export, at most {MAX_BYTES // 1048576} MB."
    )
    text = forms.CharField(
        label="Or paste it",
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 8, "spellcheck": "false"}),
    )
    format = forms.ChoiceField(
        choices=[("auto", "From the file name (else JSON)"), ("json", "JSON"), ("yaml", "YAML")],
        initial="auto",
        required=False,
    )
    owner_team = ScopedModelChoiceField(
        label="Import into",
        queryset=Team.objects.all(),
        action=Action.WRITE,
        required=False,
        empty_label="Personal (only you)",
    )
