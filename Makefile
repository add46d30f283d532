# Two commands for a newcomer: `make demo` and `make test` (see README.md).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

# With pyenv, make every installed Python 3.10–3.13 visible to tox, the current one first.
ifneq ($(shell command -v pyenv 2>/dev/null),)
export PYENV_VERSION ?= $(shell { pyenv version-name; pyenv versions --bare | grep -E '^3\.1[0-3]\.[0-9]+$$'; } 2>/dev/null | awk '!seen[$$0]++' | paste -sd: -)
endif

.PHONY: demo test lint messages mutate clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

## demo: install the app, prepare the example site and serve it at http://127.0.0.1:8000
demo: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[example]"
	$(BIN)/python example_project/manage.py demo
	$(BIN)/python example_project/manage.py runserver 127.0.0.1:8000

## test: the whole suite on SQLite, PostgreSQL and MariaDB, plus lint (tox label "ci")
test: $(BIN)/python
	$(BIN)/python -m pip install --quiet "tox>=4.11" "tox-uv>=1.11"
	$(BIN)/tox run-parallel -m ci --parallel-no-spinner

lint: $(BIN)/python
	$(BIN)/python -m pip install --quiet "tox>=4.11" "tox-uv>=1.11"
	$(BIN)/tox run -e lint

## messages: refresh byok's translation catalogs (byok/locale/*) from the code and compile
## them; needs GNU gettext. django-admin, not `python -m django`: run inside byok/, the
## latter would import byok/logging.py as the standard library's logging.
messages: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	cd byok && ../$(BIN)/django-admin makemessages --all --add-location=file --no-obsolete
	cd byok && ../$(BIN)/django-admin compilemessages

## mutate: mutation-test the security core, score each module, list survivors (not in CI;
## MUTATE_ARGS="byok/crypto.py -j 1" narrows it; see docs/testing.md)
mutate: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test]"
	$(BIN)/python -m mutation $(MUTATE_ARGS)

clean:
	rm -rf $(VENV) .tox build dist *.egg-info example_project/var .mutation
