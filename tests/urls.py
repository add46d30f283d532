from django.contrib import admin
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.template import engines
from django.urls import include, path

# A host's settings page showing byok's card, for the browser tests and
# docs/screenshots.py. Inline, so the sdist's tests (*.py only) have it too.
SETTINGS_PAGE = """{% load byok %}<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Settings</title></head>
<body><main style="max-width: 40rem; margin: 2rem auto; padding: 0 1rem">
<h1>Settings</h1>
{% byok_settings_section %}
</main></body>
</html>"""


@login_required
def settings_page(request):
    return HttpResponse(engines["django"].from_string(SETTINGS_PAGE).render({}, request))


urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/user/api-keys/", include("byok.rest.urls")),
    path("dashboard/api-keys/", include("byok.urls")),
    path("settings/", settings_page, name="settings"),
]
