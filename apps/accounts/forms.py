"""Django's session login forms (dashboard and admin) under the API's failed-login counters.

One set of counters per username and per IP, whichever door is knocked on: an attacker cannot
get five guesses on the API, five on the dashboard and five on the admin.
"""

from __future__ import annotations

from typing import Any

from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _
from rest_framework.throttling import BaseThrottle

from apps.accounts import login_throttle


class ThrottledLoginMixin:
    request: Any
    cleaned_data: dict[str, Any]
    # Seconds the caller must wait; non-zero only when this attempt was refused for that reason.
    retry_after = 0

    def clean(self) -> dict[str, Any]:
        username = str(self.cleaned_data.get("username") or "")
        ip = (BaseThrottle().get_ident(self.request) or None) if self.request is not None else None
        wait = login_throttle.retry_after(username=username, ip=ip)
        if wait:
            self.retry_after = wait
            raise ValidationError(
                _("Too many failed logins; try again in %(minutes)s min."),
                code="throttled",
                params={"minutes": max(1, round(wait / 60))},
            )
        try:
            cleaned: dict[str, Any] = super().clean()  # type: ignore[misc]
        except ValidationError as exc:
            if exc.code == "invalid_login":
                login_throttle.record_failure(username=username, ip=ip)
            raise
        login_throttle.clear(username=username)
        return cleaned


class ThrottledAuthenticationForm(ThrottledLoginMixin, AuthenticationForm):
    pass


class ThrottledAdminAuthenticationForm(ThrottledLoginMixin, AdminAuthenticationForm):
    pass
