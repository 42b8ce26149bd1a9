import numpy as np
import pytest

from rag import embedder_service
from rag.embedders import DIMS, shared


def test_the_offline_model_gives_normalised_vectors_that_rank_meaning(db):
    model = shared()
    vectors = model.embed(
        ["A cat sat on the mat.", "A kitten rested on the rug.", "Tax law in 1990."]
    )
    assert vectors.shape == (3, DIMS)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-3)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2


def test_batches_sorted_by_length_come_back_in_order(db):
    model = shared()
    texts = ["short", "a much longer sentence about databases and vectors " * 5, "mid length text"]
    together = model.embed(texts, batch_size=2)
    alone = np.stack([model.embed([t])[0] for t in texts])
    assert np.allclose(together, alone, atol=2e-2)


def test_the_service_answers_like_the_model_in_process(embedder):
    remote = np.array(embedder_service.embed(["hello world"]))
    local = shared().embed(["hello world"])
    assert float(remote[0] @ local[0]) > 0.999


def test_the_service_refuses_bad_requests_with_a_message(embedder):
    with pytest.raises(embedder_service.EmbedderServiceError, match="Too much"):
        embedder_service.embed(["x"] * (embedder_service.MAX_TEXTS + 1))


@pytest.mark.django_db(transaction=True)
async def test_async_search_finds_what_sync_search_finds(embedder):
    from asgiref.sync import sync_to_async

    from conftest import make_user
    from rag import selectors, services
    from rag.ingestion import document_ingest

    def setup():
        user = make_user("alice")
        collection = services.collection_create(actor=user, name="c")
        outcome = services.document_add_bytes(
            actor=user,
            collection=collection,
            filename="a.md",
            data=b"Otters hold hands while sleeping.",
        )
        document_ingest(document_id=outcome.document.pk, user_id=user.pk)
        return user, collection

    user, collection = await sync_to_async(setup)()
    result = await selectors.achunk_search(
        user=user, collections=[collection.pk], query="sleeping otters"
    )
    expected = await sync_to_async(selectors.chunk_search)(
        user=user, collections=[collection.pk], query="sleeping otters"
    )
    assert [h.chunk_id for h in result.hits] == [h.chunk_id for h in expected.hits]
    assert result.hits[0].matched_by == "both"
