import django.db.models.deletion
from decimal import Decimal
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("byok", "0005_usage_per_model"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
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
                    ("budget_changed", "Budget changed"),
                    ("budget_blocked", "Blocked by a budget"),
                ],
                max_length=32,
                verbose_name="action",
            ),
        ),
        migrations.CreateModel(
            name="Budget",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "service",
                    models.CharField(
                        blank=True,
                        help_text="Empty: every service.",
                        max_length=64,
                        verbose_name="service",
                    ),
                ),
                (
                    "applies_to",
                    models.CharField(
                        choices=[
                            ("platform", "The platform's key"),
                            ("own", "The user's own keys"),
                            ("all", "All keys"),
                        ],
                        default="own",
                        max_length=16,
                        verbose_name="applies to",
                    ),
                ),
                (
                    "period",
                    models.CharField(
                        choices=[("day", "Day"), ("week", "Week"), ("month", "Month")],
                        default="month",
                        max_length=8,
                        verbose_name="period",
                    ),
                ),
                (
                    "limit",
                    models.DecimalField(
                        blank=True,
                        decimal_places=2,
                        max_digits=12,
                        null=True,
                        verbose_name="limit (USD)",
                    ),
                ),
                (
                    "action",
                    models.CharField(
                        choices=[("alert", "Alert"), ("block", "Block")],
                        default="alert",
                        max_length=8,
                        verbose_name="action",
                    ),
                ),
                (
                    "alert_at",
                    models.CharField(
                        blank=True, max_length=64, null=True, verbose_name="alert at (%)"
                    ),
                ),
                (
                    "source",
                    models.CharField(
                        choices=[("site", "Set by the site"), ("user", "Set by the user")],
                        default="user",
                        max_length=8,
                        verbose_name="set by",
                    ),
                ),
                (
                    "default_name",
                    models.CharField(blank=True, max_length=64, verbose_name="default budget"),
                ),
                (
                    "period_start",
                    models.DateField(
                        blank=True, editable=False, null=True, verbose_name="period start"
                    ),
                ),
                (
                    "spent",
                    models.DecimalField(
                        decimal_places=6,
                        default=Decimal("0"),
                        editable=False,
                        max_digits=14,
                        verbose_name="spent",
                    ),
                ),
                ("alerted", models.PositiveSmallIntegerField(default=0, editable=False)),
                ("blocked_period", models.DateField(blank=True, editable=False, null=True)),
                ("created_at", models.DateTimeField(auto_now_add=True, verbose_name="created")),
                ("updated_at", models.DateTimeField(auto_now=True, verbose_name="updated")),
                (
                    "user",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="byok_budgets",
                        to=settings.AUTH_USER_MODEL,
                        verbose_name="user",
                    ),
                ),
            ],
            options={
                "verbose_name": "budget",
                "ordering": ["user", "service", "period"],
            },
        ),
        migrations.CreateModel(
            name="Reservation",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("amount", models.DecimalField(decimal_places=6, max_digits=14)),
                ("expires_at", models.DateTimeField()),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                (
                    "budget",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="reservations",
                        to="byok.budget",
                    ),
                ),
            ],
            options={
                "verbose_name": "reservation",
            },
        ),
        migrations.AddIndex(
            model_name="budget",
            index=models.Index(fields=["user", "service"], name="byok_budget_user_idx"),
        ),
        migrations.AddConstraint(
            model_name="budget",
            constraint=models.UniqueConstraint(
                condition=models.Q(("default_name", ""), _negated=True),
                fields=("user", "default_name"),
                name="byok_one_row_per_default_budget",
            ),
        ),
        migrations.AddIndex(
            model_name="reservation",
            index=models.Index(fields=["budget", "expires_at"], name="byok_reservation_idx"),
        ),
    ]
