"""Vectors for a collection's texts, whichever embedder it uses.

- Built-in: the collection's offline model (all-MiniLM-L6-v2 or WordLlama), loaded in this
  process (`rag.embedders.shared(model_id)`) — only the task worker calls `embed_texts`; queries
  go to the embedder service (`embed_query`), which holds the same models.
- Provider: through the gate (`providers.services.embedding_create`): metered, budgets apply,
  one usage row per call, batched so a big document is a few dozen calls, not thousands.
"""

from __future__ import annotations

from collections.abc import Callable

from asgiref.sync import async_to_sync

from rag.models import Collection, Embedder

PROVIDER_BATCH = 64
PROVIDER_BATCH_CHARS = 200_000
BUILTIN_BATCH = 64  # texts per progress step; the model batches by 8 inside


class EmbeddingFailed(Exception):
    """Carries a message for the user (`code: message` for provider errors)."""


def _provider_error(exc) -> EmbeddingFailed:
    return EmbeddingFailed(
        f"{exc.code}: {exc.message}" if getattr(exc, "message", "") else exc.code
    )


def _team_for(collection: Collection):
    """The team whose budgets apply (the gate reads only its pk: no query, safe in async code)."""
    from accounts.models import Team

    return Team(pk=collection.owner_team_id) if collection.owner_team_id else None


def _provider_batches(texts: list[str]):
    batch, size = [], 0
    for text in texts:
        if batch and (len(batch) >= PROVIDER_BATCH or size + len(text) > PROVIDER_BATCH_CHARS):
            yield batch
            batch, size = [], 0
        batch.append(text)
        size += len(text)
    if batch:
        yield batch


def embed_texts(
    *,
    collection: Collection,
    texts: list[str],
    user,
    feature: str = "rag",
    progress: Callable[[int], bool] | None = None,
) -> list:
    """One vector per text, in order. `progress(done)` is called after each step; it returns
    False to stop (cancelled), and then EmbeddingFailed("cancelled") is raised."""
    vectors: list = []
    if collection.embedder == Embedder.BUILTIN:
        from rag.embedders import EmbedderUnavailable, shared

        try:
            model = shared(collection.builtin_model.id)
        except EmbedderUnavailable as exc:
            raise EmbeddingFailed(f"The built-in model can't be loaded: {exc}") from None
        batches = [texts[i : i + BUILTIN_BATCH] for i in range(0, len(texts), BUILTIN_BATCH)]
        embed = lambda batch: list(model.embed(batch))  # noqa: E731
    else:
        from providers.adapters.base import ProviderError
        from providers.services import embedding_create

        if collection.embedding_credential_id is None:
            raise EmbeddingFailed("The collection's embedding credential was deleted.")
        batches = list(_provider_batches(texts))

        def embed(batch):
            try:
                result, _ = async_to_sync(embedding_create)(
                    user=user,
                    credential_id=collection.embedding_credential_id,
                    model=collection.embedding_model,
                    inputs=batch,
                    feature=feature,
                    context={"collection": collection.pk},
                    team=_team_for(collection),
                )
            except ProviderError as exc:
                raise _provider_error(exc) from None
            except Exception as exc:  # Http404/PermissionDenied: the user lost the credential
                raise EmbeddingFailed(
                    "You may no longer use the collection's embedding credential."
                ) from exc
            if len(result.vectors) != len(batch):
                raise EmbeddingFailed("The provider returned the wrong number of vectors.")
            return result.vectors

    for batch in batches:
        vectors.extend(embed(batch))
        if progress is not None and progress(len(vectors)) is False:
            raise EmbeddingFailed("cancelled")
    dims = {len(v) for v in vectors}
    if len(dims) > 1:
        raise EmbeddingFailed("The model returned vectors of different sizes.")
    if dims and next(iter(dims)) > 4000:
        raise EmbeddingFailed("Vectors larger than 4,000 dimensions can't be indexed.")
    return vectors


async def aembed_query(
    *, collection: Collection, text: str, user, feature: str = "rag"
) -> list[float]:
    """The query's vector for searching `collection` (from async code: chat, playground)."""
    if collection.embedder == Embedder.BUILTIN:
        from rag import embedder_service

        try:
            return (await embedder_service.aembed([text], model=collection.builtin_model.id))[0]
        except embedder_service.EmbedderServiceError as exc:
            raise EmbeddingFailed(f"The built-in embedder is unavailable: {exc}") from None
    from providers.adapters.base import ProviderError
    from providers.services import embedding_create

    try:
        result, _ = await embedding_create(
            user=user,
            credential_id=collection.embedding_credential_id,
            model=collection.embedding_model,
            inputs=[text],
            feature=feature,
            context={"collection": collection.pk, "query": True},
            team=_team_for(collection),
        )
    except ProviderError as exc:
        raise _provider_error(exc) from None
    return list(result.vectors[0])


def embed_query(*, collection: Collection, text: str, user, feature: str = "rag") -> list[float]:
    if collection.embedder == Embedder.BUILTIN:
        from rag import embedder_service

        try:
            return embedder_service.embed([text], model=collection.builtin_model.id)[0]
        except embedder_service.EmbedderServiceError as exc:
            raise EmbeddingFailed(f"The built-in embedder is unavailable: {exc}") from None
    return async_to_sync(aembed_query)(collection=collection, text=text, user=user, feature=feature)
