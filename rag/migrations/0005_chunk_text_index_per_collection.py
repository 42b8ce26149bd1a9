from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.operations import BtreeGinExtension
from django.db import migrations


class Migration(migrations.Migration):
    """Full text scoped by collection inside the index, and the tsvector kept in the row.

    - `(collection_id, tsv)` GIN (btree_gin, a trusted contrib extension) replaces the tsv-only
      one: the text branch no longer fetches every collection's matches to filter them.
    - `tsv` storage MAIN: rows are ~2.2 KB, just over the TOAST threshold, and the toaster moved
      the biggest attribute out of line — the tsvector, which ranking reads for every match
      (4 buffers a row). With MAIN the embedding (storage EXTERNAL) goes out instead; it is read
      from the row only for the few top candidates. Applies to rows written from now on.
    """

    dependencies = [
        ("rag", "0004_chunk_covering_exact_index"),
    ]

    operations = [
        BtreeGinExtension(),
        migrations.AddIndex(
            model_name="chunk",
            index=GinIndex(fields=["collection", "tsv"], name="rag_chunk_coll_tsv"),
        ),
        migrations.RemoveIndex(model_name="chunk", name="rag_chunk_tsv"),
        migrations.RunSQL(
            "ALTER TABLE rag_chunk ALTER COLUMN tsv SET STORAGE MAIN",
            "ALTER TABLE rag_chunk ALTER COLUMN tsv SET STORAGE EXTENDED",
        ),
    ]
