from __future__ import annotations

from django.db import models


class LiveEvent(models.Model):
    """One change staff screens should show. The table is the truth; the channel layer only rings."""

    id = models.BigAutoField(primary_key=True)
    workspace = models.ForeignKey("accounts.Workspace", on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=32)
    conversation_id = models.BigIntegerField(null=True, blank=True)
    payload = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        indexes = [models.Index(fields=["workspace", "id"])]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk}"
