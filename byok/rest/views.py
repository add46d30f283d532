"""The API-keys endpoints. Everything is scoped to the signed-in user: another
user's key is a 404, and staff get no special access here."""

from __future__ import annotations

import builtins
import logging
import uuid
from collections.abc import Callable
from functools import partial, wraps
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from django.http import Http404, HttpRequest
from django.templatetags.static import static
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy
from django.views.decorators.debug import sensitive_variables
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, Throttled, ValidationError
from rest_framework.filters import OrderingFilter
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle

from byok import kms, rls
from byok.comparison import Period, compare
from byok.conf import conf
from byok.exceptions import (
    DecryptionError,
    KeyRejected,
    KmsError,
    TooManyTests,
    UnknownService,
)
from byok.importing import import_file
from byok.keys import (
    add_user_api_key,
    remove_user_api_key,
    reveal_user_api_key,
    test_user_api_key,
    update_user_api_key,
)
from byok.models import UserAPIKey
from byok.probes import test_credentials
from byok.rate_limits import probes_paid_by, spend_test_budget
from byok.rest import serializers as s
from byok.rest.comparison_serializers import ComparisonQuerySerializer, ComparisonSerializer
from byok.rest.filters import APIKeyFilter, QueryFilterBackend
from byok.rest.parsers import JSONParser
from byok.rest.schema import (
    OpenApiParameter,
    OpenApiResponse,
    OpenApiTypes,
    extend_schema,
    extend_schema_view,
    schema_class,
)
from byok.rest.throttles import RevealThrottle
from byok.services.registry import registry
from byok.stats import keys_per_service, stats_for
from byok.usage import usage_by_model, usage_for
from byok.validation import validate_credentials

logger = logging.getLogger("byok.rest")


class HostSetting:
    """A view attribute that reads a DRF setting on each access (so tests can override
    it), unless a route sets it on the view instance (as ``@action`` kwargs do)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, view: object, owner: type | None = None) -> Any:
        return getattr(api_settings, self.name)


ERRORS = {
    400: OpenApiResponse(
        OpenApiTypes.OBJECT,
        description=(
            "Bad input: each field name (a credential's own fields included) to a list of "
            "{message, code}."
        ),
    ),
    401: OpenApiResponse(s.ErrorSerializer, description="Not signed in."),
    403: OpenApiResponse(s.ErrorSerializer, description="Not signed in, or no CSRF token."),
    406: OpenApiResponse(
        s.ErrorSerializer, description="No acceptable response type (the API speaks JSON)."
    ),
    405: OpenApiResponse(
        s.ErrorSerializer,
        description=(
            "Method not allowed (an id such as test or stats is another endpoint's path)."
        ),
    ),
}
NOT_FOUND = {404: OpenApiResponse(s.ErrorSerializer, description="No such key of yours.")}
SERVICE_GONE = {
    409: OpenApiResponse(
        s.ErrorSerializer, description="A new secret was sent, but the key's service is gone."
    )
}
KEY_ID = [
    OpenApiParameter("id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The key's id.")
]
UNREADABLE = {
    409: OpenApiResponse(
        s.ErrorSerializer, description="The key cannot be decrypted, or its service is gone."
    )
}
THROTTLED = {429: OpenApiResponse(s.ErrorSerializer, description="Too many requests.")}
TEST_STATUS = {
    400: OpenApiResponse(
        OpenApiTypes.OBJECT,
        description=(
            "Bad input, or the provider rejected the key: then {credentials: [{message, "
            "code: invalid_key}], test: {…}} and nothing is stored."
        ),
    ),
}
#: What a PUT or PATCH answers.
UPDATED = {
    200: s.TestedKeySerializer,
    **ERRORS,
    **TEST_STATUS,
    **NOT_FOUND,
    **SERVICE_GONE,
    **THROTTLED,
}


class RowLevelSecurity:
    """DRF authenticates in the view (a token, basic auth), after byok's middleware set
    the session's user: with row-level security on, the connection is scoped again to
    the user DRF found. The middleware still clears it after the request."""

    def perform_authentication(self, request: Request) -> None:
        super().perform_authentication(request)  # type: ignore[misc]
        if rls.enabled():
            scope = rls.current()
            user_id = rls.user_id(request.user)
            if scope.user_id != user_id:
                rls.enter(scope._replace(user_id=user_id))


class FieldErrors:
    """Bad input as ``{field: [{message, code}]}``, whether a serializer or one of byok's
    helpers (a Django ``ValidationError``) found it."""

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, DjangoValidationError):
            exc = ValidationError(as_serializer_error(exc))
        response: Response = super().handle_exception(exc)  # type: ignore[misc]
        if isinstance(exc, ValidationError):
            details = exc.get_full_details()
            response.data = details if isinstance(details, dict) else {"non_field_errors": details}
        return response


def paid_probes(view_method: Callable[..., Response]) -> Callable[..., Response]:
    """The probes ``view_method`` sends spend the user's ``byok_test`` budget, each when
    it is about to call its provider (so bad input spends nothing)."""

    @wraps(view_method)
    def paying(view: Any, request: Request, *args: Any, **kwargs: Any) -> Response:
        with probes_paid_by(request.user):
            return view_method(view, request, *args, **kwargs)

    return paying


class RevealAllowed(BasePermission):
    """``BYOK["ALLOW_REVEAL"]``, checked before the key is looked up or a throttle spent."""

    message = _("Showing stored keys again is turned off on this site.")

    def has_permission(self, request: Request, view: Any) -> bool:
        return conf.ALLOW_REVEAL


@extend_schema_view(
    list=extend_schema(
        operation_id="byok_keys_list",
        parameters=[
            OpenApiParameter("is_active", bool, description="Only active (or inactive) keys."),
            OpenApiParameter(
                "service",
                {"type": "string", "pattern": s.SERVICE_ID_PATTERN, "maxLength": 64},
                description="Only keys of this service (any id, registered or not).",
            ),
        ],
        summary="List your keys, masked",
        responses={
            200: s.APIKeySerializer(many=True),
            **ERRORS,
        },
    ),
    retrieve=extend_schema(
        operation_id="byok_keys_retrieve",
        parameters=KEY_ID,
        summary="One of your keys, masked",
        responses={
            200: s.APIKeySerializer,
            **ERRORS,
            **NOT_FOUND,
        },
    ),
    create=extend_schema(
        operation_id="byok_keys_create",
        summary="Store a key (tested first, by default)",
        request=s.APIKeyCreateSerializer,
        responses={201: s.TestedKeySerializer, **ERRORS, **TEST_STATUS, **THROTTLED},
    ),
    update=extend_schema(
        operation_id="byok_keys_update",
        parameters=KEY_ID,
        summary="Change a key's settings, or replace its secret",
        request=s.APIKeyUpdateSerializer,
        responses=UPDATED,
    ),
    partial_update=extend_schema(
        operation_id="byok_keys_partial_update",
        parameters=KEY_ID,
        summary="Change some of a key's settings, or replace its secret",
        request=s.APIKeyUpdateSerializer,
        responses=UPDATED,
    ),
    destroy=extend_schema(
        operation_id="byok_keys_destroy",
        parameters=KEY_ID,
        summary="Delete a key (its secret is erased)",
        responses={204: None, **ERRORS, **NOT_FOUND},
    ),
)
class APIKeyViewSet(RowLevelSecurity, FieldErrors, viewsets.ModelViewSet[UserAPIKey]):
    """Your API keys for third-party services. Secrets are write-only."""

    serializer_class = s.APIKeySerializer
    permission_classes = [IsAuthenticated]
    parser_classes = [JSONParser]
    filter_backends = [QueryFilterBackend, OrderingFilter]
    filterset_class = APIKeyFilter
    ordering_fields = [
        "created_at",
        "updated_at",
        "service",
        "nickname",
        "environment",
        "status",
        "usage_count",
        "last_used_at",
        "last_tested_at",
    ]
    ordering = ["-created_at"]
    lookup_value_regex = "[^/]+"
    pagination_class = HostSetting("DEFAULT_PAGINATION_CLASS")
    schema = schema_class()
    not_found_message = _lazy("No API key of yours has this id.")

    def get_queryset(self) -> QuerySet[UserAPIKey]:
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return UserAPIKey.objects.none()
        keys = UserAPIKey.objects.for_user(self.request.user).with_default_flag()
        # Only re-testing and revealing decrypt the secret: the rest never fetch it.
        return keys if self.action in ("retest", "reveal") else keys.masked()

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """The host's pagination when it sets one; else a plain array of at most
        ``BYOK["MAX_KEYS_PER_USER"]`` keys, with ``X-Byok-Truncated: true`` when the
        user holds more (stored before the cap was lowered)."""
        if self.paginator is not None:
            return super().list(request, *args, **kwargs)
        limit = conf.MAX_KEYS_PER_USER
        keys = list(self.filter_queryset(self.get_queryset())[: limit + 1])
        headers = {"X-Byok-Truncated": "true"} if len(keys) > limit else {}
        return Response(self.get_serializer(keys[:limit], many=True).data, headers=headers)

    def get_object(self) -> UserAPIKey:
        try:
            uuid.UUID(str(self.kwargs[self.lookup_field]))
            return super().get_object()
        except (ValueError, Http404):
            raise NotFound(self.not_found_message) from None

    def initialize_request(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Request:
        # What sensitive_post_parameters() does: error reports hide every POST field.
        request.sensitive_post_parameters = "__ALL__"  # type: ignore[attr-defined]
        return super().initialize_request(request, *args, **kwargs)

    def get_throttles(self) -> builtins.list[BaseThrottle]:
        """The host's throttles, plus ours where a secret is shown.

        Calls to providers spend the ``byok_test`` budget in the view, when a probe
        is about to send its first request (:func:`~byok.rate_limits.probes_paid_by`):
        a request refused for bad input spends nothing. An import that tests counts
        each key it may test, in :meth:`import_keys`.
        """
        throttles = super().get_throttles()
        if self.action == "reveal":
            throttles.append(RevealThrottle())
        return throttles

    @sensitive_variables()
    def finalize_response(
        self, request: Request, response: Response, *args: Any, **kwargs: Any
    ) -> Response:
        """Render ``reveal/``'s answer here, in a frame error reports hide.

        Rendered later, by Django's handler, the revealed secret would sit unprotected
        in the renderer's local variables if a renderer failed.
        """
        response = super().finalize_response(request, response, *args, **kwargs)
        if getattr(self, "action", None) == "reveal":
            response.render()
        return response

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, TooManyTests):
            exc = Throttled(wait=exc.wait)
        if isinstance(exc, DecryptionError):
            logger.error(
                "API key %s cannot be decrypted (encryption key id %s)",
                exc.row,
                exc.encryption_key_id,
            )
            return Response(
                {
                    "detail": _(
                        "This key cannot be decrypted with the site's encryption keys; "
                        "the site's administrators have been told."
                    )
                },
                status=status.HTTP_409_CONFLICT,
            )
        if isinstance(exc, UnknownService):
            return Response(
                {"detail": _("This key's service is no longer available on this site.")},
                status=status.HTTP_409_CONFLICT,
            )
        if isinstance(exc, KmsError):
            return Response(
                {"detail": kms.unavailable(exc)},
                status=status.HTTP_503_SERVICE_UNAVAILABLE,
                headers={"Retry-After": str(kms.RETRY_AFTER)},
            )
        if isinstance(exc, KeyRejected):
            details = ValidationError(as_serializer_error(exc)).get_full_details()
            return Response(
                {**details, "test": exc.probe_result.as_dict()},  # type: ignore[dict-item]
                status=status.HTTP_400_BAD_REQUEST,
            )
        return super().handle_exception(exc)

    @paid_probes
    @sensitive_variables()
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = s.APIKeyCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        key = self.add_key(serializer.validated_data)
        return Response(s.TestedKeySerializer(key).data, status=status.HTTP_201_CREATED)

    @sensitive_variables()
    def add_key(self, data: dict[str, Any]) -> UserAPIKey:
        """Store the key a valid create asks for, owned by the signed-in user."""
        request = self.request
        return add_user_api_key(
            request.user,
            data["service"],
            data["credentials"],
            nickname=data["nickname"],
            environment=data["environment"],
            test=data["test"],
            is_default=data["is_default"],
            expires_at=data["expires_at"],
            actor=request.user,
            request=request._request,
        )

    @paid_probes
    @sensitive_variables()
    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        key = self.get_object()
        serializer = s.APIKeyUpdateSerializer(
            data=request.data, partial=kwargs.get("partial", False)
        )
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        test = data.pop("test", True)
        key = update_user_api_key(
            key, **data, test=test, actor=request.user, request=request._request
        )
        return Response(s.TestedKeySerializer(key).data)

    def perform_destroy(self, instance: UserAPIKey) -> None:
        remove_user_api_key(instance, actor=self.request.user, request=self.request._request)

    @extend_schema(
        operation_id="byok_keys_test",
        summary="Test candidate credentials without storing them",
        request=s.CandidateSerializer,
        responses={200: s.CandidateResultSerializer, **ERRORS, **THROTTLED},
    )
    @action(detail=False, methods=["post"], url_path="test")
    @paid_probes
    @sensitive_variables()
    def test(self, request: Request) -> Response:
        serializer = s.CandidateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        service, environment = data["service"], data.get("environment")
        checked = validate_credentials(service, data["credentials"], environment=environment)
        body = test_credentials(service, data["credentials"], environment=environment).as_dict()
        if not checked.ok:
            body["field_errors"] = {
                name: [{"message": p.message, "code": p.code} for p in problems]
                for name, problems in checked.problems.items()
            }
        return Response(body)

    @extend_schema(
        operation_id="byok_keys_retest",
        parameters=KEY_ID,
        summary="Test a stored key again",
        request=None,
        responses={200: s.TestedKeySerializer, **ERRORS, **NOT_FOUND, **UNREADABLE, **THROTTLED},
    )
    @action(detail=True, methods=["post"], url_path="test", url_name="retest")
    @paid_probes
    @sensitive_variables()
    def retest(self, request: Request, pk: str | None = None, **kwargs: Any) -> Response:
        key = self.get_object()
        key.probe_result = test_user_api_key(key, actor=request.user, request=request._request)
        key.warnings = key.probe_result.warnings
        return Response(s.TestedKeySerializer(key).data)

    @extend_schema(
        operation_id="byok_keys_reveal",
        parameters=KEY_ID,
        summary="Show a stored key's plaintext (audited and throttled)",
        request=None,
        responses={
            200: s.RevealSerializer,
            **ERRORS,
            403: OpenApiResponse(
                s.ErrorSerializer,
                description="Not signed in, no CSRF token, or BYOK['ALLOW_REVEAL'] is off.",
            ),
            **NOT_FOUND,
            **UNREADABLE,
            **THROTTLED,
        },
    )
    @action(detail=True, methods=["post"], permission_classes=[IsAuthenticated, RevealAllowed])
    @sensitive_variables()
    def reveal(self, request: Request, pk: str | None = None, **kwargs: Any) -> Response:
        key = self.get_object()
        credentials = reveal_user_api_key(key, actor=request.user, request=request._request)
        body: dict[str, Any] = {"credentials": credentials}
        if len(credentials) == 1:
            body["key"] = next(iter(credentials.values()))
        return Response(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    @extend_schema(
        operation_id="byok_keys_import",
        summary="Import keys from a .env file or a JSON list",
        request={
            "multipart/form-data": s.ImportUploadSerializer,
            "application/json": s.ImportTextSerializer,
        },
        responses={
            200: s.ImportResultSerializer,
            400: OpenApiResponse(
                OpenApiTypes.OBJECT,
                description=(
                    "The file is not a small text file of keys, or entries failed and nothing "
                    "was imported: then {file: [{message, code: import_failed}], entries: […]}."
                ),
            ),
            **ERRORS,
            **THROTTLED,
        },
    )
    @action(
        detail=False,
        methods=["post"],
        url_path="import",
        url_name="import",
        parser_classes=[JSONParser, MultiPartParser],
    )
    @sensitive_variables()
    def import_keys(self, request: Request) -> Response:
        uploaded = request.content_type.startswith("multipart/")
        serializer_class = s.ImportUploadSerializer if uploaded else s.ImportTextSerializer
        serializer = serializer_class(data=request.data)
        serializer.is_valid(raise_exception=True)
        options = serializer.validated_data
        try:
            report = import_file(
                request.user,
                options.pop("data"),
                actor=request.user,
                request=request._request,
                test_budget=partial(spend_test_budget, request.user),
                **options,
            )
        except TooManyTests as refused:
            raise Throttled(wait=refused.wait) from None
        body: dict[str, Any] = dict(s.ImportResultSerializer(report).data)
        if report.refused:
            error = {"message": report.failure_message(), "code": "import_failed"}
            body = {"file": [error], **body}
            return Response(body, status=status.HTTP_400_BAD_REQUEST)
        return Response(body)

    @extend_schema(
        operation_id="byok_keys_services",
        summary="The catalog of services, with what you have stored for each",
        responses={200: s.ServiceSerializer(many=True), **ERRORS},
    )
    @action(detail=False, methods=["get"], filter_backends=[], pagination_class=None)
    def services(self, request: Request) -> Response:
        counts = keys_per_service(request.user)
        empty = {"keys": 0, "active": 0}
        catalog = [
            {
                **service.catalog(),
                "icon_url": static(service.icon),
                "connected": counts.get(service.id, empty)["active"] > 0,
                "key_count": counts.get(service.id, empty)["keys"],
            }
            for service in registry
        ]
        return Response(s.ServiceSerializer(catalog, many=True).data)

    @extend_schema(
        operation_id="byok_keys_stats",
        summary="Connected services, this month's estimated cost and API calls",
        responses={200: s.StatsSerializer, **ERRORS},
    )
    @action(detail=False, methods=["get"], filter_backends=[], pagination_class=None)
    def stats(self, request: Request) -> Response:
        body = stats_for(request.user)
        return Response(s.StatsSerializer(body).data)

    @extend_schema(
        operation_id="byok_keys_usage",
        summary="Daily calls, units and estimated cost per service, by whose key served them",
        parameters=[s.UsageQuerySerializer],
        responses={200: s.UsageSerializer, **ERRORS},
    )
    @action(detail=False, methods=["get"], filter_backends=[], pagination_class=None)
    def usage(self, request: Request) -> Response:
        query = s.UsageQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        body = usage_for(
            request.user,
            days=query.validated_data["days"],
            service=query.validated_data.get("service"),
        )
        return Response(s.UsageSerializer(body).data)

    @extend_schema(
        operation_id="byok_keys_usage_by_model",
        summary="Calls, tokens and estimated cost per service and model, by whose key served them",
        parameters=[s.UsageQuerySerializer],
        responses={200: s.ModelUsageSerializer, **ERRORS},
    )
    @action(
        detail=False,
        methods=["get"],
        url_path="usage/by-model",
        url_name="usage-by-model",
        filter_backends=[],
        pagination_class=None,
    )
    def usage_by_model(self, request: Request) -> Response:
        query = s.UsageQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        body = usage_by_model(
            request.user,
            days=query.validated_data["days"],
            service=query.validated_data.get("service"),
        )
        return Response(s.ModelUsageSerializer(body).data)

    @extend_schema(
        operation_id="byok_keys_comparison",
        summary=(
            "Your keys and the platform's side by side: calls, error and rate-limit rates, "
            "latency percentiles, cost, list-price re-pricing and tips"
        ),
        parameters=[ComparisonQuerySerializer],
        responses={200: ComparisonSerializer, **ERRORS},
    )
    @action(detail=False, methods=["get"], filter_backends=[], pagination_class=None)
    def comparison(self, request: Request) -> Response:
        query = ComparisonQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        body = compare(
            request.user,
            Period.named(query.validated_data["period"]),
            category=query.validated_data.get("category"),
        )
        return Response(ComparisonSerializer(body).data)
