from django import forms
from django.contrib import admin

from providers.keys import mask
from providers.models import ModelAlias, ProviderCredential, ProviderModel


class CredentialAdminForm(forms.ModelForm):
    """The key is write-only here too: an empty field keeps the stored key."""

    api_key = forms.CharField(
        label="API key",
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="Leave empty to keep the stored key.",
    )

    class Meta:
        model = ProviderCredential
        fields = [
            "name",
            "preset",
            "owner_user",
            "owner_team",
            "api_key",
            "base_url",
            "organization",
            "is_local",
            "is_active",
            "metadata",
            "created_by",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._stored_key = self.instance.api_key if self.instance.pk else ""
        self.initial["api_key"] = ""

    def clean_api_key(self):
        return self.cleaned_data["api_key"].strip() or self._stored_key


class ProviderModelInline(admin.TabularInline):
    model = ProviderModel
    extra = 0
    fields = ["model_id", "kind", "context_window", "family", "size_bytes", "fetched_at"]
    readonly_fields = fields
    can_delete = False


@admin.register(ProviderCredential)
class ProviderCredentialAdmin(admin.ModelAdmin):
    form = CredentialAdminForm
    list_display = [
        "name",
        "preset",
        "owner_user",
        "owner_team",
        "key_masked",
        "is_local",
        "is_active",
        "last_test_ok",
    ]
    list_filter = ["preset", "is_active", "is_local"]
    search_fields = ["name", "owner_user__username", "owner_team__name"]
    autocomplete_fields = ["owner_user", "owner_team", "created_by"]
    readonly_fields = [
        "key_masked",
        "models_fetched_at",
        "last_test_ok",
        "last_test_message",
        "last_tested_at",
        "created_at",
        "updated_at",
    ]
    inlines = [ProviderModelInline]

    @admin.display(description="Key")
    def key_masked(self, obj):
        return mask(obj.api_key or "") or "—"

    def delete_model(self, request, obj):
        from providers.services import credentials_delete

        credentials_delete(ProviderCredential.objects.filter(pk=obj.pk))

    def delete_queryset(self, request, queryset):
        from providers.services import credentials_delete

        credentials_delete(queryset)


@admin.register(ModelAlias)
class ModelAliasAdmin(admin.ModelAdmin):
    """Gateway aliases (a short model name → credential + model id), personal or a team's."""

    list_display = ["name", "owner_user", "owner_team", "credential", "model_id"]
    search_fields = ["name", "model_id"]
    raw_id_fields = ["owner_user", "owner_team", "credential", "created_by"]
