from __future__ import annotations

import uuid
from typing import Any, ClassVar

from django.contrib.auth.models import AbstractUser, UserManager
from django.db import models
from django.utils import timezone

from apps.accounts.login_names import fold, username_characters, validate_no_at_sign


class LoginNameUserManager(UserManager["User"]):
    def get_by_natural_key(self, username: str | None) -> User:
        return self.get(username=fold(username or ""))


class User(AbstractUser):
    """A person who logs in to the back office. Belongs to workspaces through `Membership`.

    Username and e-mail are stored folded (`login_names.fold`) whichever door saves them. An
    e-mail address is not unique: it is no uniqueness oracle across workspaces, and at login it
    names the oldest account holding it (`selectors.user_for_login`).

    Saving a new or removed password ends every login of the user (API tokens at once; cookie
    sessions anyway, as their auth hash no longer matches; live sockets at their next check).
    A model hook, not a service, because Django's own forms and commands set passwords (the
    admin's two password forms, `manage.py changepassword`) and no service sits in their path;
    it mirrors Django's own `password_changed` hook, so a hash upgrade at login does not count.
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

    _password_removed = False

    @classmethod
    def normalize_username(cls, username: str) -> str:
        return fold(username)

    def clean(self) -> None:
        super().clean()
        self.email = fold(self.email)

    def set_unusable_password(self) -> None:
        super().set_unusable_password()
        self._password_removed = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.username = fold(self.username)
        self.email = fold(self.email or "")
        # `_password` is Django's own marker of set_password(), cleared by its save().
        raw_password_set = getattr(self, "_password", None) is not None
        password_changed = not self._state.adding and (raw_password_set or self._password_removed)
        super().save(*args, **kwargs)
        self._password_removed = False
        if password_changed:
            LoginSession.objects.filter(user=self).revoke(reason="password_changed")


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


class LoginSessionQuerySet(models.QuerySet["LoginSession"]):
    def revoke(self, *, reason: str) -> int:
        return self.filter(revoked_at__isnull=True).update(revoked_at=timezone.now(), revoked_reason=reason)


class LoginSession(models.Model):
    """One login: every access and refresh token issued from it carries its id (claim `sid`).

    Revoking the session stops all of them at once: logout, re-use of a rotated refresh token (a
    sign the token was stolen), a password change, deactivation, removal from the last workspace.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="login_sessions")
    created_at = models.DateTimeField(auto_now_add=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=255, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_reason = models.CharField(max_length=32, blank=True)

    objects = LoginSessionQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["user", "revoked_at"])]

    def __str__(self) -> str:
        return f"{self.user} {self.created_at:%Y-%m-%d %H:%M}"
