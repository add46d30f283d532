"""The Budgets page: the user's own budgets (add, change, remove) and the site's.

Every change goes through :func:`byok.budgets.set_budget` and
:func:`~byok.budgets.remove_budget`, the helpers the REST API and the admin use, so
a value they refuse is refused here with the same message, next to its field. A
budget the site set is shown but cannot be changed: its id, like another user's
budget's, is a 404 here.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db import router, transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from byok.budget_bars import budget_bars
from byok.budgets import remove_budget, set_budget
from byok.forms import BudgetForm
from byok.models import Budget, BudgetSource, fits_an_id
from byok.views import page


def own_budget(request: HttpRequest, budget_id: int) -> Budget:
    """One of the budgets the signed-in user set; any other budget is a 404."""
    if not fits_an_id(budget_id):
        raise Http404
    editable = Budget.objects.for_user(request.user).filter(
        team__isnull=True, source=BudgetSource.USER, default_name=""
    )
    return get_object_or_404(editable, pk=budget_id)


@login_required
@require_http_methods(["GET", "POST"])
def budgets(request: HttpRequest) -> HttpResponse:
    """The user's budgets and the site's, with the form to add one."""
    form = BudgetForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            set_budget(request.user, **form.budget_values(), actor=request.user, request=request)
        except ValidationError as error:
            form.add_validation_error(error)
        else:
            messages.success(request, _("Your budget was saved."), fail_silently=True)
            return redirect("byok:budgets")
    status = 400 if request.method == "POST" else 200
    context = {"form": form, "bars": budget_bars(request.user)}
    return page(request, "byok/budgets.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def edit_budget(request: HttpRequest, budget_id: int) -> HttpResponse:
    """Change one of the user's budgets. A new service, period or "counts spend on"
    makes it another budget: that one is set (or changed, if the user has it) and
    this one removed, together."""
    budget = own_budget(request, budget_id)
    form = BudgetForm(request.POST if request.method == "POST" else None, budget=budget)
    if request.method == "POST" and form.is_valid():
        try:
            with transaction.atomic(using=router.db_for_write(Budget)):
                saved = set_budget(
                    request.user, **form.budget_values(), actor=request.user, request=request
                )
                if saved.pk != budget.pk:
                    remove_budget(budget, actor=request.user, request=request)
        except ValidationError as error:
            form.add_validation_error(error)
        else:
            messages.success(request, _("Your budget was saved."), fail_silently=True)
            return redirect("byok:budgets")
    status = 400 if request.method == "POST" else 200
    context = {"form": form, "budget": budget}
    return page(request, "byok/edit_budget.html", context, status=status)


@login_required
@require_POST
def delete_budget(request: HttpRequest, budget_id: int) -> HttpResponse:
    remove_budget(own_budget(request, budget_id), actor=request.user, request=request)
    messages.success(request, _("The budget was removed."), fail_silently=True)
    return redirect("byok:budgets")
