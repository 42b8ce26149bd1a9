"""Background tasks (django.tasks on the django-tasks-db backend, `manage.py db_worker`).

Arguments are ids; the bodies (rag.ingestion) re-check access with the user id they are given."""

from __future__ import annotations

from django.tasks import task

from rag import ingestion


@task(queue_name="default")
def ingest_document(document_id: int, user_id: int) -> str:
    return ingestion.document_ingest(document_id=document_id, user_id=user_id)


@task(queue_name="default")
def reembed_collection(collection_id: int, user_id: int, generation: int) -> str:
    return ingestion.collection_reembed(
        collection_id=collection_id, user_id=user_id, generation=generation
    )


@task(queue_name="default")
def drop_collection_indexes(collection_id: int) -> str:
    """A deleted collection's own HNSW graphs, dropped CONCURRENTLY off the request (the drop
    waits for searches and index builds in flight)."""
    from rag import indexing

    indexing.collection_indexes_drop(collection_id)
    return "dropped"
