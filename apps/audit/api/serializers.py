from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractUser
from rest_framework import serializers

from apps.audit.models import AuditEntry
from chatbot.serializers import QueryInput


class AuditFilter(QueryInput):
    action = serializers.CharField(required=False, allow_blank=True, max_length=64)
    # max_value: ids are BigAutoField; a larger number matches no row and the database cannot compare it.
    actor = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1, help_text="A user id.")


class AuditActorOutput(serializers.Serializer[AbstractUser]):
    id = serializers.IntegerField()
    username = serializers.CharField()


class AuditEntryOutput(serializers.ModelSerializer[AuditEntry]):
    actor = AuditActorOutput(allow_null=True)

    class Meta:
        model = AuditEntry
        fields = [
            "id",
            "created_at",
            "actor",
            "action",
            "target_type",
            "target_id",
            "details",
            "ip",
            "user_agent",
        ]
        read_only_fields = fields


class AuditPageOutput(serializers.Serializer[dict[str, Any]]):  # the schema of a page only
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = AuditEntryOutput(many=True)
