"""JWT authentication bound to a live login session (claim `sid`)."""

from __future__ import annotations

import uuid
from typing import Any

from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken
from rest_framework_simplejwt.settings import api_settings

from apps.accounts.models import LoginSession, User


class SessionJWTAuthentication(JWTAuthentication):
    """An access token is good only while the login that issued it has not been revoked.

    One indexed query per request (session joined with its user) replaces simplejwt's user
    lookup, so logout and refresh-token re-use take effect at once, not at token expiry.
    """

    def get_user(self, validated_token: Any) -> User:  # type: ignore[override]
        try:
            session_id = uuid.UUID(str(validated_token["sid"]))
            user_id = int(validated_token[api_settings.USER_ID_CLAIM])
        except (KeyError, ValueError) as exc:
            raise InvalidToken("Token carries no valid session.") from exc
        session = (
            LoginSession.objects.select_related("user")
            .filter(pk=session_id, user_id=user_id, revoked_at__isnull=True)
            .first()
        )
        if session is None or not session.user.is_active:
            raise AuthenticationFailed("This login has ended; log in again.", code="session_revoked")
        return session.user
