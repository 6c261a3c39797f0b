"""One domain error hierarchy, turned into `{"error": {"code", "message"}}` in one place."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import exceptions as drf_exceptions
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler


class DomainError(Exception):
    """A rule of the platform said no. `permanent` tells retrying code whether to try again."""

    code: str = "error"
    status_code: int = status.HTTP_400_BAD_REQUEST
    permanent = True

    def __init__(
        self,
        message: str = "",
        *,
        code: str | None = None,
        details: Any = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message or self.code)
        self.message = message or self.code
        if code:
            self.code = code
        self.details = details
        self.retry_after = retry_after


class ValidationFailed(DomainError):
    code = "invalid"


class NotFound(DomainError):
    code = "not_found"
    status_code: int = status.HTTP_404_NOT_FOUND


class Forbidden(DomainError):
    code = "forbidden"
    status_code: int = status.HTTP_403_FORBIDDEN


class Conflict(DomainError):
    code = "conflict"
    status_code: int = status.HTTP_409_CONFLICT


class Unauthorized(DomainError):
    code = "not_authenticated"
    status_code: int = status.HTTP_401_UNAUTHORIZED


class TooManyRequests(DomainError):
    code = "throttled"
    status_code: int = status.HTTP_429_TOO_MANY_REQUESTS
    permanent = False


class TransientError(DomainError):
    """Worth retrying later: an outside service is slow, down or asked us to slow down."""

    code = "unavailable"
    status_code: int = status.HTTP_503_SERVICE_UNAVAILABLE
    permanent = False


def _body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    return {"error": error}


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DomainError):
        response = Response(_body(exc.code, exc.message, exc.details), status=exc.status_code)
        if exc.retry_after is not None:
            response["Retry-After"] = str(exc.retry_after)
        return response
    if isinstance(exc, Http404):
        exc = drf_exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = drf_exceptions.PermissionDenied()
    drf_response = exception_handler(exc, context)
    if drf_response is None or not isinstance(exc, drf_exceptions.APIException):
        return drf_response
    if isinstance(exc, drf_exceptions.ValidationError):
        drf_response.data = _body("invalid", "The request is not valid.", exc.detail)
    else:
        detail = exc.detail
        code = detail.code if isinstance(detail, drf_exceptions.ErrorDetail) else exc.default_code
        message = str(detail) if isinstance(detail, str) else str(exc.default_detail)
        drf_response.data = _body(str(code), message)
    return drf_response


# --- Django's own error pages (handler400/handler404), for what never reaches a DRF view ---------------
def _api(request: HttpRequest) -> bool:
    return request.path_info.startswith("/api/")


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """A request Django refuses itself (a SuspiciousOperation): under /api/, the API's error body.

    A body over DATA_UPLOAD_MAX_MEMORY_SIZE is a 413; too many form fields and the like stay a 400.
    """
    if not _api(request):
        return defaults.bad_request(request, exception)
    if isinstance(exception, RequestDataTooBig):
        return JsonResponse(
            _body("too_large", "The request body is larger than the server accepts."),
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    return JsonResponse(_body("bad_request", "The request is not valid."), status=status.HTTP_400_BAD_REQUEST)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """A URL no route matches (`/api/contacts/abc/`): under /api/, the API's error body."""
    if not _api(request):
        return defaults.page_not_found(request, exception)
    return JsonResponse(_body("not_found", "Not found."), status=status.HTTP_404_NOT_FOUND)
