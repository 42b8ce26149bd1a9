from django.db import migrations
from pgvector.django import VectorExtension


class Migration(migrations.Migration):
    """pgvector, for RAG chunks and embeddings. First, so any later migration can use it."""

    initial = True
    dependencies = []
    operations = [VectorExtension()]
