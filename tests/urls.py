from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/user/api-keys/", include("byok.rest.urls")),
    path("dashboard/api-keys/", include("byok.urls")),
]
