"""Factories for the suite: users of either user model, keys stored as a site stores them."""

import factory
from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone

from byok.keys import add_team_api_key, add_user_api_key
from byok.models import Environment, KeyUsage, PlatformUsage, Team, TeamRole, UserAPIKey

from fakes import fake_credentials


class UserFactory(factory.django.DjangoModelFactory):
    """A user of whatever AUTH_USER_MODEL the suite runs with.

    ``accounts.EmailUser`` (the default) logs in with its e-mail address and has no
    username; ``auth.User`` gets both.
    """

    class Meta:
        model = settings.AUTH_USER_MODEL
        exclude = () if get_user_model().USERNAME_FIELD == "username" else ("username",)

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    username = factory.Sequence(lambda n: f"user{n}")
    password = "correct horse battery staple"

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        """Through ``create_user``, as a site signs people up: the password is hashed."""
        return model_class._default_manager.create_user(*args, **kwargs)


class UserAPIKeyFactory(factory.django.DjangoModelFactory):
    """A key stored through the public helper, as host code would.

    The ciphertext, fingerprint, masked key and audit event are the real ones; any other
    keyword (``nickname``, ``environment``, ``is_default``, ``test``, ``actor``, …)
    goes to :func:`byok.keys.add_user_api_key`.
    """

    class Meta:
        model = UserAPIKey

    user = factory.SubFactory(UserFactory)
    service = "openai"
    credentials = factory.LazyAttribute(lambda key: fake_credentials(key.service))

    @classmethod
    def _create(cls, model_class, user, service, credentials, **options):
        return add_user_api_key(user, service, credentials, **options)


class TeamFactory(factory.django.DjangoModelFactory):
    """A team of byok's own model; ``owner=`` a user makes them its owner."""

    class Meta:
        model = Team
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Team {n}")

    @factory.post_generation
    def owner(team, create, user, **kwargs):
        if user is not None:
            team.add_member(user, TeamRole.OWNER)


class TeamAPIKeyFactory(factory.django.DjangoModelFactory):
    """A team's key, stored through :func:`byok.keys.add_team_api_key` by one of the
    team's owners (made for it unless ``actor`` is given)."""

    class Meta:
        model = UserAPIKey

    team = factory.SubFactory(TeamFactory)
    service = "openai"
    credentials = factory.LazyAttribute(lambda key: fake_credentials(key.service))

    @classmethod
    def _create(cls, model_class, team, service, credentials, actor=None, **options):
        if actor is None:
            actor = UserFactory()
            team.add_member(actor, TeamRole.OWNER)
        return add_team_api_key(team, service, credentials, actor=actor, **options)


class KeyUsageFactory(factory.django.DjangoModelFactory):
    """A day's usage of a key, written as a row (track_api_usage is tested apart)."""

    class Meta:
        model = KeyUsage

    key = factory.SubFactory(UserAPIKeyFactory)
    #: Who made the calls: the key's owner, unless a team's key.
    user = factory.LazyAttribute(lambda usage: usage.key.user)
    date = factory.LazyFunction(timezone.localdate)
    calls = 1


class PlatformUsageFactory(factory.django.DjangoModelFactory):
    """A day's usage of the platform's key by a user, written as a row."""

    class Meta:
        model = PlatformUsage

    user = factory.SubFactory(UserFactory)
    service = "openai"
    environment = factory.LazyFunction(Environment.default)
    date = factory.LazyFunction(timezone.localdate)
    calls = 1
