from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations


class Migration(migrations.Migration):
    """pg_trgm for the conversation search (title and content, case-insensitive)."""

    initial = True
    dependencies = []
    operations = [TrigramExtension()]
