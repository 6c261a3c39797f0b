from __future__ import annotations

from typing import Any

from django.contrib.auth.password_validation import MinimumLengthValidator, get_default_password_validators
from rest_framework import serializers

from apps.accounts.models import Membership, Role, User, Workspace
from apps.accounts.services import TokenPair
from chatbot.openapi import TIME_ZONE, input_schema
from chatbot.serializers import JSONInput


def _password_min_length() -> int:
    validators = get_default_password_validators()
    return max((v.min_length for v in validators if isinstance(v, MinimumLengthValidator)), default=1)


class LoginInput(JSONInput):
    username = serializers.CharField(max_length=254, help_text="Username or e-mail address.")
    password = serializers.CharField(max_length=256, trim_whitespace=False)


class RefreshInput(JSONInput):
    refresh = serializers.CharField(max_length=4096)


class LogoutInput(JSONInput):
    refresh = serializers.CharField(max_length=4096, required=False, allow_blank=True)


class TokenPairOutput(serializers.Serializer[TokenPair]):
    access = serializers.CharField()
    refresh = serializers.CharField()


class UserOutput(serializers.ModelSerializer[User]):
    class Meta:
        model = User
        fields = ["id", "username", "email", "first_name", "last_name"]


class WorkspaceOutput(serializers.ModelSerializer[Workspace]):
    class Meta:
        model = Workspace
        fields = ["id", "name", "slug", "default_language", "timezone"]


@input_schema(fields={"timezone": TIME_ZONE})
class WorkspaceInput(JSONInput):
    name = serializers.CharField(max_length=120, required=False)
    default_language = serializers.ChoiceField(choices=["es", "en"], required=False)
    timezone = serializers.CharField(max_length=64, required=False)

    def validate_timezone(self, value: str) -> str:
        from zoneinfo import available_timezones

        if value not in available_timezones():
            raise serializers.ValidationError("Unknown time zone.")
        return value


class MembershipBrief(serializers.ModelSerializer[Membership]):
    workspace = WorkspaceOutput()

    class Meta:
        model = Membership
        fields = ["workspace", "role"]


class MeOutput(serializers.Serializer[dict[str, Any]]):
    user = UserOutput()
    workspace = WorkspaceOutput(allow_null=True)
    role = serializers.ChoiceField(choices=Role.choices, allow_null=True)
    memberships = MembershipBrief(many=True)


class MemberOutput(serializers.ModelSerializer[Membership]):
    user = UserOutput()

    class Meta:
        model = Membership
        fields = ["id", "user", "role", "created_at"]


# AUTH_PASSWORD_VALIDATORS, as far as a schema can say: long enough and not all digits.
@input_schema(fields={"password": {"minLength": _password_min_length(), "pattern": r"\D"}})
class MemberCreateInput(JSONInput):
    username = serializers.RegexField(
        r"^[\w.+-]{3,89}$",
        max_length=89,  # with "." and a slug of up to 60, the login name fits its 150
        help_text="Letters, digits and . + - _ (no @). The login name is `<username>.<workspace slug>`.",
    )
    email = serializers.EmailField(required=False, allow_blank=True, default="")
    password = serializers.CharField(max_length=256, trim_whitespace=False, write_only=True)
    role = serializers.ChoiceField(choices=Role.choices)
    first_name = serializers.CharField(max_length=150, required=False, allow_blank=True, default="")
    last_name = serializers.CharField(max_length=150, required=False, allow_blank=True, default="")


@input_schema(partial={"required": ["role"]})  # a PATCH whose one field is required
class MemberUpdateInput(JSONInput):
    role = serializers.ChoiceField(choices=Role.choices)
