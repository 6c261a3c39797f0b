from __future__ import annotations

from rest_framework import serializers

from apps.audit.models import AuditEntry


class AuditFilter(serializers.Serializer):
    action = serializers.CharField(required=False, allow_blank=True, max_length=64)
    actor = serializers.IntegerField(required=False, min_value=1, help_text="A user id.")


class AuditActorOutput(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()


class AuditEntryOutput(serializers.ModelSerializer):
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


class AuditPageOutput(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = AuditEntryOutput(many=True)
