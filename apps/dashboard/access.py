"""Who may open a dashboard page: a logged-in member, with the role the API asks for the same act."""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable
from functools import wraps
from typing import Any, Concatenate, ParamSpec

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponseBase
from django.utils import timezone

from apps.accounts.models import Membership, Role
from apps.accounts.selectors import request_membership
from chatbot.exceptions import NotFound

P = ParamSpec("P")
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
PageView = Callable[Concatenate[HttpRequest, Membership, P], HttpResponseBase]


def member_page(
    *, read: str = Role.VIEWER, write: str = Role.AGENT
) -> Callable[[PageView[P]], Callable[Concatenate[HttpRequest, P], HttpResponseBase]]:
    """Anonymous users go to the login page; members without the role get 403.

    The view receives the membership it acts through, so every query it makes can be scoped.
    """

    def decorate(view: PageView[P]) -> Callable[Concatenate[HttpRequest, P], HttpResponseBase]:
        @login_required
        @wraps(view)
        def wrapped(request: HttpRequest, /, *args: P.args, **kwargs: P.kwargs) -> HttpResponseBase:
            membership = request_membership(request)
            needed = read if request.method in SAFE_METHODS else write
            if membership is None or not membership.has_role(needed):
                raise PermissionDenied
            try:
                # Times on the page in the workspace's zone (rendering happens inside the view).
                with timezone.override(_zone(membership.workspace.timezone)):
                    return view(request, membership, *args, **kwargs)
            except NotFound as exc:  # a selector's "not in this workspace" is the page's 404
                raise Http404 from exc

        return wrapped

    return decorate


def _zone(name: str) -> zoneinfo.ZoneInfo | None:
    try:
        return zoneinfo.ZoneInfo(name) if name else None
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None  # the project's default zone rather than a broken page


def roles(membership: Membership) -> dict[str, Any]:
    """What the templates may offer: a button is shown only to whom the server would allow it."""
    return {
        "can_act": membership.has_role(Role.AGENT),
        "can_supervise": membership.has_role(Role.SUPERVISOR),
        "can_admin": membership.has_role(Role.ADMIN),
    }
