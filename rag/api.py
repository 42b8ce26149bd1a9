"""REST for collections: CRUD, documents (multipart upload, pasted text, URL), ingestion
status, cancel, and search (`chunk_search`)."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import ValidationError as DRFValidationError
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response

from accounts import selectors as account_selectors
from accounts.access import Action
from rag import selectors, services
from rag.serializers import (
    CollectionCreateSerializer,
    CollectionSerializer,
    CollectionWriteSerializer,
    DocumentCreateSerializer,
    DocumentSerializer,
    IngestionStatusSerializer,
    SearchResultSerializer,
    SearchSerializer,
    UploadOutcomeSerializer,
)
from workbench.parsers import JSONParser


def _outcome(outcome: services.Outcome) -> dict:
    return {
        "name": outcome.name,
        "status": outcome.status,
        "message": outcome.message,
        "document": DocumentSerializer(outcome.document).data if outcome.document else None,
    }


class CollectionListView(generics.ListAPIView):
    serializer_class = CollectionSerializer

    def get_queryset(self):
        params = self.request.query_params
        team = (
            account_selectors.team_for_user(user=self.request.user, pk=params["team"])
            if params.get("team")
            else None
        )
        return selectors.collections_for_user(user=self.request.user, team=team)

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "team", OpenApiTypes.INT, description="Also list this team's collections."
            )
        ]
    )
    def get(self, request):
        return self.list(request)

    @extend_schema(request=CollectionCreateSerializer, responses={201: CollectionSerializer})
    def post(self, request):
        data = CollectionCreateSerializer(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        collection = services.collection_create(actor=request.user, **data.validated_data)
        return Response(CollectionSerializer(collection).data, status=status.HTTP_201_CREATED)


class CollectionDetailView(generics.GenericAPIView):
    serializer_class = CollectionSerializer

    def get(self, request, pk):
        collection = selectors.collection_for_user(user=request.user, pk=pk)
        return Response(CollectionSerializer(collection).data)

    @extend_schema(request=CollectionWriteSerializer, responses={200: CollectionSerializer})
    def patch(self, request, pk):
        collection = selectors.collection_for_user(user=request.user, pk=pk, action=Action.WRITE)
        data = CollectionWriteSerializer(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        collection = services.collection_update(
            actor=request.user, collection=collection, **data.validated_data
        )
        return Response(CollectionSerializer(collection).data)

    def delete(self, request, pk):
        collection = selectors.collection_for_user(user=request.user, pk=pk)
        services.collection_delete(actor=request.user, collection=collection)
        return Response(status=status.HTTP_204_NO_CONTENT)


class DocumentListView(generics.ListAPIView):
    serializer_class = DocumentSerializer
    parser_classes = [JSONParser, MultiPartParser]  # ours: bounded and cleaned

    def get_queryset(self):
        collection = selectors.collection_for_user(user=self.request.user, pk=self.kwargs["pk"])
        return selectors.documents_for(user=self.request.user, collection=collection)

    def get(self, request, pk):
        return self.list(request)

    @extend_schema(
        request={
            "application/json": DocumentCreateSerializer,
            "multipart/form-data": {
                "type": "object",
                "properties": {
                    "file": {"type": "array", "items": {"type": "string", "format": "binary"}}
                },
            },
        },
        responses={
            201: UploadOutcomeSerializer(many=True),
            # Everything refused (one outcome per item), or input that isn't an upload at all.
            400: {
                "oneOf": [
                    {"type": "array", "items": {"$ref": "#/components/schemas/UploadOutcome"}},
                    {"$ref": "#/components/schemas/Error"},
                ]
            },
        },
        description="Upload files (multipart, one or more `file` parts), or send JSON with "
        "`text` (+ `title`) to paste or `url` to fetch a page. Answers one outcome per item: "
        "added, duplicate or refused (with the reason). 201 when anything was added or "
        "already there; 400 when everything was refused.",
    )
    def post(self, request, pk):
        collection = selectors.collection_for_user(user=request.user, pk=pk, action=Action.WRITE)
        files = request.FILES.getlist("file")  # parses the body: the upload handler runs now
        refused = getattr(request._request, "upload_refused", {})
        outcomes: list[services.Outcome] = [
            services.Outcome(name, "refused", reason) for name, reason in refused.items()
        ]
        if files or refused:
            for upload in files:
                outcomes.append(
                    services.document_add_bytes(
                        actor=request.user,
                        collection=collection,
                        filename=upload.name,
                        data=upload.read(),
                    )
                )
        else:
            data = DocumentCreateSerializer(data=request.data)
            data.is_valid(raise_exception=True)
            if data.validated_data.get("url"):
                document = services.document_add_url(
                    actor=request.user, collection=collection, url=data.validated_data["url"]
                )
                outcomes.append(services.Outcome(document.source, "added", "", document))
            else:
                outcomes.append(
                    services.document_paste(
                        actor=request.user,
                        collection=collection,
                        title=data.validated_data.get("title", ""),
                        text=data.validated_data["text"],
                    )
                )
        if not outcomes:
            raise DRFValidationError("Send files, text or a URL.")
        ok = any(o.status in {"added", "duplicate"} for o in outcomes)
        return Response(
            [_outcome(o) for o in outcomes],
            status=status.HTTP_201_CREATED if ok else status.HTTP_400_BAD_REQUEST,
        )


class DocumentDetailView(generics.GenericAPIView):
    serializer_class = DocumentSerializer

    def get(self, request, pk, document_id):
        collection = selectors.collection_for_user(user=request.user, pk=pk)
        document = selectors.document_for_user(
            user=request.user, pk=document_id, collection=collection
        )
        return Response(DocumentSerializer(document).data)

    def delete(self, request, pk, document_id):
        collection = selectors.collection_for_user(user=request.user, pk=pk)
        document = selectors.document_for_user(
            user=request.user, pk=document_id, collection=collection
        )
        services.document_delete(actor=request.user, document=document)
        return Response(status=status.HTTP_204_NO_CONTENT)


class DocumentCancelView(generics.GenericAPIView):
    serializer_class = DocumentSerializer

    @extend_schema(request=None, responses={200: DocumentSerializer})
    def post(self, request, pk, document_id):
        collection = selectors.collection_for_user(user=request.user, pk=pk)
        document = selectors.document_for_user(
            user=request.user, pk=document_id, collection=collection
        )
        document = services.document_cancel(actor=request.user, document=document)
        return Response(DocumentSerializer(document).data)


class IngestionStatusView(generics.GenericAPIView):
    serializer_class = IngestionStatusSerializer

    def get(self, request, pk):
        collection = selectors.collection_for_user(user=request.user, pk=pk)
        return Response(selectors.ingestion_status(user=request.user, collection=collection))


class SearchView(generics.GenericAPIView):
    serializer_class = SearchResultSerializer

    @extend_schema(request=SearchSerializer, responses={200: SearchResultSerializer})
    def post(self, request, pk):
        collection = selectors.collection_for_user(user=request.user, pk=pk)
        data = SearchSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        result = selectors.chunk_search(
            user=request.user, collections=[collection], feature="api", **data.validated_data
        )
        return Response(
            {
                "hits": [{**hit.__dict__, "highlight": str(hit.highlight)} for hit in result.hits],
                "notices": result.notices,
                "took_ms": round(result.took_ms, 1),
            }
        )
