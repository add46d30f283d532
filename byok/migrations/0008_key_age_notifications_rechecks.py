import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


def secrets_changed_when_stored(apps, schema_editor):
    """Keys stored before this release: their secret dates from when they were stored."""
    UserAPIKey = apps.get_model("byok", "UserAPIKey")
    UserAPIKey.objects.using(schema_editor.connection.alias).update(
        secret_changed_at=models.F("created_at")
    )


class Migration(migrations.Migration):

    dependencies = [
        ('byok', '0007_teams'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='RecheckRun',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('created_at', models.DateTimeField(db_index=True, default=django.utils.timezone.now, verbose_name='started')),
                ('finished_at', models.DateTimeField(blank=True, null=True, verbose_name='finished')),
                ('options', models.JSONField(blank=True, default=dict, verbose_name='options')),
                ('key_count', models.PositiveIntegerField(default=0, verbose_name='keys')),
                ('batch_count', models.PositiveIntegerField(default=0, verbose_name='batches')),
                ('concurrency', models.PositiveSmallIntegerField(default=4, verbose_name='requests in flight per batch')),
            ],
            options={
                'verbose_name': 're-check run',
                'ordering': ['-created_at', '-id'],
            },
        ),
        migrations.AddField(
            model_name='userapikey',
            name='expires_at',
            field=models.DateTimeField(blank=True, null=True, verbose_name='expires'),
        ),
        migrations.AddField(
            model_name='userapikey',
            name='expiry_source',
            field=models.CharField(blank=True, choices=[('user', 'Entered by its owner'), ('provider', 'Read from the provider')], max_length=16, verbose_name='expiry from'),
        ),
        migrations.AddField(
            model_name='userapikey',
            name='secret_changed_at',
            field=models.DateTimeField(default=django.utils.timezone.now, verbose_name='secret changed'),
        ),
        migrations.RunPython(secrets_changed_when_stored, migrations.RunPython.noop),
        migrations.CreateModel(
            name='Notification',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('kind', models.CharField(choices=[('key_invalid', 'A key stopped working'), ('key_expiring', 'A key expires soon'), ('rotation_due', 'A key is older than the rotation policy'), ('key_unused', 'A key has not been used for a long time')], max_length=32, verbose_name='kind')),
                ('occasion', models.CharField(max_length=128, verbose_name='occasion')),
                ('context', models.JSONField(blank=True, default=dict, verbose_name='details')),
                ('created_at', models.DateTimeField(db_index=True, default=django.utils.timezone.now, verbose_name='due since')),
                ('claimed_at', models.DateTimeField(blank=True, null=True, verbose_name='being sent since')),
                ('sent_at', models.DateTimeField(blank=True, null=True, verbose_name='sent')),
                ('attempts', models.PositiveIntegerField(default=0, verbose_name='attempts')),
                ('last_error', models.CharField(blank=True, max_length=255, verbose_name='last error')),
                ('key', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='notifications', to='byok.userapikey', verbose_name='key')),
                ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='byok_notifications', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'verbose_name': 'notification',
                'ordering': ['-created_at', '-id'],
                'indexes': [models.Index(fields=['sent_at', 'created_at'], name='byok_notif_unsent_idx')],
                'constraints': [models.UniqueConstraint(fields=('user', 'kind', 'occasion'), name='byok_one_notification_per_occasion')],
            },
        ),
        migrations.CreateModel(
            name='NotificationOptOut',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('kind', models.CharField(choices=[('key_invalid', 'A key stopped working'), ('key_expiring', 'A key expires soon'), ('rotation_due', 'A key is older than the rotation policy'), ('key_unused', 'A key has not been used for a long time')], max_length=32)),
                ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='byok_opt_outs', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'verbose_name': 'notification opt-out',
                'constraints': [models.UniqueConstraint(fields=('user', 'kind'), name='byok_one_opt_out_per_kind')],
            },
        ),
        migrations.CreateModel(
            name='RecheckBatch',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('number', models.PositiveIntegerField()),
                ('after_key', models.UUIDField(blank=True, null=True)),
                ('last_key', models.UUIDField()),
                ('claimed_at', models.DateTimeField(blank=True, null=True)),
                ('finished_at', models.DateTimeField(blank=True, null=True)),
                ('counts', models.JSONField(blank=True, default=dict)),
                ('run', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='batches', to='byok.recheckrun')),
            ],
            options={
                'verbose_name': 're-check batch',
                'verbose_name_plural': 're-check batches',
                'ordering': ['run', 'number'],
                'constraints': [models.UniqueConstraint(fields=('run', 'number'), name='byok_one_batch_number_per_run')],
            },
        ),
        migrations.CreateModel(
            name='RecheckBackoff',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('service', models.CharField(max_length=64)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('run', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='backoffs', to='byok.recheckrun')),
            ],
            options={
                'verbose_name': 're-check back-off',
                'constraints': [models.UniqueConstraint(fields=('run', 'service'), name='byok_one_backoff_per_service')],
            },
        ),
    ]
