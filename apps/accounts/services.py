"""Writes for accounts: workspaces, members, logins and tokens, bootstrap."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import authenticate
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from rest_framework_simplejwt.exceptions import TokenBackendError
from rest_framework_simplejwt.state import token_backend
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from apps.accounts import login_throttle
from apps.accounts.login_names import fold, namespaced
from apps.accounts.models import ROLE_RANK, LoginSession, Membership, Role, User, Workspace
from apps.audit.services import audit_record
from chatbot.exceptions import Conflict, Forbidden, Unauthorized, ValidationFailed

DEFAULT_WORKSPACE_SLUG = "default"


# --- workspaces and members ----------------------------------------------------------------
def workspace_update(
    *,
    workspace: Workspace,
    name: str | None = None,
    default_language: str | None = None,
    timezone: str | None = None,
) -> Workspace:
    changes = {"name": name, "default_language": default_language, "timezone": timezone}
    fields = [field for field, value in changes.items() if value is not None]
    for field in fields:
        setattr(workspace, field, changes[field])
    if fields:
        workspace.save(update_fields=fields)
    return workspace


def _check_password(password: str, user: User | None = None) -> None:
    try:
        validate_password(password, user=user)
    except DjangoValidationError as exc:
        raise ValidationFailed(
            _("The password is too weak."), details={"password": list(exc.messages)}
        ) from exc


def _check_may_assign(*, acting: Membership, role: str) -> None:
    if not acting.has_role(Role.ADMIN):
        raise Forbidden(_("Only admins and owners manage members."))
    if ROLE_RANK[role] > ROLE_RANK[acting.role]:
        raise Forbidden(_("You cannot grant a role above your own."))


@transaction.atomic
def member_create(
    *,
    acting: Membership,
    username: str,
    email: str,
    password: str,
    role: str,
    first_name: str = "",
    last_name: str = "",
) -> Membership:
    """Create a user and make them a member of the acting member's workspace.

    The login name is `<username>.<workspace slug>` (`login_names.namespaced`): a name taken
    elsewhere can never collide, so "taken" (409) speaks only of the admin's own workspace. The
    e-mail is refused only when a member of this workspace holds it already; elsewhere it is
    no business of this admin's (and names, at login, only the oldest account holding it).
    """
    _check_may_assign(acting=acting, role=role)
    login_name = namespaced(username, acting.workspace.slug)
    email = fold(email)
    if User.objects.filter(username=login_name).exists():
        raise Conflict(
            _("%(login)s is taken in this workspace.") % {"login": login_name}, code="username_taken"
        )
    if email and Membership.objects.filter(workspace=acting.workspace, user__email=email).exists():
        raise Conflict(_("A member of this workspace has that e-mail address."), code="email_taken")
    user = User(username=login_name, email=email, first_name=first_name, last_name=last_name)
    try:
        user.full_clean(exclude=["password"], validate_unique=False)
    except DjangoValidationError as exc:
        raise ValidationFailed(_("The member is not valid."), details=exc.message_dict) from exc
    _check_password(password, user)
    user.set_password(password)
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError as exc:  # created by a concurrent request since the check above
        raise Conflict(
            _("%(login)s is taken in this workspace.") % {"login": login_name}, code="username_taken"
        ) from exc
    membership = Membership.objects.create(user=user, workspace=acting.workspace, role=role)
    audit_record(
        workspace_id=membership.workspace_id,
        actor_id=acting.user_id,
        action="member.create",
        target=membership,
        details={"user_id": membership.user_id, "role": membership.role},
    )
    return membership


def _owners_left(workspace: Workspace, excluding: Membership) -> int:
    return Membership.objects.filter(workspace=workspace, role=Role.OWNER).exclude(pk=excluding.pk).count()


@transaction.atomic
def member_update_role(*, acting: Membership, membership: Membership, role: str) -> Membership:
    _check_may_assign(acting=acting, role=role)
    if ROLE_RANK[membership.role] > ROLE_RANK[acting.role]:
        raise Forbidden(_("You cannot change a member whose role is above yours."))
    if (
        membership.role == Role.OWNER
        and role != Role.OWNER
        and _owners_left(membership.workspace, membership) == 0
    ):
        raise Conflict(_("A workspace keeps at least one owner."), code="last_owner")
    before, membership.role = membership.role, role
    membership.save(update_fields=["role"])
    audit_record(
        workspace_id=membership.workspace_id,
        actor_id=acting.user_id,
        action="member.role_change",
        target=membership,
        details={"user_id": membership.user_id, "role_before": before, "role": role},
    )
    return membership


@transaction.atomic
def member_remove(*, acting: Membership, membership: Membership) -> None:
    _check_may_assign(acting=acting, role=membership.role)
    if membership.role == Role.OWNER and _owners_left(membership.workspace, membership) == 0:
        raise Conflict(_("A workspace keeps at least one owner."), code="last_owner")
    memberships_delete(memberships=[membership], actor_id=acting.user_id)


@transaction.atomic
def memberships_delete(*, memberships: Iterable[Membership], actor_id: int | None) -> None:
    """Delete memberships with no role checks (the Django admin's door; the API's is `member_remove`).

    A user who belongs nowhere any more can no longer log in to anything: their logins end."""
    users = {membership.user for membership in memberships}
    for membership in memberships:
        audit_record(
            workspace_id=membership.workspace_id,
            actor_id=actor_id,
            action="member.remove",
            target=("accounts.membership", membership.pk),  # named before delete() clears the pk
            details={"user_id": membership.user_id, "role": membership.role},
        )
        membership.delete()
    for user in users:
        if not user.memberships.exists():
            LoginSession.objects.filter(user=user).revoke(reason="removed")


# --- logins and tokens ---------------------------------------------------------------------
@dataclass(frozen=True)
class TokenPair:
    access: str
    refresh: str


def _issue(session: LoginSession) -> TokenPair:
    refresh = RefreshToken.for_user(session.user)  # also records the OutstandingToken
    refresh["sid"] = str(session.pk)  # copied into the access token derived below
    return TokenPair(access=str(refresh.access_token), refresh=str(refresh))


def login(*, identifier: str, password: str, ip: str | None, user_agent: str = "") -> TokenPair:
    """Check credentials and open a login session.

    The attempt is reserved on the account's and the IP's counters before the password is
    checked (`login_throttle`); the identifier resolves as `selectors.user_for_login` says.
    """
    attempt = login_throttle.begin(identifier=identifier, ip=ip)
    user = authenticate(username=identifier, password=password)
    if not isinstance(user, User):
        raise Unauthorized("Wrong username or password.", code="invalid_credentials")
    login_throttle.succeeded(attempt)
    session = LoginSession.objects.create(user=user, ip_address=ip, user_agent=user_agent[:255])
    User.objects.filter(pk=user.pk).update(last_login=timezone.now())
    return _issue(session)


def login_session_revoke(*, session_id: Any, reason: str) -> int:
    return LoginSession.objects.filter(pk=session_id, revoked_at__isnull=True).update(
        revoked_at=timezone.now(), revoked_reason=reason
    )


def _decode_refresh(raw: str) -> dict[str, Any]:
    try:
        payload: dict[str, Any] = token_backend.decode(raw, verify=True)  # type: ignore[arg-type]
    except TokenBackendError as exc:
        raise Unauthorized("The token is not valid or has expired.", code="token_not_valid") from exc
    if payload.get("token_type") != "refresh" or not payload.get("jti") or not payload.get("sid"):
        raise Unauthorized("A refresh token is required.", code="token_not_valid")
    return payload


def tokens_refresh(*, raw_refresh: str) -> TokenPair:
    """Rotate: the presented refresh token is blacklisted and a new pair issued.

    Presenting a refresh token that was already rotated means two parties hold it; the whole
    login (every token issued from it) is revoked. Blacklisting through the one-to-one
    `BlacklistedToken` row is the atomic claim: of two concurrent refreshes only one wins.
    """
    payload = _decode_refresh(raw_refresh)
    outstanding = OutstandingToken.objects.filter(jti=payload["jti"]).first()
    if outstanding is None:
        raise Unauthorized("The token is not valid or has expired.", code="token_not_valid")
    _, claimed = BlacklistedToken.objects.get_or_create(token=outstanding)
    if not claimed:
        login_session_revoke(session_id=payload["sid"], reason="refresh_reuse")
        raise Unauthorized("This refresh token was used before; the login is revoked.", code="token_reused")
    session = (
        LoginSession.objects.select_related("user").filter(pk=payload["sid"], revoked_at__isnull=True).first()
    )
    if session is None or not session.user.is_active:
        raise Unauthorized("This login has ended; log in again.", code="session_revoked")
    return _issue(session)


def logout(*, session_id: Any, raw_refresh: str | None = None) -> None:
    """End the login: its access and refresh tokens stop working at once."""
    login_session_revoke(session_id=session_id, reason="logout")
    if raw_refresh:
        try:
            payload = token_backend.decode(raw_refresh, verify=True)  # type: ignore[arg-type]
        except TokenBackendError:
            return
        outstanding = OutstandingToken.objects.filter(jti=payload.get("jti", "")).first()
        if outstanding is not None:
            BlacklistedToken.objects.get_or_create(token=outstanding)


def user_logins_end(*, user: User, reason: str) -> int:
    """Revoke every open login of the user: its API tokens stop working at once and stay dead
    if the user is reactivated; live sockets close at their next check."""
    return LoginSession.objects.filter(user=user).revoke(reason=reason)


@transaction.atomic
def user_active_set(*, user: User, active: bool) -> User:
    """Deactivating ends every login of the user (see `user_logins_end`)."""
    user.is_active = active
    user.save(update_fields=["is_active"])
    if not active:
        user_logins_end(user=user, reason="deactivated")
    return user


# --- bootstrap -----------------------------------------------------------------------------
@dataclass(frozen=True)
class BootstrapResult:
    workspace: Workspace
    admin: User
    admin_created: bool
    generated_password: str | None


@transaction.atomic
def bootstrap_run(*, admin_password: str, production: bool) -> BootstrapResult:
    """Idempotent: the default workspace and user `admin` as its owner.

    The password is set only when the admin is created, so a password changed later in the
    back office is not overwritten by the next deploy. Without `ADMIN_PASSWORD` a password is
    generated in development (shown once by the command) and refused in production.
    """
    if production and admin_password:
        _check_password(admin_password, User(username="admin"))
    workspace, _ = Workspace.objects.get_or_create(slug=DEFAULT_WORKSPACE_SLUG, defaults={"name": "Default"})
    admin = User.objects.filter(username="admin").first()
    generated = None
    created = admin is None
    if admin is None:
        if not admin_password:
            if production:
                raise ValidationFailed(
                    "ADMIN_PASSWORD is not set; it is required to create the admin in production."
                )
            generated = admin_password = secrets.token_urlsafe(18)
        admin = User(username="admin", is_staff=True, is_superuser=True)
        admin.set_password(admin_password)
        admin.save()
    Membership.objects.update_or_create(user=admin, workspace=workspace, defaults={"role": Role.OWNER})
    return BootstrapResult(
        workspace=workspace, admin=admin, admin_created=created, generated_password=generated
    )


def password_is_weak(password: str) -> list[str]:
    try:
        validate_password(password)
    except DjangoValidationError as exc:
        return list(exc.messages)
    return []
