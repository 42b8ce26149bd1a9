from django import forms

from accounts.access import Action
from accounts.fields import ScopedFormMixin, ScopedModelChoiceField
from accounts.models import Team
from providers.models import ProviderCredential
from rag.chunking import MAX_SIZE, MIN_SIZE
from rag.models import Embedder


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
        choices=Embedder.choices,
        initial=Embedder.BUILTIN,
        help_text="The built-in model runs on this server, offline and free. A provider's model "
        "is metered like any call and counts against budgets.",
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
        help_text="Characters per chunk (the built-in model reads about the first 1,000).",
    )
    chunk_overlap = forms.IntegerField(
        min_value=0,
        max_value=MAX_SIZE // 2,
        initial=150,
        help_text="Characters shared by neighbours.",
    )


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
