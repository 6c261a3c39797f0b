"""Django's model backend, resolving the login name the one way the whole project does."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.http import HttpRequest

from apps.accounts.models import User
from apps.accounts.selectors import user_for_login


class LoginNameBackend(ModelBackend):
    """Username in any spelling that folds to it, or the e-mail of the oldest account holding it."""

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> User | None:
        username = username if username is not None else kwargs.get(User.USERNAME_FIELD)
        if not username or password is None:
            return None
        user = user_for_login(username)
        if user is None:
            User().set_password(password)  # as slow as a wrong password: no enumeration by timing
            return None
        if user.check_password(password) and self.user_can_authenticate(user):
            return user
        return None
