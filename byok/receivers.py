"""Signal handlers byok connects when the app is ready."""

from __future__ import annotations

from typing import Any

from django.db import router, transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver

from byok.models import ServicePreference, UserAPIKey


@receiver(post_delete, sender=UserAPIKey, dispatch_uid="byok.settle_slot_after_hard_delete")
def settle_slot_after_hard_delete(*, instance: UserAPIKey, **kwargs: Any) -> None:
    """A key deleted outright (not soft-deleted) hands its slot to the newest active key."""
    with transaction.atomic(using=router.db_for_write(ServicePreference)):
        preference = (
            ServicePreference.objects.select_for_update()
            .filter(
                **instance.owner.filter,
                service=instance.service,
                environment=instance.environment,
            )
            .first()
        )
        if preference is not None:
            preference.settle()
