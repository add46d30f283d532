"""A host's own organizations, with a membership model of its own design: what a site
that already has teams points ``BYOK_TEAM_MODEL`` and ``BYOK["TEAM_ADAPTER"]`` at."""

import uuid

from django.conf import settings
from django.db import models


class Organization(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    slug = models.SlugField(unique=True)

    def __str__(self):
        return self.slug


class Seat(models.Model):
    """A person's seat in an organization; admins manage what it shares."""

    id = models.BigAutoField(primary_key=True)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="seats")
    person = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    is_admin = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "person"], name="one_seat_per_person")
        ]
