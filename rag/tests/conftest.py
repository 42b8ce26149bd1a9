"""Fixtures for RAG tests: collections of the personas, running ingestion in-process, and the
query-time embedder service (a real subprocess on a Unix socket in the test data directory)."""

from __future__ import annotations

import pytest

from rag import embedder_service, services
from rag.ingestion import document_ingest
from rag.models import DocStatus, Document


@pytest.fixture(scope="session")
def embedder():
    """The embedder service for the session; stopped at the end (make test leaves nothing)."""
    embedder_service.start_detached(idle_exit=None)
    yield
    embedder_service.stop_running()


@pytest.fixture
def ingest(db):
    """`ingest()` runs every queued document now, in this process, as the worker would."""

    def run() -> list[str]:
        return [
            document_ingest(document_id=doc.pk, user_id=doc.created_by_id)
            for doc in Document.objects.filter(status=DocStatus.QUEUED).order_by("pk")
        ]

    return run


@pytest.fixture
def alice_collection(alice):
    return services.collection_create(actor=alice, name="Alice's notes")


@pytest.fixture
def team_collection(alice, team):
    return services.collection_create(actor=alice, name="Acme handbook", owner_team=team)


def add_text(user, collection, name: str, text: str):
    return services.document_add_bytes(
        actor=user, collection=collection, filename=name, data=text.encode()
    )
