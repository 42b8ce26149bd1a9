"""A model id per built-in collection: there are two built-in models now (all-MiniLM-L6-v2 and
the opt-in WordLlama). Every existing built-in collection was embedded with MiniLM, so it gets
MiniLM's id and nothing else changes (no re-embedding, same generation)."""

from django.db import migrations, models

MINILM = "all-MiniLM-L6-v2-int8"  # rag.embedders.MINILM.id, frozen here as migrations must be


def name_minilm(apps, schema_editor):
    Collection = apps.get_model("rag", "Collection")
    Collection.objects.filter(embedder="builtin", embedding_model="").update(embedding_model=MINILM)


def unname_minilm(apps, schema_editor):
    # Before 0006 a built-in collection's model id was blank (and could only be MiniLM).
    Collection = apps.get_model("rag", "Collection")
    Collection.objects.filter(embedder="builtin", embedding_model=MINILM).update(embedding_model="")


class Migration(migrations.Migration):

    dependencies = [
        ("rag", "0005_chunk_text_index_per_collection"),
    ]

    operations = [
        migrations.AlterField(
            model_name="collection",
            name="embedder",
            field=models.CharField(
                choices=[
                    ("builtin", "A built-in offline model"),
                    ("provider", "A provider's embedding model"),
                ],
                default="builtin",
                max_length=10,
            ),
        ),
        migrations.RunPython(name_minilm, unname_minilm, elidable=False),
    ]
