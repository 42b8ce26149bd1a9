"""DRF's OPTIONS answer. Its own module: DRF imports the metadata class while `rest_framework.views`
is being imported, so it can't live in a module that imports the views (workbench.api)."""

from rest_framework.metadata import SimpleMetadata


class Metadata(SimpleMetadata):
    """OPTIONS answers the view's name, description and media types, never the "actions":
    DRF builds those by calling `get_object()` on views that have PUT, which raised (a 500) on
    every view whose object isn't a queryset row, and would run an access check for a request
    that asked for nothing. The OpenAPI schema (`/api/schema/`) documents the actions."""

    def determine_actions(self, request, view):
        return {}
