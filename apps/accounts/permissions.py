"""Role checks for DRF views. Roles are ranked: owner > admin > supervisor > agent > viewer."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from apps.accounts.models import Role
from apps.accounts.selectors import request_membership


class RolePermission(BasePermission):
    """Reads need `read_role`, writes need `write_role`, in the workspace the request acts in."""

    read_role: str = Role.VIEWER
    write_role: str = Role.AGENT
    message = "Your role in this workspace does not allow this."

    def has_permission(self, request: Request, view: Any) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        membership = request_membership(request)
        if membership is None:
            return False
        needed = self.read_role if request.method in SAFE_METHODS else self.write_role
        return membership.has_role(needed)


def role_required(*, read: str = Role.VIEWER, write: str = Role.AGENT) -> type[RolePermission]:
    return type(f"Role_{read}_{write}", (RolePermission,), {"read_role": read, "write_role": write})


IsMember = role_required(read=Role.VIEWER, write=Role.AGENT)
IsSupervisor = role_required(read=Role.SUPERVISOR, write=Role.SUPERVISOR)
IsAdmin = role_required(read=Role.ADMIN, write=Role.ADMIN)
IsOwner = role_required(read=Role.OWNER, write=Role.OWNER)
MembersReadAdminsWrite = role_required(read=Role.VIEWER, write=Role.ADMIN)
