"""Django's session login forms (dashboard and admin) under the API's login counters.

One set of counters per account and per IP, whichever door is knocked on: an attacker cannot
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
from chatbot.exceptions import TooManyRequests


class ThrottledLoginMixin:
    request: Any
    cleaned_data: dict[str, Any]
    # Seconds the caller must wait; non-zero only when this attempt was refused for that reason.
    retry_after = 0

    def clean(self) -> dict[str, Any]:
        username = str(self.cleaned_data.get("username") or "")
        if not username or not self.cleaned_data.get("password"):
            blank: dict[str, Any] = super().clean()  # type: ignore[misc]  # a field error; no password checked
            return blank
        ip = (BaseThrottle().get_ident(self.request) or None) if self.request is not None else None
        try:
            attempt = login_throttle.begin(identifier=username, ip=ip)
        except TooManyRequests as exc:
            self.retry_after = exc.retry_after or 1
            raise ValidationError(
                _("Too many failed logins; try again in %(minutes)s min."),
                code="throttled",
                params={"minutes": max(1, round(self.retry_after / 60))},
            ) from exc
        cleaned: dict[str, Any] = super().clean()  # type: ignore[misc]
        login_throttle.succeeded(attempt)
        return cleaned


class ThrottledAuthenticationForm(ThrottledLoginMixin, AuthenticationForm):
    pass


class ThrottledAdminAuthenticationForm(ThrottledLoginMixin, AdminAuthenticationForm):
    pass
