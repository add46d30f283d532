from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from byok.models import UserAPIKey


@login_required
def home(request: HttpRequest) -> HttpResponse:
    keys = UserAPIKey.objects.for_user(request.user).with_default_flag()
    return render(request, "example/home.html", {"keys": keys})
