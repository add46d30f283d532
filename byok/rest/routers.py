"""The API's routes, apart from the URLconf: ``urls`` mounts them, and ``schema_view``
documents them at the prefix they are mounted at."""

from rest_framework.routers import SimpleRouter

from byok.rest.budget_views import BudgetViewSet
from byok.rest.team_views import TeamKeyViewSet, TeamViewSet
from byok.rest.views import APIKeyViewSet

router = SimpleRouter()
# Before the keys: their ``{id}/`` would take ``budgets/`` and ``teams/``.
router.register("budgets", BudgetViewSet, basename="budget")
router.register(r"teams/(?P<team_pk>[^/]+)/keys", TeamKeyViewSet, basename="teamkey")
router.register("teams", TeamViewSet, basename="team")
router.register("", APIKeyViewSet, basename="apikey")
