"""Teams: keys, slots and budgets a team owns; usage by caller.

The team model is swappable (``settings.BYOK_TEAM_MODEL``, ``byok.Team`` when unset),
so it is read with a default rather than as a required setting.
"""

import django
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

import byok.deletion

TEAM_MODEL = getattr(settings, "BYOK_TEAM_MODEL", "byok.Team")
#: ``CheckConstraint``'s keyword for its condition (``check`` before Django 5.1).
CHECK = "condition" if django.VERSION >= (5, 1) else "check"


def one_owner(name):
    exactly_one = models.Q(("team__isnull", True), ("user__isnull", False)) | models.Q(
        ("team__isnull", False), ("user__isnull", True)
    )
    return models.CheckConstraint(name=name, **{CHECK: exactly_one})


def callers_are_owners(apps, schema_editor):
    """Usage recorded before teams was made by the key's owner."""
    KeyUsage = apps.get_model("byok", "KeyUsage")
    UserAPIKey = apps.get_model("byok", "UserAPIKey")
    owner = UserAPIKey.objects.filter(pk=models.OuterRef("key_id")).values("user_id")[:1]
    KeyUsage.objects.filter(user__isnull=True).update(user=models.Subquery(owner))


class Migration(migrations.Migration):
    dependencies = [
        ("byok", "0006_budgets"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        migrations.swappable_dependency(TEAM_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="Team",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("name", models.CharField(max_length=100, verbose_name="name")),
                ("created_at", models.DateTimeField(auto_now_add=True, verbose_name="created")),
            ],
            options={
                "verbose_name": "team",
                "swappable": "BYOK_TEAM_MODEL",
            },
        ),
        migrations.CreateModel(
            name="TeamMembership",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "role",
                    models.CharField(
                        choices=[("owner", "Owner"), ("admin", "Admin"), ("member", "Member")],
                        default="member",
                        max_length=8,
                        verbose_name="role",
                    ),
                ),
                ("created_at", models.DateTimeField(auto_now_add=True, verbose_name="joined")),
            ],
            options={
                "verbose_name": "team membership",
            },
        ),
        migrations.RemoveConstraint(
            model_name="keyusage",
            name="byok_one_usage_row_per_key_day_model",
        ),
        migrations.AddField(
            model_name="keyusage",
            name="user",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="byok_key_usage",
                to=settings.AUTH_USER_MODEL,
                verbose_name="made by",
            ),
        ),
        migrations.RunPython(callers_are_owners, migrations.RunPython.noop, elidable=True),
        migrations.AddField(
            model_name="servicepreference",
            name="required",
            field=models.BooleanField(
                default=False, verbose_name="members must use the team's key"
            ),
        ),
        migrations.AlterField(
            model_name="budget",
            name="applies_to",
            field=models.CharField(
                choices=[
                    ("platform", "The platform's key"),
                    ("own", "The user's own keys"),
                    ("team", "The team's keys"),
                    ("all", "All keys"),
                ],
                default="own",
                max_length=16,
                verbose_name="applies to",
            ),
        ),
        migrations.AlterField(
            model_name="budget",
            name="user",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=byok.deletion.delete_with_owner,
                related_name="byok_budgets",
                to=settings.AUTH_USER_MODEL,
                verbose_name="user",
            ),
        ),
        migrations.AlterField(
            model_name="servicepreference",
            name="user",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=byok.deletion.delete_with_owner,
                related_name="byok_preferences",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AlterField(
            model_name="userapikey",
            name="user",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=byok.deletion.delete_with_owner,
                related_name="byok_api_keys",
                to=settings.AUTH_USER_MODEL,
                verbose_name="user",
            ),
        ),
        migrations.AddConstraint(
            model_name="keyusage",
            constraint=models.UniqueConstraint(
                fields=("key", "user", "date", "model"),
                name="byok_one_usage_row_per_key_caller_day_model",
            ),
        ),
        migrations.AddField(
            model_name="auditevent",
            name="team",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to=TEAM_MODEL,
                verbose_name="team",
            ),
        ),
        migrations.AddField(
            model_name="budget",
            name="team",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=byok.deletion.delete_with_owner,
                related_name="byok_budgets",
                to=TEAM_MODEL,
                verbose_name="team",
            ),
        ),
        migrations.AddField(
            model_name="servicepreference",
            name="team",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=byok.deletion.delete_with_owner,
                related_name="byok_preferences",
                to=TEAM_MODEL,
            ),
        ),
        migrations.AddField(
            model_name="userapikey",
            name="team",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=byok.deletion.delete_with_owner,
                related_name="byok_api_keys",
                to=TEAM_MODEL,
                verbose_name="team",
            ),
        ),
        migrations.AddIndex(
            model_name="budget",
            index=models.Index(fields=["team", "service"], name="byok_budget_team_idx"),
        ),
        migrations.AddIndex(
            model_name="userapikey",
            index=models.Index(
                fields=["team", "service", "environment"], name="byok_key_team_slot_idx"
            ),
        ),
        migrations.AddConstraint(
            model_name="budget",
            constraint=models.CheckConstraint(
                name="byok_budget_has_owner",
                **{
                    CHECK: models.Q(
                        ("user__isnull", False), ("team__isnull", False), _connector="OR"
                    )
                },
            ),
        ),
        migrations.AddConstraint(
            model_name="servicepreference",
            constraint=models.UniqueConstraint(
                fields=("team", "service", "environment"), name="byok_one_preference_per_team_slot"
            ),
        ),
        migrations.AddConstraint(
            model_name="servicepreference",
            constraint=one_owner("byok_preference_has_one_owner"),
        ),
        migrations.AddConstraint(
            model_name="userapikey",
            constraint=models.UniqueConstraint(
                fields=("team", "fingerprint"), name="byok_unique_secret_per_team"
            ),
        ),
        migrations.AddConstraint(
            model_name="userapikey",
            constraint=one_owner("byok_key_has_one_owner"),
        ),
        migrations.AddField(
            model_name="teammembership",
            name="team",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="byok_memberships",
                to=TEAM_MODEL,
            ),
        ),
        migrations.AddField(
            model_name="teammembership",
            name="user",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="byok_memberships",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddConstraint(
            model_name="teammembership",
            constraint=models.UniqueConstraint(
                fields=("team", "user"), name="byok_one_membership_per_user"
            ),
        ),
    ]
