def pytest_generate_tests(metafunc):
    if "answer" in metafunc.fixturenames:
        answers = metafunc.cls.answers
        metafunc.parametrize("answer", answers, ids=[a.id for a in answers])
