from django.urls import path

from prompts import api

urlpatterns = [
    path("prompts/", api.PromptListView.as_view(), name="api-prompt-list"),
    path("prompts/import/", api.ImportView.as_view(), name="api-prompt-import"),
    path("prompts/export/", api.ExportAllView.as_view(), name="api-prompt-export-all"),
    path("prompts/<int:pk>/", api.PromptDetailView.as_view(), name="api-prompt-detail"),
    path("prompts/<int:pk>/versions/", api.VersionListView.as_view(), name="api-prompt-versions"),
    path(
        "prompts/<int:pk>/versions/<int:number>/",
        api.VersionDetailView.as_view(),
        name="api-prompt-version",
    ),
    path("prompts/<int:pk>/labels/", api.LabelListView.as_view(), name="api-prompt-labels"),
    path(
        "prompts/<int:pk>/labels/<str:name>/",
        api.LabelDetailView.as_view(),
        name="api-prompt-label",
    ),
    path("prompts/<int:pk>/diff/", api.DiffView.as_view(), name="api-prompt-diff"),
    path("prompts/<int:pk>/render/", api.RenderView.as_view(), name="api-prompt-render"),
    path("prompts/<int:pk>/export/", api.ExportView.as_view(), name="api-prompt-export"),
    path("prompt-batches/", api.BatchListView.as_view(), name="api-batch-list"),
    path("prompt-batches/estimate/", api.BatchEstimateView.as_view(), name="api-batch-estimate"),
    path("prompt-batches/<int:pk>/", api.BatchDetailView.as_view(), name="api-batch-detail"),
    path("prompt-batches/<int:pk>/cancel/", api.BatchCancelView.as_view(), name="api-batch-cancel"),
    path("prompt-batches/<int:pk>/cells/", api.BatchCellListView.as_view(), name="api-batch-cells"),
    path("prompt-batches/<int:pk>/export/", api.BatchExportView.as_view(), name="api-batch-export"),
]
