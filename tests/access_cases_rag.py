"""Access-matrix cases for collections (rag): every route, id-bearing field and upload.

alice's side: a team collection ("Acme handbook") with one document, a personal collection of
alice's with one document and one chunk (ids charlie and alice's teammates must never reach)."""

from __future__ import annotations

from tests.access_matrix import Case, FieldCase
from tests.access_matrix import alice_only as _alice_only
from tests.access_matrix import team_rule as _team


def rag_world(world: dict) -> dict:
    from rag import services
    from rag.models import Chunk

    alice, team = world["alice"], world["team"]
    collection = services.collection_create(actor=alice, name="Acme handbook", owner_team=team)
    personal = services.collection_create(actor=alice, name="Alice private")
    doc = services.document_add_bytes(
        actor=alice, collection=collection, filename="a.txt", data=b"team text"
    ).document
    private_doc = services.document_add_bytes(
        actor=alice, collection=personal, filename="p.txt", data=b"private text"
    ).document
    chunk = Chunk.objects.create(collection=collection, document=doc, ordinal=0, text="team text")
    return {
        "rag_collection": collection,
        "rag_personal": personal,
        "rag_document": doc,
        "rag_private_document": private_doc,
        "rag_chunk": chunk,
    }


coll = lambda w: {"pk": w["rag_collection"].pk}  # noqa: E731
doc = lambda w: {"pk": w["rag_collection"].pk, "document_id": w["rag_document"].pk}  # noqa: E731
# A document of alice's *personal* collection addressed through the team collection's URL:
# nobody gets it, not even alice (ids must belong together).
private_doc = lambda w: {"pk": w["rag_personal"].pk, "document_id": w["rag_private_document"].pk}  # noqa: E731
crossed = lambda w: {"pk": w["rag_collection"].pk, "document_id": w["rag_private_document"].pk}  # noqa: E731

RAG_CASES: list[Case] = [
    Case("rag:new", _team(200, 200, 200, charlie=200)),
    Case(
        "rag:new",
        _team(302, 302, 302, charlie=302),
        method="POST",
        data=lambda w: {
            "name": "Mine",
            "embedder": "all-MiniLM-L6-v2-int8",  # the form offers each built-in model
            "chunk_size": 1000,
            "chunk_overlap": 100,
        },
        note="personal",
    ),
    Case("rag:detail", _team(200, 200, 200), kwargs=coll),
    Case(
        "rag:detail",
        _alice_only(200),
        kwargs=lambda w: {"pk": w["rag_personal"].pk},
        note="personal",
    ),
    Case("rag:edit", _team(200, 200, 403), kwargs=coll),
    Case(
        "rag:edit",
        _team(302, 302, 403),
        method="POST",
        kwargs=coll,
        data=lambda w: {
            "name": "Renamed",
            "embedder": "all-MiniLM-L6-v2-int8",  # the form offers each built-in model
            "chunk_size": 900,
            "chunk_overlap": 100,
        },
    ),
    Case("rag:delete", _team(200, 403, 403), kwargs=coll),
    Case("rag:delete", _team(302, 403, 403), method="POST", kwargs=coll),
    Case(
        "rag:upload",
        _team(302, 302, 403),
        method="POST",
        kwargs=coll,
        data=lambda w: {"files": _file()},
        note="multipart",
    ),
    Case(
        "rag:paste",
        _team(302, 302, 403),
        method="POST",
        kwargs=coll,
        data=lambda w: {"title": "t", "text": "pasted words"},
    ),
    Case(
        "rag:fetch",
        _team(302, 302, 403),
        method="POST",
        kwargs=coll,
        data=lambda w: {"url": "https://example.com/"},
    ),
    Case("rag:document_cancel", _team(302, 302, 403), method="POST", kwargs=doc),
    Case("rag:document_retry", _team(302, 302, 403), method="POST", kwargs=doc),
    Case("rag:document_delete", _team(302, 302, 403), method="POST", kwargs=doc),
    Case(
        "rag:document_delete",
        _team(404, 404, 404),
        method="POST",
        kwargs=crossed,
        note="a document of another collection",
    ),
    Case(
        "rag:search",
        _team(200, 200, 200),
        kwargs=coll,
        query=lambda w: {"q": "team", "mode": "text"},
    ),
    Case(
        "rag:chunk",
        _team(200, 200, 200),
        kwargs=lambda w: {"pk": w["rag_collection"].pk, "chunk_id": w["rag_chunk"].pk},
    ),
    Case(
        "rag:chunk",
        _team(404, 404, 404),
        kwargs=lambda w: {"pk": w["rag_personal"].pk, "chunk_id": w["rag_chunk"].pk},
        note="a chunk of another collection",
    ),
    # Ids that don't belong together, and alice's personal collection through every reader.
    Case(
        "rag:document_cancel",
        _team(404, 404, 404),
        method="POST",
        kwargs=crossed,
        note="a document of another collection",
    ),
    Case(
        "rag:document_retry",
        _team(404, 404, 404),
        method="POST",
        kwargs=crossed,
        note="a document of another collection",
    ),
    Case(
        "rag:document_delete",
        _alice_only(302),
        method="POST",
        kwargs=private_doc,
        note="personal",
    ),
    Case(
        "rag:detail",
        _alice_only(200),
        kwargs=lambda w: {"pk": w["rag_personal"].pk},
        query=lambda w: {"partial": "documents"},
        note="personal, documents page",
    ),
    Case(
        "rag:search",
        _alice_only(200),
        kwargs=lambda w: {"pk": w["rag_personal"].pk},
        query=lambda w: {"q": "private", "mode": "text"},
        note="personal",
    ),
    Case(
        "rag:edit", _alice_only(200), kwargs=lambda w: {"pk": w["rag_personal"].pk}, note="personal"
    ),
    Case(
        "rag:upload",
        _alice_only(302),
        method="POST",
        kwargs=lambda w: {"pk": w["rag_personal"].pk},
        data=lambda w: {"files": _file()},
        note="personal, multipart",
    ),
    # --- REST ---------------------------------------------------------------------------------
    Case("api-collection-list", _team(200, 200, 200, anonymous=401, charlie=200), api=True),
    Case(
        "api-collection-list",
        _team(201, 201, 201, anonymous=401, charlie=201),
        method="POST",
        api=True,
        data=lambda w: {"name": "Mine"},
    ),
    Case("api-collection-detail", _team(200, 200, 200, anonymous=401), kwargs=coll, api=True),
    Case(
        "api-collection-detail",
        _team(200, 200, 403, anonymous=401),
        method="PATCH",
        kwargs=coll,
        api=True,
        data=lambda w: {"name": "X"},
    ),
    Case(
        "api-collection-detail",
        _team(204, 403, 403, anonymous=401),
        method="DELETE",
        kwargs=coll,
        api=True,
    ),
    Case("api-document-list", _team(200, 200, 200, anonymous=401), kwargs=coll, api=True),
    Case(
        "api-document-list",
        _team(201, 201, 403, anonymous=401),
        method="POST",
        kwargs=coll,
        api=True,
        data=lambda w: {"text": "pasted via api"},
    ),
    Case("api-document-detail", _team(200, 200, 200, anonymous=401), kwargs=doc, api=True),
    Case(
        "api-document-detail",
        _team(404, 404, 404, anonymous=401),
        kwargs=crossed,
        api=True,
        note="a document of another collection",
    ),
    Case(
        "api-document-detail",
        _team(204, 204, 403, anonymous=401),
        method="DELETE",
        kwargs=doc,
        api=True,
    ),
    Case(
        "api-document-cancel",
        _team(200, 200, 403, anonymous=401),
        method="POST",
        kwargs=doc,
        api=True,
    ),
    Case("api-collection-status", _team(200, 200, 200, anonymous=401), kwargs=coll, api=True),
    Case(
        "api-collection-status",
        _alice_only(200, anonymous=401),
        kwargs=lambda w: {"pk": w["rag_personal"].pk},
        api=True,
        note="personal",
    ),
    Case(
        "api-collection-search",
        _alice_only(200, anonymous=401),
        method="POST",
        kwargs=lambda w: {"pk": w["rag_personal"].pk},
        api=True,
        data=lambda w: {"query": "private", "mode": "text"},
        note="personal",
    ),
    Case(
        "api-document-list",
        _alice_only(201, anonymous=401),
        method="POST",
        kwargs=lambda w: {"pk": w["rag_personal"].pk},
        api=True,
        data=lambda w: {"text": "pasted into alice's own"},
        note="personal",
    ),
    Case(
        "api-document-detail",
        _team(404, 404, 404, anonymous=401),
        method="DELETE",
        kwargs=crossed,
        api=True,
        note="a document of another collection",
    ),
    Case(
        "api-document-cancel",
        _team(404, 404, 404, anonymous=401),
        method="POST",
        kwargs=crossed,
        api=True,
        note="a document of another collection",
    ),
    Case(
        "api-collection-search",
        _team(200, 200, 200, anonymous=401),
        method="POST",
        kwargs=coll,
        api=True,
        data=lambda w: {"query": "team", "mode": "text"},
    ),
]


def _file():
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile("upload.txt", b"uploaded words", content_type="text/plain")


RAG_FIELD_CASES: list[FieldCase] = [
    FieldCase(
        "rag.forms.CollectionForm.owner_team",
        Case(
            "rag:new",
            _team(302, 302, 403, charlie=404),
            method="POST",
            data=lambda w: {
                "name": "T",
                "owner_team": w["team"].pk,
                "embedder": "all-MiniLM-L6-v2-int8",  # the form offers each built-in model
                "chunk_size": 1000,
                "chunk_overlap": 100,
            },
            note="owner_team",
        ),
    ),
    FieldCase(
        "rag.forms.CollectionForm.embedding_credential",
        Case(
            "rag:new",
            _team(400, 404, 404, charlie=404),
            method="POST",
            data=lambda w: {
                "name": "T",
                "embedder": "provider",
                "embedding_credential": w["alice_credential"].pk,
                "embedding_model": "m",
                "chunk_size": 1000,
                "chunk_overlap": 100,
            },
            note="alice's personal credential (echo has no embeddings: 400 for alice)",
        ),
    ),
    FieldCase(
        "rag.forms.CollectionEditForm.embedding_credential",
        Case(
            "rag:edit",
            _team(400, 404, 403, charlie=404),
            method="POST",
            kwargs=coll,
            data=lambda w: {
                "name": "T",
                "embedder": "provider",
                "embedding_credential": w["alice_credential"].pk,
                "embedding_model": "m",
                "chunk_size": 1000,
                "chunk_overlap": 100,
            },
            note="alice's personal credential (echo has no embeddings: 400 for alice)",
        ),
    ),
    FieldCase(
        "rag.serializers.CollectionCreateSerializer.owner_team",
        Case(
            "api-collection-list",
            _team(201, 201, 403, anonymous=401),
            method="POST",
            api=True,
            data=lambda w: {"name": "T", "owner_team": w["team"].pk},
            note="owner_team",
        ),
    ),
    FieldCase(
        "rag.serializers.CollectionCreateSerializer.embedding_credential",
        Case(
            "api-collection-list",
            _team(400, 404, 404, anonymous=401),
            method="POST",
            api=True,
            data=lambda w: {
                "name": "T",
                "embedder": "provider",
                "embedding_credential": w["alice_credential"].pk,
                "embedding_model": "m",
            },
            note="alice's personal credential (echo has no embeddings: 400 for alice)",
        ),
    ),
    FieldCase(
        "rag.serializers.CollectionWriteSerializer.embedding_credential",
        Case(
            "api-collection-detail",
            _team(400, 404, 403, anonymous=401),
            method="PATCH",
            kwargs=coll,
            api=True,
            data=lambda w: {
                "embedder": "provider",
                "embedding_credential": w["alice_credential"].pk,
                "embedding_model": "m",
            },
            note="alice's personal credential",
        ),
    ),
]
