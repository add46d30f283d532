from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("byok", "0010_budget_alert_notifications"),
    ]

    operations = [
        migrations.AddField(
            model_name="keyusage",
            name="client_errors",
            field=models.PositiveBigIntegerField(default=0, verbose_name="client errors (4xx)"),
        ),
        migrations.AddField(
            model_name="keyusage",
            name="other_errors",
            field=models.PositiveBigIntegerField(default=0, verbose_name="other errors (no answer, a connection error)"),
        ),
        migrations.AddField(
            model_name="keyusage",
            name="latency_gt_10000",
            field=models.PositiveBigIntegerField(
                default=0, verbose_name="calls of more than 10,000 ms"
            ),
        ),
        migrations.AddField(
            model_name="keyusage",
            name="latency_le_100",
            field=models.PositiveBigIntegerField(default=0, verbose_name="calls of 51 to 100 ms"),
        ),
        migrations.AddField(
            model_name="keyusage",
            name="latency_le_1000",
            field=models.PositiveBigIntegerField(
                default=0, verbose_name="calls of 501 to 1,000 ms"
            ),
        ),
        migrations.AddField(
            model_name="keyusage",
            name="latency_le_10000",
            field=models.PositiveBigIntegerField(
                default=0, verbose_name="calls of 5,001 to 10,000 ms"
            ),
        ),
        migrations.AddField(
            model_name="keyusage",
            name="latency_le_250",
            field=models.PositiveBigIntegerField(default=0, verbose_name="calls of 101 to 250 ms"),
        ),
        migrations.AddField(
            model_name="keyusage",
            name="latency_le_2500",
            field=models.PositiveBigIntegerField(
                default=0, verbose_name="calls of 1,001 to 2,500 ms"
            ),
        ),
        migrations.AddField(
            model_name="keyusage",
            name="latency_le_50",
            field=models.PositiveBigIntegerField(default=0, verbose_name="calls of at most 50 ms"),
        ),
        migrations.AddField(
            model_name="keyusage",
            name="latency_le_500",
            field=models.PositiveBigIntegerField(default=0, verbose_name="calls of 251 to 500 ms"),
        ),
        migrations.AddField(
            model_name="keyusage",
            name="latency_le_5000",
            field=models.PositiveBigIntegerField(
                default=0, verbose_name="calls of 2,501 to 5,000 ms"
            ),
        ),
        migrations.AddField(
            model_name="keyusage",
            name="ok_calls",
            field=models.PositiveBigIntegerField(default=0, verbose_name="successful calls"),
        ),
        migrations.AddField(
            model_name="keyusage",
            name="rate_limited",
            field=models.PositiveBigIntegerField(
                default=0, verbose_name="rate-limited calls (429)"
            ),
        ),
        migrations.AddField(
            model_name="keyusage",
            name="server_errors",
            field=models.PositiveBigIntegerField(default=0, verbose_name="server errors (5xx)"),
        ),
        migrations.AddField(
            model_name="keyusage",
            name="timeouts",
            field=models.PositiveBigIntegerField(default=0, verbose_name="timeouts"),
        ),
        migrations.AddField(
            model_name="platformusage",
            name="client_errors",
            field=models.PositiveBigIntegerField(default=0, verbose_name="client errors (4xx)"),
        ),
        migrations.AddField(
            model_name="platformusage",
            name="other_errors",
            field=models.PositiveBigIntegerField(default=0, verbose_name="other errors (no answer, a connection error)"),
        ),
        migrations.AddField(
            model_name="platformusage",
            name="latency_gt_10000",
            field=models.PositiveBigIntegerField(
                default=0, verbose_name="calls of more than 10,000 ms"
            ),
        ),
        migrations.AddField(
            model_name="platformusage",
            name="latency_le_100",
            field=models.PositiveBigIntegerField(default=0, verbose_name="calls of 51 to 100 ms"),
        ),
        migrations.AddField(
            model_name="platformusage",
            name="latency_le_1000",
            field=models.PositiveBigIntegerField(
                default=0, verbose_name="calls of 501 to 1,000 ms"
            ),
        ),
        migrations.AddField(
            model_name="platformusage",
            name="latency_le_10000",
            field=models.PositiveBigIntegerField(
                default=0, verbose_name="calls of 5,001 to 10,000 ms"
            ),
        ),
        migrations.AddField(
            model_name="platformusage",
            name="latency_le_250",
            field=models.PositiveBigIntegerField(default=0, verbose_name="calls of 101 to 250 ms"),
        ),
        migrations.AddField(
            model_name="platformusage",
            name="latency_le_2500",
            field=models.PositiveBigIntegerField(
                default=0, verbose_name="calls of 1,001 to 2,500 ms"
            ),
        ),
        migrations.AddField(
            model_name="platformusage",
            name="latency_le_50",
            field=models.PositiveBigIntegerField(default=0, verbose_name="calls of at most 50 ms"),
        ),
        migrations.AddField(
            model_name="platformusage",
            name="latency_le_500",
            field=models.PositiveBigIntegerField(default=0, verbose_name="calls of 251 to 500 ms"),
        ),
        migrations.AddField(
            model_name="platformusage",
            name="latency_le_5000",
            field=models.PositiveBigIntegerField(
                default=0, verbose_name="calls of 2,501 to 5,000 ms"
            ),
        ),
        migrations.AddField(
            model_name="platformusage",
            name="ok_calls",
            field=models.PositiveBigIntegerField(default=0, verbose_name="successful calls"),
        ),
        migrations.AddField(
            model_name="platformusage",
            name="rate_limited",
            field=models.PositiveBigIntegerField(
                default=0, verbose_name="rate-limited calls (429)"
            ),
        ),
        migrations.AddField(
            model_name="platformusage",
            name="server_errors",
            field=models.PositiveBigIntegerField(default=0, verbose_name="server errors (5xx)"),
        ),
        migrations.AddField(
            model_name="platformusage",
            name="timeouts",
            field=models.PositiveBigIntegerField(default=0, verbose_name="timeouts"),
        ),
    ]
