"""Login names: how usernames and e-mails are normalised, and what a username may hold."""

from __future__ import annotations

import unicodedata

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator


def fold(value: str) -> str:
    """The one spelling of a username or e-mail, used to store it and to look it up.

    NFKC (so "ﬅ" is "st"), then case folded through upper case: casefold() alone keeps dotless
    "ı", while upper() maps "ı" and "ſ" to "I" and "S" as PostgreSQL's UPPER() does, so names the
    database would call equal can never be two spellings of one login.
    """
    value = unicodedata.normalize("NFKC", value.strip())
    return unicodedata.normalize("NFKC", value.upper().casefold())


def validate_no_at_sign(value: str) -> None:
    # An identifier with "@" is read as an e-mail address at login; a username must not look like one.
    if "@" in value:
        raise ValidationError("A username cannot contain @.", code="invalid_username")


username_characters = RegexValidator(
    r"^[\w.+-]+\Z", "Letters, digits and . + - _ only.", code="invalid_username"
)


def namespaced(name: str, workspace_slug: str) -> str:
    """A member's login name in their workspace's namespace: "<name>.<slug>".

    Slugs hold no dots, so the part after the last dot always names the workspace: two
    workspaces can never produce the same login name, and "taken" speaks only of one's own.
    """
    return fold(f"{name}.{workspace_slug}")
