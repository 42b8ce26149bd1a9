"""Writing chunks fast and keeping their indexes: binary COPY and per-dimension HNSW indexes.

- `chunks_copy` streams rows in PostgreSQL's binary COPY format, built here (halfvec as its
  binary wire form straight from numpy): no per-row INSERT, no text formatting of floats.
- Vectors of every size share `rag_chunk`; each size gets its own partial expression HNSW index,
  `USING hnsw ((embedding::halfvec(N)) halfvec_cosine_ops) WHERE dims = N`, created by
  `hnsw_ensure(N)` when the first vectors of that size have been loaded — so the first (and
  usually largest) load of a dimension is written without an index and the graph is built once,
  after it. Later loads go through the index: next to embedding a chunk (tens of ms on our
  CPUs) inserting it into the graph (~1 ms) does not matter.
- A big collection (`OWN_INDEX_MIN_CHUNKS` and more) also gets its own graph,
  `… WHERE dims = N AND (collection_id + 0) = <id>` (`collection_index_sync`): searched alone,
  it is walked with no filter to pass, instead of the shared graph where only 1 candidate in
  (table / collection) belongs to it and each is checked against the heap. See
  docs/performance.md (P7). The `+ 0` matches the search's `collection_id + 0 = ANY(…)`, which
  keeps the btree out of that statement; PostgreSQL proves the index's predicate from it.
"""

from __future__ import annotations

import contextlib
import struct
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import connection

HNSW_M = 16
HNSW_EF_CONSTRUCTION = 64
MAX_INDEXED_DIMS = 4000  # pgvector's HNSW limit for halfvec
# From this many chunks a collection gets its own HNSW graph; `rag.selectors.EXACT_MAX_CHUNKS`
# (the exact path's limit) follows it, so every single-collection search has a fast path.
OWN_INDEX_MIN_CHUNKS = 10_000

COLUMNS = (
    "collection_id",
    "document_id",
    "ordinal",
    "text",
    "heading",
    "page",
    "generation",
    "dims",
    "embedding",
)


@dataclass
class ChunkRow:
    collection_id: int
    document_id: int
    ordinal: int
    text: str
    heading: str
    page: int | None
    generation: int
    vector: object | None  # a float32 numpy vector, a list of floats, or None


_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
_TRAILER = struct.pack(">h", -1)
_NULL = struct.pack(">i", -1)


def halfvec_binary(vector) -> bytes:
    """pgvector's binary halfvec: u16 dims, u16 unused, then big-endian float16s."""
    import numpy as np

    array = np.asarray(vector, dtype=">f2")
    return struct.pack(">HH", array.shape[0], 0) + array.tobytes()


def _field(value: bytes) -> bytes:
    return struct.pack(">i", len(value)) + value


def encode_rows(rows: Iterable[ChunkRow]) -> Iterable[bytes]:
    """COPY ... (FORMAT BINARY) tuples for `rows`, header first and trailer last."""
    yield _HEADER
    pack_row = struct.Struct(">hiqiqii").pack  # fields, len+collection_id, len+document_id, len
    for row in rows:
        text = row.text.encode()
        heading = row.heading.encode()
        vector = halfvec_binary(row.vector) if row.vector is not None else None
        dims = (len(vector) - 4) // 2 if vector is not None else 0
        yield b"".join(
            (
                pack_row(len(COLUMNS), 8, row.collection_id, 8, row.document_id, 4, row.ordinal),
                _field(text),
                _field(heading),
                _NULL if row.page is None else struct.pack(">ii", 4, row.page),
                struct.pack(">iq", 8, row.generation),
                struct.pack(">ih", 2, dims),
                _NULL if vector is None else _field(vector),
            )
        )
    yield _TRAILER


def chunks_copy(
    rows: Iterable[ChunkRow], *, table: str = "rag_chunk", batch_bytes: int = 1 << 20
) -> int:
    """COPY `rows` into the chunk table; returns how many. Runs in the caller's transaction."""
    count = 0
    with connection.cursor() as cursor:
        raw = cursor.cursor  # the psycopg cursor under Django's wrapper
        with raw.copy(
            f"COPY {table} ({', '.join(COLUMNS)}) FROM STDIN WITH (FORMAT BINARY)"
        ) as copy:
            buffer, size = [], 0
            for part in encode_rows(rows):
                buffer.append(part)
                size += len(part)
                count += 1
                if size >= batch_bytes:
                    copy.write(b"".join(buffer))
                    buffer, size = [], 0
            if buffer:
                copy.write(b"".join(buffer))
    return count - 2  # header and trailer


def hnsw_index_name(dims: int, table: str = "rag_chunk") -> str:
    return f"{table}_hnsw_{int(dims)}"


def hnsw_exists(dims: int, table: str = "rag_chunk") -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM pg_indexes WHERE indexname = %s", [hnsw_index_name(dims, table)]
        )
        return cursor.fetchone() is not None


# Index upkeep runs under a session advisory lock per (kind, key): two workers finishing
# documents of one collection at once must not both build its graph, nor one drop the other's
# build in progress (it is invalid until done) as a leftover.
_LOCK_SHARED, _LOCK_OWN = 0x52414731, 0x52414732  # any fixed numbers: "RAG1", "RAG2"


@contextlib.contextmanager
def _upkeep_lock(kind: int, key: int):
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [kind, int(key) % 2**31])
        locked = cursor.fetchone()[0]
        try:
            yield locked
        finally:
            if locked:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [kind, int(key) % 2**31])


def _drop_invalid(cursor, name: str, concurrently: str) -> None:
    """A CONCURRENTLY build that was interrupted leaves an invalid index that IF NOT EXISTS
    would keep forever. Called under the upkeep lock, so no build of ours is in progress."""
    cursor.execute("SELECT NOT indisvalid FROM pg_index WHERE indexrelid = to_regclass(%s)", [name])
    row = cursor.fetchone()
    if row and row[0]:
        cursor.execute(f"DROP INDEX {concurrently} IF EXISTS {name}")


def hnsw_ensure(dims: int, *, table: str = "rag_chunk", maintenance_mem: str = "256MB") -> bool:
    """Build the HNSW index for `dims`-sized vectors unless it exists. True when built now.

    CONCURRENTLY outside a transaction (the worker), so searches and inserts go on meanwhile;
    inside one (tests) a plain CREATE INDEX."""
    dims = int(dims)
    if not 0 < dims <= MAX_INDEXED_DIMS:
        return False
    with _upkeep_lock(_LOCK_SHARED, dims) as locked:
        return locked and _hnsw_build(dims, table, maintenance_mem)


def _hnsw_build(dims: int, table: str, maintenance_mem: str) -> bool:
    name = hnsw_index_name(dims, table)
    concurrently = "" if connection.in_atomic_block else "CONCURRENTLY"
    with connection.cursor() as cursor:
        _drop_invalid(cursor, name, concurrently)
    if hnsw_exists(dims, table):
        return False
    with connection.cursor() as cursor:
        if connection.in_atomic_block:
            # Django's foreign keys are deferred; CREATE INDEX refuses pending trigger events.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(f"SET maintenance_work_mem = '{maintenance_mem}'")
        cursor.execute(
            f"CREATE INDEX {concurrently} IF NOT EXISTS {name} ON {table} "
            f"USING hnsw ((embedding::halfvec({dims})) halfvec_cosine_ops) "
            f"WITH (m = {HNSW_M}, ef_construction = {HNSW_EF_CONSTRUCTION}) WHERE dims = {dims}"
        )
        cursor.execute("RESET maintenance_work_mem")
    return True


def collection_index_name(collection_id: int, dims: int) -> str:
    return f"rag_chunk_hnsw_{int(dims)}_c{int(collection_id)}"


def _collection_indexes(cursor, collection_id: int) -> list[str]:
    cursor.execute(
        "SELECT indexname FROM pg_indexes WHERE tablename = 'rag_chunk' AND indexname ~ %s",
        [rf"^rag_chunk_hnsw_\d+_c{int(collection_id)}$"],
    )
    return [name for (name,) in cursor.fetchall()]


def collection_index_sync(
    collection_id: int, *, dims: int | None, chunks: int, maintenance_mem: str = "256MB"
) -> bool:
    """Give a collection of `chunks` current `dims`-sized vectors its own HNSW graph when it is
    big enough, and drop its graphs of other sizes (an older model's). True when built now.
    CONCURRENTLY outside a transaction (the worker), like `hnsw_ensure`."""
    collection_id = int(collection_id)
    wanted = (
        collection_index_name(collection_id, dims)
        if dims and 0 < dims <= MAX_INDEXED_DIMS and chunks >= OWN_INDEX_MIN_CHUNKS
        else None
    )
    with _upkeep_lock(_LOCK_OWN, collection_id) as locked:
        return locked and _collection_index_apply(collection_id, dims, wanted, maintenance_mem)


def _collection_index_apply(collection_id, dims, wanted, maintenance_mem) -> bool:
    concurrently = "" if connection.in_atomic_block else "CONCURRENTLY"
    with connection.cursor() as cursor:
        if connection.in_atomic_block:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        if wanted:
            _drop_invalid(cursor, wanted, concurrently)
        existing = _collection_indexes(cursor, collection_id)
        for name in existing:
            if name != wanted:
                cursor.execute(f"DROP INDEX {concurrently} IF EXISTS {name}")
        if not wanted or wanted in existing:
            return False
        cursor.execute(f"SET maintenance_work_mem = '{maintenance_mem}'")
        cursor.execute(
            f"CREATE INDEX {concurrently} IF NOT EXISTS {wanted} ON rag_chunk "
            f"USING hnsw ((embedding::halfvec({int(dims)})) halfvec_cosine_ops) "
            f"WITH (m = {HNSW_M}, ef_construction = {HNSW_EF_CONSTRUCTION}) "
            f"WHERE dims = {int(dims)} AND (collection_id + 0) = {collection_id}"
        )
        cursor.execute("RESET maintenance_work_mem")
    return True


def collection_indexes_drop(collection_id: int) -> None:
    """Drop a deleted collection's own graphs."""
    concurrently = "" if connection.in_atomic_block else "CONCURRENTLY"
    with connection.cursor() as cursor:
        for name in _collection_indexes(cursor, collection_id):
            cursor.execute(f"DROP INDEX {concurrently} IF EXISTS {name}")
