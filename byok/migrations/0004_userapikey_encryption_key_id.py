from django.db import migrations, models
from django.db.models.functions import Substr


def copy_key_ids(apps, schema_editor):
    """Each stored token names its key at characters 8 to 15 (``byok:1:<key id>:…``)."""
    UserAPIKey = apps.get_model("byok", "UserAPIKey")
    UserAPIKey.objects.using(schema_editor.connection.alias).exclude(credentials=None).update(
        encryption_key_id=Substr("credentials", 8, 8)
    )


class Migration(migrations.Migration):
    dependencies = [
        ("byok", "0003_masked_key_and_audit_actions"),
    ]

    operations = [
        migrations.AddField(
            model_name="userapikey",
            name="encryption_key_id",
            field=models.CharField(
                blank=True,
                default="",
                editable=False,
                max_length=16,
                verbose_name="encryption key",
            ),
        ),
        migrations.RunPython(copy_key_ids, migrations.RunPython.noop, elidable=True),
        migrations.AddIndex(
            model_name="userapikey",
            index=models.Index(
                fields=["encryption_key_id", "id"], name="byok_key_encryption_key_idx"
            ),
        ),
    ]
