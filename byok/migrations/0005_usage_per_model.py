from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("byok", "0004_userapikey_encryption_key_id"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="keyusage",
            name="cached_input_tokens",
            field=models.PositiveBigIntegerField(default=0, verbose_name="cached input tokens"),
        ),
        migrations.AddField(
            model_name="keyusage",
            name="input_tokens",
            field=models.PositiveBigIntegerField(default=0, verbose_name="input tokens"),
        ),
        migrations.AddField(
            model_name="keyusage",
            name="model",
            field=models.CharField(blank=True, default="", max_length=100, verbose_name="model"),
        ),
        migrations.AddField(
            model_name="keyusage",
            name="output_tokens",
            field=models.PositiveBigIntegerField(default=0, verbose_name="output tokens"),
        ),
        migrations.AddField(
            model_name="keyusage",
            name="unpriced_calls",
            field=models.PositiveBigIntegerField(default=0, verbose_name="unpriced calls"),
        ),
        migrations.AddField(
            model_name="platformusage",
            name="cached_input_tokens",
            field=models.PositiveBigIntegerField(default=0, verbose_name="cached input tokens"),
        ),
        migrations.AddField(
            model_name="platformusage",
            name="input_tokens",
            field=models.PositiveBigIntegerField(default=0, verbose_name="input tokens"),
        ),
        migrations.AddField(
            model_name="platformusage",
            name="model",
            field=models.CharField(blank=True, default="", max_length=100, verbose_name="model"),
        ),
        migrations.AddField(
            model_name="platformusage",
            name="output_tokens",
            field=models.PositiveBigIntegerField(default=0, verbose_name="output tokens"),
        ),
        migrations.AddField(
            model_name="platformusage",
            name="unpriced_calls",
            field=models.PositiveBigIntegerField(default=0, verbose_name="unpriced calls"),
        ),
        migrations.AddConstraint(
            model_name="keyusage",
            constraint=models.UniqueConstraint(
                fields=("key", "date", "model"), name="byok_one_usage_row_per_key_day_model"
            ),
        ),
        migrations.AddConstraint(
            model_name="platformusage",
            constraint=models.UniqueConstraint(
                fields=("user", "service", "environment", "date", "model"),
                name="byok_one_platform_usage_row_per_day_model",
            ),
        ),
        # Dropped last: until the new unique indexes exist, the foreign keys need them.
        migrations.RemoveConstraint(
            model_name="keyusage",
            name="byok_one_usage_row_per_key_day",
        ),
        migrations.RemoveConstraint(
            model_name="platformusage",
            name="byok_one_platform_usage_row_per_day",
        ),
    ]
