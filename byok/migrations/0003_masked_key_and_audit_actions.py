from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("byok", "0002_key_status_format_invalid"),
    ]

    operations = [
        migrations.RenameField(
            model_name="userapikey",
            old_name="display_hint",
            new_name="masked_key",
        ),
        migrations.AlterField(
            model_name="auditevent",
            name="action",
            field=models.CharField(
                choices=[
                    ("created", "Created"),
                    ("updated", "Updated"),
                    ("tested", "Tested"),
                    ("revealed", "Revealed"),
                    ("deleted", "Deleted"),
                    ("rotated", "Re-encrypted"),
                    ("imported", "Imported"),
                    ("preference_changed", "Preference changed"),
                ],
                max_length=32,
                verbose_name="action",
            ),
        ),
    ]
