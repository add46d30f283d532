import pytest
import responses as responses_lib


@pytest.fixture
def mocked():
    """Provider HTTP, mocked. Any request not registered fails the test."""
    with responses_lib.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def pytest_generate_tests(metafunc):
    if "answer" in metafunc.fixturenames:
        answers = metafunc.cls.answers
        metafunc.parametrize("answer", answers, ids=[a.id for a in answers])
