"""byok's own translations: complete, faithful to the source, compiled, and used."""

import gettext
import html
import shutil
import subprocess
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings
from django.core import mail
from django.core.management import call_command
from django.test import Client, TestCase, override_settings
from django.utils import translation

import byok
from byok.notifications import deliver, key_context, make_due

from factories import UserAPIKeyFactory
from fakes import fake_credentials
from po_files import Entry, header, placeholders, read_po

# The same on every database: run by the SQLite environments and the full one.
pytestmark = pytest.mark.database_agnostic

LOCALE = Path(byok.__file__).resolve().parent / "locale"
#: The languages byok must ship at least; any other directory under locale/ is tested too.
REQUIRED = {"de", "es", "fr"}
LANGUAGES = sorted(REQUIRED | {p.name for p in LOCALE.iterdir() if p.is_dir()})
#: The plural rules Django's own catalogs use, so byok's plurals agree with them.
PLURAL_FORMS = {
    "de": "nplurals=2; plural=(n != 1);",
    "es": "nplurals=3; plural=n == 1 ? 0 : n != 0 && n % 1000000 == 0 ? 1 : 2;",
    "fr": "nplurals=2; plural=(n > 1);",
}
#: What makemessages is run with (the Makefile's `make messages` runs the same).
MAKEMESSAGES = {"add_location": "file", "no_obsolete": True, "verbosity": 0}


def po_path(language: str) -> Path:
    return LOCALE / language / "LC_MESSAGES" / "django.po"


def messages(language: str) -> list[Entry]:
    """The catalog's entries, without its header."""
    return read_po(po_path(language))[1:]


def test_byok_ships_german_french_and_spanish():
    for language in REQUIRED:
        assert po_path(language).is_file()
        assert po_path(language).with_suffix(".mo").is_file()


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_header_names_the_language_and_its_plural_rule(language):
    fields = header(read_po(po_path(language)))
    assert fields["Language"] == language
    assert fields["Content-Type"] == "text/plain; charset=UTF-8"
    if language in PLURAL_FORMS:
        assert fields["Plural-Forms"] == PLURAL_FORMS[language]
    assert "fuzzy" not in read_po(po_path(language))[0].flags


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_message_is_translated(language):
    entries = messages(language)
    nplurals = int(header(read_po(po_path(language)))["Plural-Forms"].split(";")[0][-1])
    assert len(entries) > 600
    untranslated = [e.msgid for e in entries if not all(e.strings.values())]
    fuzzy = [e.msgid for e in entries if "fuzzy" in e.flags]
    obsolete = [e.msgid for e in entries if e.obsolete]
    assert (untranslated, fuzzy, obsolete) == ([], [], [])
    for entry in entries:
        expected = list(range(nplurals)) if entry.plural else [0]
        assert sorted(entry.strings) == expected, entry.msgid


@pytest.mark.parametrize("language", LANGUAGES)
def test_translations_keep_every_placeholder_and_tag(language):
    wrong = []
    for entry in messages(language):
        for index, text in entry.strings.items():
            sources = [entry.plural, entry.msgid] if entry.plural else [entry.msgid]
            if placeholders(text) not in [placeholders(source) for source in sources]:
                wrong.append((entry.msgid, index, text))
    assert wrong == []


def test_the_placeholder_check_sees_a_lost_or_renamed_placeholder():
    assert placeholders("%(service)s accepted the key.") == ["%(service)s"]
    assert placeholders("%(name)s a accepté la clé.") != placeholders("%(service)s accepted.")
    assert placeholders("Upload a <code>.env</code>") == ["</code>", "<code>"]
    assert placeholders('a JSON object such as {"api_key": "sk-…"}') == []


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_compiled_catalog_is_the_po_file(language):
    """The .mo holds exactly the .po's translations: nobody forgot compilemessages."""
    expected: dict[object, str] = {}
    for entry in messages(language):
        msgid = entry.msgid if entry.context is None else f"{entry.context}\x04{entry.msgid}"
        if entry.plural:
            expected.update({(msgid, i): text for i, text in entry.strings.items()})
        else:
            expected[msgid] = entry.strings[0]
    with po_path(language).with_suffix(".mo").open("rb") as mo:
        compiled = gettext.GNUTranslations(mo)
    catalog = {k: v for k, v in compiled._catalog.items() if k != ""}  # type: ignore[attr-defined]
    assert catalog == expected
    assert compiled.info()["plural-forms"] == header(read_po(po_path(language)))["Plural-Forms"]


def gettext_missing() -> list[str]:
    return [tool for tool in ("xgettext", "msguniq", "msgmerge") if not shutil.which(tool)]


@pytest.mark.skipif(
    bool(gettext_missing()),
    reason="GNU gettext (xgettext, msguniq, msgmerge) is not installed: apt-get install gettext",
)
def test_the_catalogs_hold_exactly_the_strings_of_the_source(tmp_path, monkeypatch):
    """makemessages over byok's code today finds the same messages as the catalogs."""
    copy = tmp_path / "byok"
    shutil.copytree(
        LOCALE.parent, copy, ignore=shutil.ignore_patterns("locale", "__pycache__", "*.pyc")
    )
    (copy / "locale").mkdir()
    monkeypatch.chdir(copy)
    call_command("makemessages", locale=["de"], **MAKEMESSAGES)
    fresh = {entry.key for entry in read_po(copy / "locale/de/LC_MESSAGES/django.po")[1:]}
    assert len(fresh) > 600
    for language in LANGUAGES:
        shipped = {entry.key for entry in messages(language)}
        assert shipped - fresh == set(), f"{language}: strings the code no longer has"
        assert fresh - shipped == set(), f"{language}: new strings; run `make messages`"


def test_every_model_names_its_plural_for_translation():
    """Django makes a missing plural by adding "s", which no catalog can translate."""
    models = apps.get_app_config("byok").get_models()
    assert [
        m.__name__ for m in models if "verbose_name_plural" not in m._meta.original_attrs
    ] == []


# e-mails ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_e_mail_is_written_in_the_active_language(user):
    key = UserAPIKeyFactory(user=user, nickname="Arbeit")
    with translation.override("de"):
        due = make_due(user.pk, "key_invalid", "1", key=key, context=key_context(key))
        assert due is not None
        deliver(due.pk)
    (message,) = mail.outbox
    assert message.subject == "Ihr OpenAI-Schlüssel funktioniert nicht mehr"
    assert message.body.startswith("Hallo,")
    assert f"OpenAI-Schlüssel {key.masked_key} (“Arbeit”), Produktion" in message.body
    assert "production" not in message.body


@pytest.mark.django_db
def test_a_budget_alert_in_german_keeps_the_capitals_of_its_nouns(user):
    UserAPIKeyFactory(user=user)
    byok.set_budget(user, limit="10", service="openai")
    with translation.override("de"), TestCase.captureOnCommitCallbacks(execute=True):
        byok.track_api_usage(user, "openai", cost="6")
    (message,) = mail.outbox
    assert "OpenAI, die eigenen Schlüssel des Benutzers, pro Monat" in message.body


# the pages in each language ------------------------------------------------------

#: A few strings of the dashboard, and what each language must show instead.
DASHBOARD = {
    # the add-key form's button
    ">Add & test key</button>": {
        "de": ">Schlüssel hinzufügen und testen</button>",
        "es": ">Añadir y probar clave</button>",
        "fr": ">Ajouter et tester la clé</button>",
    },
    "Why bring your own keys?": {
        "de": "Warum eigene Schlüssel mitbringen?",
        "es": "¿Por qué traer sus propias claves?",
        "fr": "Pourquoi apporter vos propres clés\u00a0?",
    },
    "Connected services": {
        "de": "Verbundene Dienste",
        "es": "Servicios conectados",
        "fr": "Services connectés",
    },
    # a category tab
    ">Storage<": {"de": ">Speicher<", "es": ">Almacenamiento<", "fr": ">Stockage<"},
    # the button on a stored key, which another app's catalog must not replace
    ">Remove<": {"de": ">Entfernen<", "es": ">Eliminar<", "fr": ">Supprimer<"},
    # a plural: French says "0 appel", German and Spanish use the plural form
    ">0 calls<": {"de": ">0 Aufrufe<", "es": ">0 llamadas<", "fr": ">0 appel<"},
}


@pytest.fixture
def localized(user):
    """A browser for a user with a key, on a site that picks the browser's language."""
    UserAPIKeyFactory(user=user, credentials=fake_credentials("openai"))
    client = Client()
    client.force_login(user)
    middleware = list(settings.MIDDLEWARE)
    middleware.insert(1, "django.middleware.locale.LocaleMiddleware")
    with override_settings(MIDDLEWARE=middleware):
        yield client


@pytest.mark.django_db
@pytest.mark.parametrize("language", sorted(REQUIRED))
def test_the_dashboard_renders_in_each_language(localized, language):
    response = localized.get("/dashboard/api-keys/", HTTP_ACCEPT_LANGUAGE=language)
    assert response.status_code == 200
    assert response["Content-Language"] == language
    page = html.unescape(response.content.decode())
    assert f'<html lang="{language}">' in page
    for english, translated in DASHBOARD.items():
        assert translated[language] in page
        assert english not in page


@pytest.mark.django_db
def test_the_dashboard_stays_english_for_an_english_browser(localized):
    page = html.unescape(
        localized.get("/dashboard/api-keys/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    )
    for english in DASHBOARD:
        assert english in page


@pytest.mark.django_db
@pytest.mark.skipif(not shutil.which("msgfmt"), reason="GNU gettext (msgfmt) is not installed")
def test_a_site_changes_one_of_byoks_strings_in_its_own_catalog(localized, tmp_path):
    """As docs/pages.md says: a catalog in LOCALE_PATHS wins over byok's."""
    messages = tmp_path / "fr" / "LC_MESSAGES"
    messages.mkdir(parents=True)
    (messages / "django.po").write_text(
        'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n\n'
        'msgid "Add & test key"\nmsgstr "Enregistrer et tester"\n',
        encoding="utf-8",
    )
    subprocess.run(["msgfmt", "-o", messages / "django.mo", messages / "django.po"], check=True)
    with override_settings(LOCALE_PATHS=[tmp_path]):
        response = localized.get("/dashboard/api-keys/", HTTP_ACCEPT_LANGUAGE="fr")
    page = html.unescape(response.content.decode())
    assert ">Enregistrer et tester</button>" in page
    assert ">Ajouter et tester la clé</button>" not in page
    assert "Services connectés" in page  # the rest is still byok's
