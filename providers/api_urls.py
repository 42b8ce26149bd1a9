from django.urls import path

from providers import api

urlpatterns = [
    path("credentials/", api.CredentialListView.as_view(), name="api-credential-list"),
    path("credentials/<int:pk>/", api.CredentialDetailView.as_view(), name="api-credential-detail"),
    path(
        "credentials/<int:pk>/test/", api.CredentialTestView.as_view(), name="api-credential-test"
    ),
    path(
        "credentials/<int:pk>/models/",
        api.CredentialModelsView.as_view(),
        name="api-credential-models",
    ),
    path("completions", api.CompletionView.as_view(), name="api-completions"),
    path("aliases/", api.AliasListView.as_view(), name="api-alias-list"),
    path("aliases/<int:pk>/", api.AliasDetailView.as_view(), name="api-alias-detail"),
]
