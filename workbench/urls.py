from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.utils.csp import CSP
from django.views.decorators.csp import csp_override
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from providers.gateway import urls as gateway_urls
from workbench import views

api_patterns = [
    path("", include("accounts.api_urls")),
    path("", include("providers.api_urls")),
    path("", include("billing.api_urls")),
    path("", include("chats.api_urls")),
    path("", include("rag.api_urls")),
    path("", include("playground.api_urls")),
    path("", include("prompts.api_urls")),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # Swagger UI sets style attributes at run time; only this page allows inline *styles*
    # (never inline script).
    path(
        "docs/",
        csp_override({**settings.SECURE_CSP, "style-src": [CSP.SELF, CSP.UNSAFE_INLINE]})(
            SpectacularSwaggerSplitView.as_view(url_name="api-schema")
        ),
        name="api-docs",
    ),
]

urlpatterns = [
    path("", views.home, name="home"),
    path("", include("accounts.urls")),
    path("settings/providers/", include("providers.urls")),
    path("chat/", include("chats.urls")),
    path("playground/", include("playground.urls")),
    path("prompts/", include("prompts.urls")),
    path("collections/", include("rag.urls")),
    path("evaluations/", include("evals.urls")),
    path("", include("billing.urls")),
    path("api/", include(api_patterns)),
    # The gateway: OpenAI's and Anthropic's wire formats over our gate (providers/gateway).
    path("v1/", include((gateway_urls.openai_patterns, "gateway"))),
    path("anthropic/v1/", include((gateway_urls.anthropic_patterns, "gateway-anthropic"))),
    path("admin/", admin.site.urls),
]

handler400 = "workbench.views.bad_request"
handler403 = "workbench.views.permission_denied"
handler404 = "workbench.views.page_not_found"
handler500 = "workbench.views.server_error"

admin.site.site_header = "Workbench administration"
admin.site.site_title = "Workbench admin"
