import pytest

from support import client_for

OPENAI_MODELS = "https://api.openai.com/v1/models"


@pytest.fixture
def api(user):
    return client_for(user)
