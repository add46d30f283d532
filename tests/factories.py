import factory
from django.contrib.auth import get_user_model

from byok.keys import add_user_api_key

from fakes import fake_credentials


class UserFactory(factory.django.DjangoModelFactory):
    """A user of whatever AUTH_USER_MODEL the suite runs with."""

    class Meta:
        model = get_user_model()

    password = "correct horse battery staple"

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        number = next(_numbers)
        username_field = model_class.USERNAME_FIELD
        identity = {
            username_field: f"user{number}@example.com"
            if username_field == "email"
            else f"user{number}"
        }
        if username_field != "email" and hasattr(model_class, "email"):
            identity["email"] = f"user{number}@example.com"
        identity.update(kwargs)
        password = identity.pop("password")
        return model_class._default_manager.create_user(password=password, **identity)


def _counter():
    number = 0
    while True:
        number += 1
        yield number


_numbers = _counter()


def make_key(user=None, service="openai", credentials=None, **kwargs):
    """Store a key through the public helper, as host code would."""
    user = user or UserFactory()
    return add_user_api_key(user, service, credentials or fake_credentials(service), **kwargs)
