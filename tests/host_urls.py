"""The URLs of the host in host_settings: its own API next to byok's."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework import serializers
from rest_framework.authtoken.views import obtain_auth_token
from rest_framework.generics import RetrieveUpdateAPIView
from rest_framework.response import Response


class OrderSerializer(serializers.Serializer):
    """Field names byok uses too, with choices of the host's own."""

    status = serializers.ChoiceField(choices=["open", "shipped"])
    environment = serializers.ChoiceField(choices=["staging", "live"])


class LatestOrderView(RetrieveUpdateAPIView):
    serializer_class = OrderSerializer

    def get(self, request, *args, **kwargs):
        return Response({"status": "open", "environment": "live"})


urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/orders/latest/", LatestOrderView.as_view()),
    path("api/auth-token/", obtain_auth_token),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema")),
    path("api/user/api-keys/", include("byok.rest.urls")),
    path("dashboard/api-keys/", include("byok.urls")),
]
