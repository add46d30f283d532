"""The API's routes, apart from the URLconf: ``urls`` mounts them, and ``schema_view``
documents them at the prefix they are mounted at."""

from rest_framework.routers import SimpleRouter

from byok.rest.budget_views import BudgetViewSet
from byok.rest.views import APIKeyViewSet

router = SimpleRouter()
# Before the keys: their ``{id}/`` would take ``budgets/``.
router.register("budgets", BudgetViewSet, basename="budget")
router.register("", APIKeyViewSet, basename="apikey")
