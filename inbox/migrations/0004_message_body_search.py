from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector
from django.db import migrations

INDEX_NAME = "message_body_search"


def _index():
    # Exactly the expression inbox.search filters on: SearchVector("body", config="simple").
    return GinIndex(SearchVector("body", config="simple"), name=INDEX_NAME)


def create_search_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return  # SQLite searches with a plain scan (inbox.search's fallback)
    schema_editor.add_index(apps.get_model("inbox", "Message"), _index(), concurrently=True)


def drop_search_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.remove_index(apps.get_model("inbox", "Message"), _index(), concurrently=True)


class Migration(migrations.Migration):
    """Full-text search over messages: a GIN index on PostgreSQL only. Built CONCURRENTLY (so not
    in a transaction): on a large table sends keep working while it builds. It is not in
    Message.Meta.indexes because SQLite cannot create it."""

    atomic = False

    dependencies = [("inbox", "0003_follow_up_label")]

    operations = [migrations.RunPython(create_search_index, drop_search_index)]
