from io import StringIO

import pytest
from django.core.management import call_command
from django.test import override_settings

from byok.crypto import parse_key


@override_settings(BYOK={})
def test_generate_key_prints_a_usable_key_even_when_unconfigured():
    first, second = StringIO(), StringIO()
    call_command("byok_generate_key", stdout=first)
    call_command("byok_generate_key", stdout=second)
    key = first.getvalue().strip()
    assert len(parse_key(key)) == 32
    assert key != second.getvalue().strip()


@pytest.mark.django_db
@override_settings(BYOK={})
def test_rotation_without_a_key_says_how_to_configure():
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured, match="byok_generate_key"):
        call_command("byok_rotate_keys", stdout=StringIO())
