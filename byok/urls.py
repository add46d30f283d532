"""The pages. Mount with ``path("dashboard/api-keys/", include("byok.urls"))``;
URL names are in the ``byok`` namespace (``byok:dashboard``, ``byok:usage``, …); a
team's keys are managed under ``teams/<team_id>/`` (``byok:team-add``, ``byok:team-test``,
``byok:team-remove``)."""

from django.urls import path

from byok import budget_views, compare_views, views

app_name = "byok"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("usage/", views.usage, name="usage"),
    path("compare/", compare_views.comparison, name="compare"),
    path("add/<str:service>/", views.add_key, name="add"),
    path("import/", views.import_keys, name="import"),
    path("budgets/", budget_views.budgets, name="budgets"),
    path("budgets/<int:budget_id>/", budget_views.edit_budget, name="edit-budget"),
    path("budgets/<int:budget_id>/remove/", budget_views.delete_budget, name="remove-budget"),
    path("keys/<uuid:key_id>/test/", views.test_key, name="test"),
    path("keys/<uuid:key_id>/remove/", views.remove_key, name="remove"),
    # A team's keys, for its owners and admins (a 404 to anyone else).
    path("teams/<str:team_id>/add/<str:service>/", views.add_key, name="team-add"),
    path("teams/<str:team_id>/keys/<uuid:key_id>/test/", views.test_key, name="team-test"),
    path("teams/<str:team_id>/keys/<uuid:key_id>/remove/", views.remove_key, name="team-remove"),
    path("banner/dismiss/", views.dismiss_banner, name="dismiss-banner"),
    path("notifications/", views.notification_settings, name="notifications"),
]
