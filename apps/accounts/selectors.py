"""Reads for accounts: who a request acts for, and in which workspace."""

from __future__ import annotations

from importlib import import_module

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, load_backend
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.crypto import constant_time_compare
from rest_framework.request import Request

from apps.accounts.login_names import fold
from apps.accounts.models import Membership, User, Workspace
from chatbot import log_context
from chatbot.exceptions import NotFound

WORKSPACE_HEADER = "HTTP_X_WORKSPACE"


def membership_for(*, user: User, workspace_slug: str | None = None) -> Membership | None:
    """The membership a request acts through: the named workspace, else the user's first one."""
    memberships = Membership.objects.select_related("workspace").filter(user=user)
    if workspace_slug:
        memberships = memberships.filter(workspace__slug=workspace_slug)
    return memberships.order_by("created_at", "pk").first()


def request_membership(request: Request | HttpRequest) -> Membership | None:
    """Resolved once per request (header `X-Workspace: <slug>` picks among several)."""
    cached: Membership | None = getattr(request, "_membership_cache", None)
    if cached is not None:
        return cached
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    membership = membership_for(user=user, workspace_slug=request.META.get(WORKSPACE_HEADER) or None)
    request._membership_cache = membership  # type: ignore[union-attr]
    if membership is not None:
        log_context.bind(workspace_id=membership.workspace_id)  # on the request's later log lines
    return membership


def request_workspace(request: Request | HttpRequest) -> Workspace:
    membership = request_membership(request)
    if membership is None:
        # Permission classes turn this away first; reaching here is a programming error.
        raise PermissionError("request has no workspace membership")
    return membership.workspace


def workspace_members(*, workspace: Workspace) -> QuerySet[Membership]:
    return (
        Membership.objects.filter(workspace=workspace)
        .select_related("user", "workspace")
        .order_by("created_at", "pk")
    )


def member_get(*, workspace: Workspace, pk: int) -> Membership:
    """Raises NotFound alike for a missing id and another workspace's."""
    membership = workspace_members(workspace=workspace).filter(pk=pk).first()
    if membership is None:
        raise NotFound("Not found.")
    return membership


def user_memberships(*, user_id: int) -> QuerySet[Membership]:
    return Membership.objects.filter(user_id=user_id).select_related("workspace").order_by("created_at", "pk")


def user_for_login(identifier: str) -> User | None:
    """The one account a login name names, or None.

    A username matches its exact spelling (a row the normalising migration had to leave alone),
    else its folded one. An identifier with "@" that is no username is an e-mail address and
    names the OLDEST account holding it, never another: a later account given the same address
    (any workspace may) cannot take over the login of the first.
    """
    folded = fold(identifier)
    if not folded:
        return None
    exact = identifier.strip()
    by_name = {user.username: user for user in User.objects.filter(username__in={exact, folded})}
    user = by_name.get(exact) or by_name.get(folded)
    if user is None and "@" in folded:
        user = User.objects.filter(email=folded).order_by("date_joined", "pk").first()
    return user


def session_login_user(*, session_key: str | None) -> User | None:
    """The active user a cookie login (Django session) still stands for, else None.

    None once the session was logged out or expired, its user deactivated or deleted, or the
    password changed since it was made (the session auth hash no longer matches). Reads only:
    unlike `django.contrib.auth.get_user` it never flushes or cycles the browser's session.
    """
    if not session_key:
        return None
    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    try:
        user_id = User._meta.pk.to_python(store[SESSION_KEY])
        backend_path = store[BACKEND_SESSION_KEY]
    except KeyError:
        return None
    if backend_path not in settings.AUTHENTICATION_BACKENDS:
        return None
    user = load_backend(backend_path).get_user(user_id)  # ModelBackend refuses inactive users
    if not isinstance(user, User):
        return None
    stored = store.get(HASH_SESSION_KEY) or ""
    hashes = [user.get_session_auth_hash(), *user.get_session_auth_fallback_hash()]
    return user if stored and any(constant_time_compare(stored, h) for h in hashes) else None


def is_member(*, user_id: int, workspace_id: int) -> bool:
    return Membership.objects.filter(user_id=user_id, workspace_id=workspace_id).exists()
