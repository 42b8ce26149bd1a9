from django import forms

from accounts.access import Action
from accounts.fields import ScopedFormMixin, ScopedModelChoiceField
from accounts.models import Team
from providers.models import ProviderCredential
from rag.chunking import MAX_SIZE, MIN_SIZE
from rag.embedders import BUILTIN_MODELS
from rag.models import Collection, Embedder

PROVIDER_CHOICE = "provider"
# One choice per built-in model (its id) and one for "a provider's model", each with its line of
# speed against quality; `clean` turns the choice into the service's embedder + model id.
EMBEDDING_CHOICES = [(m.id, m.label) for m in BUILTIN_MODELS.values()] + [
    (PROVIDER_CHOICE, "A provider's embedding model")
]
EMBEDDING_DESCRIPTIONS = {m.id: m.description for m in BUILTIN_MODELS.values()} | {
    PROVIDER_CHOICE: "Metered like any call and counted against budgets; pick the credential "
    "and the model below."
}


class CollectionForm(ScopedFormMixin, forms.Form):
    name = forms.CharField(max_length=120)
    description = forms.CharField(
        max_length=2000, required=False, widget=forms.Textarea(attrs={"rows": 2})
    )
    owner_team = ScopedModelChoiceField(
        label="Owner",
        queryset=Team.objects.all(),
        action=Action.WRITE,
        required=False,
        empty_label="Personal (only you)",
        help_text="Team collections are searchable by every member; members add documents.",
    )
    embedder = forms.ChoiceField(
        label="Embedding model",
        choices=EMBEDDING_CHOICES,
        initial=EMBEDDING_CHOICES[0][0],
        widget=forms.RadioSelect,
        help_text="Built-in models run on this server, offline and free.",
    )
    embedding_credential = ScopedModelChoiceField(
        label="Provider credential",
        queryset=ProviderCredential.objects.all(),
        action=Action.USE,
        required=False,
        empty_label="—",
    )
    embedding_model = forms.CharField(
        label="Provider model",
        max_length=200,
        required=False,
        widget=forms.TextInput(attrs={"placeholder": "text-embedding-3-small"}),
    )
    chunk_size = forms.IntegerField(
        min_value=MIN_SIZE,
        max_value=MAX_SIZE,
        initial=1000,
        help_text="Characters per chunk (all-MiniLM-L6-v2 reads about the first 1,000; "
        "WordLlama reads all of it).",
    )
    chunk_overlap = forms.IntegerField(
        min_value=0,
        max_value=MAX_SIZE // 2,
        initial=150,
        help_text="Characters shared by neighbours.",
    )

    def clean(self):
        data = super().clean()
        choice = data.get("embedder")
        if choice in BUILTIN_MODELS:
            data["embedder"], data["embedding_model"] = Embedder.BUILTIN, choice
            data["embedding_credential"] = None
        elif choice == PROVIDER_CHOICE:
            data["embedder"] = Embedder.PROVIDER
        return data

    def embedder_options(self) -> list[tuple]:
        """(radio, description) pairs for the template."""
        return [
            (radio, EMBEDDING_DESCRIPTIONS.get(str(radio.data["value"]), ""))
            for radio in self["embedder"]
        ]

    @staticmethod
    def embedder_initial(collection: Collection) -> dict:
        """The form's embedding fields for an existing collection."""
        if collection.embedder == Embedder.BUILTIN:
            return {"embedder": collection.builtin_model.id, "embedding_model": ""}
        return {
            "embedder": PROVIDER_CHOICE,
            "embedding_credential": collection.embedding_credential_id,
            "embedding_model": collection.embedding_model,
        }


class CollectionEditForm(CollectionForm):
    """Owner can't change after creation."""

    owner_team = None


class PasteForm(forms.Form):
    title = forms.CharField(max_length=300, required=False)
    text = forms.CharField(max_length=1_000_000, widget=forms.Textarea(attrs={"rows": 6}))


class UrlForm(forms.Form):
    url = forms.CharField(
        label="Web page address",
        max_length=2000,
        widget=forms.URLInput(attrs={"placeholder": "https://…"}),
    )


class SearchForm(forms.Form):
    q = forms.CharField(label="Search", max_length=2000, required=False)
    mode = forms.ChoiceField(
        choices=[("hybrid", "Hybrid"), ("vector", "Meaning"), ("text", "Words")],
        required=False,
        initial="hybrid",
    )
    top_k = forms.IntegerField(min_value=1, max_value=50, required=False, initial=8)
    threshold = forms.FloatField(min_value=-1, max_value=1, required=False, initial=0.25)
