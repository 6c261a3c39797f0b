from __future__ import annotations

import uuid
from typing import Any, ClassVar

from django.contrib.auth.models import AbstractUser, UserManager
from django.db import models

from apps.accounts.login_names import fold, username_characters, validate_no_at_sign


class LoginNameUserManager(UserManager["User"]):
    def get_by_natural_key(self, username: str | None) -> User:
        return self.get(username=fold(username or ""))


class User(AbstractUser):
    """A person who logs in to the back office. Belongs to workspaces through `Membership`.

    Username and e-mail are stored folded (`login_names.fold`) whichever door saves them. An
    e-mail address is not unique: it is no uniqueness oracle across workspaces, and at login it
    names the oldest account holding it (`selectors.user_for_login`).
    """

    username = models.CharField(  # AbstractUser's, without "@"
        "username",
        max_length=150,
        unique=True,
        help_text="Letters, digits and . + - _ only; no @.",
        validators=[username_characters, validate_no_at_sign],
        error_messages={"unique": "A user with that username already exists."},
    )

    objects: ClassVar[LoginNameUserManager] = LoginNameUserManager()

    @classmethod
    def normalize_username(cls, username: str) -> str:
        return fold(username)

    def clean(self) -> None:
        super().clean()
        self.email = fold(self.email)

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.username = fold(self.username)
        self.email = fold(self.email or "")
        super().save(*args, **kwargs)


class Workspace(models.Model):
    """A tenant: one business. Every domain row belongs to exactly one workspace."""

    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=60, unique=True)
    default_language = models.CharField(max_length=8, default="es")
    timezone = models.CharField(max_length=64, default="UTC")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    SUPERVISOR = "supervisor", "Supervisor"
    AGENT = "agent", "Agent"
    VIEWER = "viewer", "Viewer"


# Higher rank includes every right of the lower ones.
ROLE_RANK: dict[str, int] = {Role.VIEWER: 0, Role.AGENT: 1, Role.SUPERVISOR: 2, Role.ADMIN: 3, Role.OWNER: 4}


class Membership(models.Model):
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.AGENT)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "workspace"], name="accounts_membership_uniq")]
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"{self.user} @ {self.workspace} ({self.role})"

    def has_role(self, minimum: str) -> bool:
        return ROLE_RANK[self.role] >= ROLE_RANK[minimum]


class LoginSession(models.Model):
    """One login: every access and refresh token issued from it carries its id (claim `sid`).

    Revoking the session stops all of them at once: logout, and re-use of a rotated refresh
    token (a sign the token was stolen).
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="login_sessions")
    created_at = models.DateTimeField(auto_now_add=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=255, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_reason = models.CharField(max_length=32, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "revoked_at"])]

    def __str__(self) -> str:
        return f"{self.user} {self.created_at:%Y-%m-%d %H:%M}"
