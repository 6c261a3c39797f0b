"""Secrets at rest: MultiFernet over `FERNET_KEYS` (the first key encrypts, every key decrypts)."""

from __future__ import annotations

import hashlib
import hmac
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ImproperlyConfigured("FERNET_KEYS is not set: stored secrets cannot be encrypted or read")
    try:
        return MultiFernet([Fernet(key.strip().encode()) for key in keys])
    except ValueError as exc:
        raise ImproperlyConfigured("FERNET_KEYS holds a value that is not a Fernet key") from exc


def fernet() -> MultiFernet:
    return _fernet(tuple(settings.FERNET_KEYS))


def encrypt(plaintext: str) -> str:
    return fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise ImproperlyConfigured("a stored secret cannot be decrypted with any key in FERNET_KEYS") from exc


def rotate(token: str) -> str:
    """Re-encrypt under the first key (MultiFernet.rotate keeps the original timestamp)."""
    return fernet().rotate(token.encode()).decode()


def lookup_digests(value: str, *, purpose: str) -> list[str]:
    """HMAC-SHA256 of `value` under each key of FERNET_KEYS (the first is the one to store): a secret
    found by an indexed column without decrypting every row, and without a hash that could be
    brute-forced from a database dump alone. Rows hashed under an older key are still found during a
    rotation; `rotate_keys` re-saves them under the first."""
    digests = []
    for key in settings.FERNET_KEYS:
        derived = hmac.new(key.strip().encode(), f"lookup:{purpose}".encode(), hashlib.sha256).digest()
        digests.append(hmac.new(derived, value.encode(), hashlib.sha256).hexdigest())
    return digests


class EncryptedTextField(models.TextField[str, str]):
    """A text column holding a Fernet token; Python code only ever sees the plaintext.

    Empty strings are stored as empty strings, so "not configured" stays queryable.
    """

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> str | None:
        if not value:
            return value
        return decrypt(value)

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        if not value:
            return value
        return encrypt(str(value))


def encrypted_fields() -> list[tuple[type[models.Model], list[str]]]:
    """Every model with encrypted columns, for key rotation."""
    from django.apps import apps

    found = []
    for model in apps.get_models():
        names = [f.name for f in model._meta.get_fields() if isinstance(f, EncryptedTextField)]
        if names:
            found.append((model, names))
    return found
