from django.db import migrations

FOLLOW_UP = "Follow-up"


def create_follow_up(apps, schema_editor):
    Label = apps.get_model("inbox", "Label")
    Label.objects.get_or_create(user=None, name=FOLLOW_UP, defaults={"color": "#d97706"})


def remove_follow_up(apps, schema_editor):
    apps.get_model("inbox", "Label").objects.filter(user=None, name=FOLLOW_UP).delete()


class Migration(migrations.Migration):
    """Every user has the Follow-up label (the brief's filter); it is shared, not per user."""

    dependencies = [("inbox", "0002_organisation")]

    operations = [migrations.RunPython(create_follow_up, remove_follow_up)]
