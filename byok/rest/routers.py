"""The API's routes, apart from the URLconf: ``urls`` mounts them, and ``schema_view``
documents them at the prefix they are mounted at."""

from rest_framework.routers import SimpleRouter

from byok.rest.views import APIKeyViewSet

router = SimpleRouter()
router.register("", APIKeyViewSet, basename="apikey")
