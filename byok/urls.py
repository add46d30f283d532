"""The pages. Mount with ``path("dashboard/api-keys/", include("byok.urls"))``;
URL names are in the ``byok`` namespace (``byok:dashboard``, ``byok:usage``, …)."""

from django.urls import path

from byok import views

app_name = "byok"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("usage/", views.usage, name="usage"),
    path("add/<str:service>/", views.add_key, name="add"),
    path("import/", views.import_keys, name="import"),
    path("keys/<uuid:key_id>/test/", views.test_key, name="test"),
    path("keys/<uuid:key_id>/remove/", views.remove_key, name="remove"),
    path("banner/dismiss/", views.dismiss_banner, name="dismiss-banner"),
    path("notifications/", views.notification_settings, name="notifications"),
]
