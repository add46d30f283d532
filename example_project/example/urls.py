from django.contrib import admin
from django.urls import include, path

from example import views

urlpatterns = [
    path("", views.home, name="home"),
    path("settings/", views.settings_page, name="settings"),
    path("feature/", views.feature, name="feature"),
    path("dashboard/api-keys/", include("byok.urls")),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
    path("api/user/api-keys/", include("byok.rest.urls")),
]
