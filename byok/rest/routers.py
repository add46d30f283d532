"""The API's routes, apart from the URLconf: ``urls`` mounts them, and ``schema_view``
documents them at the prefix they are mounted at."""

from rest_framework.routers import SimpleRouter

from byok.rest.team_views import TeamKeyViewSet, TeamViewSet
from byok.rest.views import APIKeyViewSet

router = SimpleRouter()
# The team routes first: ``teams/`` would otherwise read as the id of a key of yours.
router.register(r"teams/(?P<team_pk>[^/]+)/keys", TeamKeyViewSet, basename="teamkey")
router.register("teams", TeamViewSet, basename="team")
router.register("", APIKeyViewSet, basename="apikey")
