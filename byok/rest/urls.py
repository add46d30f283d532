"""Mount with ``path("api/user/api-keys/", include("byok.rest.urls"))``.

URL names are in the ``byok_api`` namespace: ``byok_api:apikey-list``,
``byok_api:apikey-detail``, ``byok_api:apikey-test``, ``byok_api:apikey-retest``,
``byok_api:apikey-reveal``, ``byok_api:apikey-import``, ``byok_api:apikey-services``,
``byok_api:apikey-stats``, ``byok_api:apikey-usage``, ``byok_api:apikey-usage-by-model``,
``byok_api:apikey-comparison``, ``byok_api:budget-list``, ``byok_api:budget-detail``;
for teams (each with ``team_pk``) ``byok_api:team-list``, ``team-detail``,
``team-members``, ``team-usage``, ``team-stats``, ``teamkey-list``, ``teamkey-detail``,
``teamkey-retest``, ``teamkey-reveal``; and, with drf-spectacular installed,
``byok_api:schema``.
"""

from django.urls import URLPattern, URLResolver, path

from byok.rest.routers import router
from byok.rest.schema import SPECTACULAR

app_name = "byok_api"

urlpatterns: list[URLPattern | URLResolver] = []
if SPECTACULAR:
    from byok.rest.schema_view import SchemaView

    urlpatterns.append(path("schema/", SchemaView.as_view(), name="schema"))
urlpatterns += router.urls
