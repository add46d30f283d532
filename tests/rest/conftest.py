import pytest
import responses as responses_lib

from support import client_for

OPENAI_MODELS = "https://api.openai.com/v1/models"


@pytest.fixture
def provider():
    """Providers, mocked: OpenAI accepts every key unless a test says otherwise."""
    with responses_lib.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(OPENAI_MODELS, json={"object": "list", "data": []})
        yield mock


@pytest.fixture
def api(user):
    return client_for(user)
