"""REST for the prompt library: prompts, versions, labels, diff, render, import/export, and
batch runs (create, estimate, progress, cells, cancel, export)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import generics, serializers, status
from rest_framework.exceptions import APIException
from rest_framework.response import Response

from accounts import selectors as account_selectors
from accounts.access import Action
from billing.services import usage_settle_stale
from prompts import batches, diffs, exchange, exports, selectors, services
from prompts.rendering import RenderError, version_render
from prompts.serializers import (
    BatchCreateSerializer,
    BatchSerializer,
    CellSerializer,
    EstimateSerializer,
    FieldDiffSerializer,
    ImportSerializer,
    LabelSerializer,
    LabelSetSerializer,
    PromptCreateSerializer,
    PromptSerializer,
    PromptUpdateSerializer,
    RenderedSerializer,
    RenderSerializer,
    VersionCreateSerializer,
    VersionSerializer,
)
from prompts.services import Content
from workbench.api import error_body

CONTENT_FIELDS = (
    "system_text",
    "user_text",
    "variables",
    "credential",
    "model",
    "params",
    "collection",
    "top_k",
)


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


def _content(data: dict, base: Content | None = None) -> Content:
    content = base or Content()
    for name in CONTENT_FIELDS:
        if name in data:
            value = data[name]
            if name == "params":
                value = {k: v for k, v in (value or {}).items() if v is not None}
            setattr(content, name, value)
    return content


def _render_error(exc: RenderError) -> Response:
    return Response(
        error_body(exc.code, str(exc), fields={"variables": exc.problems}),
        status=status.HTTP_400_BAD_REQUEST,
    )


# --- Prompts -----------------------------------------------------------------------------------------


class PromptListView(generics.ListAPIView):
    serializer_class = PromptSerializer

    def get_queryset(self):
        params = self.request.query_params
        q, tag = params.get("q", ""), params.get("tag", "")
        if params.get("team"):
            team = account_selectors.team_for_user(user=self.request.user, pk=params["team"])
            return selectors.templates_for_user(user=self.request.user, team=team, q=q, tag=tag)
        return selectors.templates_readable(user=self.request.user, q=q, tag=tag)

    @extend_schema(
        parameters=[
            OpenApiParameter("team", OpenApiTypes.INT, description="Your prompts and this team's."),
            OpenApiParameter("q", OpenApiTypes.STR, description="Search names and tags."),
            OpenApiParameter("tag", OpenApiTypes.STR, description="Only prompts with this tag."),
        ],
        description="Without `team`: every prompt you may read.",
    )
    def get(self, request):
        return self.list(request)

    @extend_schema(request=PromptCreateSerializer, responses={201: PromptSerializer})
    def post(self, request):
        data = PromptCreateSerializer(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        values = data.validated_data
        template = services.template_create(
            actor=request.user,
            name=values["name"],
            description=values.get("description", ""),
            tags=values.get("tags", []),
            owner_team=values.get("owner_team"),
            change_note=values.get("change_note", ""),
            content=_content(values),
        )
        return Response(PromptSerializer(template).data, status=status.HTTP_201_CREATED)


class PromptDetailView(generics.GenericAPIView):
    serializer_class = PromptSerializer

    def get(self, request, pk):
        template = selectors.template_for_user(user=request.user, pk=pk)
        return Response(PromptSerializer(template).data)

    @extend_schema(request=PromptUpdateSerializer, responses={200: PromptSerializer})
    def patch(self, request, pk):
        template = selectors.template_for_user(user=request.user, pk=pk, action=Action.WRITE)
        data = PromptUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        template = services.template_update(
            actor=request.user, template=template, **data.validated_data
        )
        return Response(PromptSerializer(template).data)

    def delete(self, request, pk):
        template = selectors.template_for_user(user=request.user, pk=pk)
        services.template_delete(actor=request.user, template=template)
        return Response(status=status.HTTP_204_NO_CONTENT)


class VersionListView(generics.ListAPIView):
    serializer_class = VersionSerializer

    def get_queryset(self):
        template = selectors.template_for_user(user=self.request.user, pk=self.kwargs["pk"])
        self.labels = {
            label.name: label.version.number for label in selectors.labels_of(template=template)
        }
        return selectors.versions_of(template=template)

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "labels": getattr(self, "labels", None)}

    def get(self, request, pk):
        """Every version, newest first."""
        return self.list(request)

    @extend_schema(
        request=VersionCreateSerializer,
        responses={201: VersionSerializer},
        description="Save a new version. Fields you omit keep the newest version's value. "
        "409 `conflict` when `based_on` is older than the newest version; 400 "
        "`nothing_changed` when the content equals the newest version.",
    )
    def post(self, request, pk):
        template = selectors.template_for_user(user=request.user, pk=pk, action=Action.WRITE)
        data = VersionCreateSerializer(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        values = data.validated_data
        newest = selectors.version_of(template=template, number=template.latest_number)
        try:
            version = services.version_create(
                actor=request.user,
                template=template,
                content=_content(values, Content.of(newest)),
                change_note=values.get("change_note", ""),
                based_on=values.get("based_on"),
            )
        except services.VersionConflict as exc:
            raise Conflict(exc.messages[0]) from None
        except services.NothingChanged as exc:
            return Response(
                error_body("nothing_changed", exc.messages[0]), status=status.HTTP_400_BAD_REQUEST
            )
        return Response(VersionSerializer(version).data, status=status.HTTP_201_CREATED)


class VersionDetailView(generics.GenericAPIView):
    serializer_class = VersionSerializer

    def get(self, request, pk, number):
        template = selectors.template_for_user(user=request.user, pk=pk)
        version = selectors.version_of(template=template, number=number)
        return Response(VersionSerializer(version).data)


class LabelListView(generics.GenericAPIView):
    serializer_class = LabelSerializer
    pagination_class = None

    def get(self, request, pk):
        template = selectors.template_for_user(user=request.user, pk=pk)
        return Response(LabelSerializer(selectors.labels_of(template=template), many=True).data)

    @extend_schema(
        request=LabelSetSerializer,
        responses={200: LabelSerializer},
        description="Create a label or move it to another version (a rollback is moving "
        "`production` back).",
    )
    def post(self, request, pk):
        template = selectors.template_for_user(user=request.user, pk=pk, action=Action.WRITE)
        data = LabelSetSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        version = selectors.version_of(template=template, number=data.validated_data["version"])
        label = services.label_set(
            actor=request.user, template=template, name=data.validated_data["name"], version=version
        )
        return Response(LabelSerializer(label).data)


class LabelDetailView(generics.GenericAPIView):
    serializer_class = LabelSerializer

    def delete(self, request, pk, name):
        template = selectors.template_for_user(user=request.user, pk=pk, action=Action.WRITE)
        services.label_delete(actor=request.user, template=template, name=name)
        return Response(status=status.HTTP_204_NO_CONTENT)


class DiffView(generics.GenericAPIView):
    serializer_class = FieldDiffSerializer
    pagination_class = None

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "from", OpenApiTypes.STR, required=True, description="Number or label."
            ),
            OpenApiParameter("to", OpenApiTypes.STR, required=True, description="Number or label."),
        ],
        responses={200: FieldDiffSerializer(many=True)},
    )
    def get(self, request, pk):
        """Field by field, the changed lines between two versions."""
        template = selectors.template_for_user(user=request.user, pk=pk)
        old = selectors.version_resolve(template=template, ref=request.query_params.get("from"))
        new = selectors.version_resolve(template=template, ref=request.query_params.get("to"))
        return Response(FieldDiffSerializer(diffs.version_diff(old=old, new=new), many=True).data)


class RenderView(generics.GenericAPIView):
    serializer_class = RenderSerializer

    @extend_schema(
        request=RenderSerializer,
        responses={200: RenderedSerializer},
        description="Render a version with variable values into the messages a model receives. "
        "400 `invalid_variables` names every missing, unknown or mistyped variable "
        "(`error.fields.variables`: name → problem).",
    )
    def post(self, request, pk):
        template = selectors.template_for_user(user=request.user, pk=pk)
        data = RenderSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        version = selectors.version_resolve(template=template, ref=data.validated_data["version"])
        try:
            rendered = version_render(
                user=request.user,
                version=version,
                values=data.validated_data["variables"],
                ground=data.validated_data["ground"],
            )
        except RenderError as exc:
            return _render_error(exc)
        return Response(RenderedSerializer(rendered).data)


def _export_response(document: dict, fmt: str, filename: str) -> HttpResponse:
    fmt = "yaml" if fmt == "yaml" else "json"
    response = HttpResponse(
        exchange.dumps(document, fmt),
        content_type="application/yaml; charset=utf-8" if fmt == "yaml" else "application/json",
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}.{fmt}"'
    return response


FORMAT_PARAM = OpenApiParameter("format", OpenApiTypes.STR, enum=["json", "yaml"])


class FileView(generics.GenericAPIView):
    """Answers a file whose type `?format=` names — not DRF's `format` override of the
    response's renderer (which would 404 on `yaml` or `csv`)."""

    serializer_class = None

    def perform_content_negotiation(self, request, force=False):
        return super().perform_content_negotiation(request, force=True)


class ExportView(FileView):
    @extend_schema(
        operation_id="prompts_export_one",
        parameters=[FORMAT_PARAM],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request, pk):
        """One prompt with all its versions and labels, as a JSON or YAML file."""
        template = selectors.template_for_user(user=request.user, pk=pk)
        document = exchange.prompts_export(user=request.user, templates=[template])
        return _export_response(
            document, request.query_params.get("format", "json"), f"prompt-{template.pk}"
        )


class ExportAllView(FileView):
    @extend_schema(
        operation_id="prompts_export_all",
        parameters=[
            FORMAT_PARAM,
            OpenApiParameter("team", OpenApiTypes.INT, description="Yours and this team's."),
        ],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request):
        """Every prompt you may read (or yours and a team's), up to 500, as one file."""
        params = request.query_params
        if params.get("team"):
            team = account_selectors.team_for_user(user=request.user, pk=params["team"])
            templates = selectors.templates_for_user(user=request.user, team=team)
        else:
            templates = selectors.templates_readable(user=request.user)
        document = exchange.prompts_export(
            user=request.user, templates=templates[: exchange.MAX_EXPORT]
        )
        return _export_response(document, params.get("format", "json"), "prompts")


class ImportView(generics.GenericAPIView):
    serializer_class = ImportSerializer

    @extend_schema(
        request=ImportSerializer,
        responses={
            201: inline_serializer(
                "ImportReport",
                {
                    "imported": inline_serializer(
                        "ImportedPrompt",
                        {
                            "name": serializers.CharField(),
                            "id": serializers.IntegerField(),
                            "versions": serializers.IntegerField(),
                            "notes": serializers.ListField(child=serializers.CharField()),
                        },
                        many=True,
                    )
                },
            )
        },
        description="Import a document made by export as new prompts. All or nothing: any "
        "problem is a 400 listing each one, and nothing is saved.",
    )
    def post(self, request):
        data = ImportSerializer(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        values = data.validated_data
        imported = exchange.prompts_import(
            actor=request.user,
            text=values["data"],
            fmt=values["format"],
            owner_team=values.get("owner_team"),
        )
        return Response(
            {
                "imported": [
                    {"name": i.name, "id": i.template_id, "versions": i.versions, "notes": i.notes}
                    for i in imported
                ]
            },
            status=status.HTTP_201_CREATED,
        )


# --- Batches ---------------------------------------------------------------------------------------


def _batch_inputs(request, values) -> dict:
    template = values["template"]
    version = selectors.version_resolve(template=template, ref=values.get("version"))
    if "csv" in values and values.get("rows"):
        raise ValidationError({"rows": "Send rows or csv, not both."})
    if "csv" in values:
        rows = batches.rows_from_csv(data=values["csv"].encode("utf-8"), version=version)
    else:
        rows = values.get("rows") or []
    return {
        "actor": request.user,
        "template": template,
        "version": version,
        "rows": rows,
        "targets": [(t["credential"], t["model"]) for t in values["targets"]],
        "params": {k: v for k, v in (values.get("params") or {}).items() if v is not None},
    }


class BatchListView(generics.ListAPIView):
    serializer_class = BatchSerializer

    def get_queryset(self):
        template = selectors.template_for_user(
            user=self.request.user, pk=self.request.query_params.get("template")
        )
        return selectors.batches_of(user=self.request.user, template=template)

    @extend_schema(
        parameters=[OpenApiParameter("template", OpenApiTypes.INT, required=True)],
        description="A prompt's batch runs, newest first.",
    )
    def get(self, request):
        return self.list(request)

    @extend_schema(
        request=BatchCreateSerializer,
        responses={201: BatchSerializer},
        description="Start a batch: the version × `rows` (or a `csv` table) × `targets`. Every "
        "row is checked first; a 400 names each bad row and nothing starts.",
    )
    def post(self, request):
        data = BatchCreateSerializer(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        batch = batches.batch_create(
            **_batch_inputs(request, data.validated_data),
            title=data.validated_data.get("title", ""),
        )
        return Response(BatchSerializer(batch).data, status=status.HTTP_201_CREATED)


class BatchEstimateView(generics.GenericAPIView):
    serializer_class = BatchCreateSerializer

    @extend_schema(request=BatchCreateSerializer, responses={200: EstimateSerializer})
    def post(self, request):
        """What the batch would cost, with every check a start makes — and nothing started."""
        data = BatchCreateSerializer(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        checked = batches.batch_check(**_batch_inputs(request, data.validated_data))
        return Response(EstimateSerializer(checked.estimate).data)


class BatchDetailView(generics.GenericAPIView):
    serializer_class = BatchSerializer

    def get(self, request, pk):
        """The batch with its progress (counts per cell status, cost so far)."""
        batch = selectors.batch_for_user(user=request.user, pk=pk)
        usage_settle_stale()  # calls of a worker that died count as interrupted, not running
        progress = selectors.batch_progress(batch=batch)
        return Response(BatchSerializer(batch, context={"progress": progress}).data)

    def delete(self, request, pk):
        batch = selectors.batch_for_user(user=request.user, pk=pk)
        batches.batch_delete(actor=request.user, batch=batch)
        return Response(status=status.HTTP_204_NO_CONTENT)


class BatchCancelView(generics.GenericAPIView):
    serializer_class = BatchSerializer

    @extend_schema(request=None, responses={200: BatchSerializer})
    def post(self, request, pk):
        batch = selectors.batch_for_user(user=request.user, pk=pk)
        batch = batches.batch_cancel(actor=request.user, batch=batch)
        return Response(BatchSerializer(batch).data)


class BatchCellListView(generics.ListAPIView):
    serializer_class = CellSerializer

    def get_queryset(self):
        batch = selectors.batch_for_user(user=self.request.user, pk=self.kwargs["pk"])
        return batch.cells.order_by("row_index", "target_index")

    def get(self, request, pk):
        """The result matrix as cells (row, target), row by row."""
        return self.list(request)


class BatchExportView(FileView):
    @extend_schema(
        parameters=[OpenApiParameter("format", OpenApiTypes.STR, enum=["csv", "json"])],
        responses={200: OpenApiTypes.BINARY},
    )
    def get(self, request, pk):
        """The result matrix as CSV (one line per row × model) or JSON."""
        batch = selectors.batch_for_user(user=request.user, pk=pk)
        return exports.batch_export_response(batch=batch, fmt=request.query_params.get("format"))
