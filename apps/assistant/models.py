from __future__ import annotations

from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from chatbot.crypto import EncryptedTextField


class BusinessProfile(models.Model):
    """What the assistant knows about the business and how it speaks. One per workspace."""

    workspace = models.OneToOneField(
        "accounts.Workspace", on_delete=models.CASCADE, related_name="business_profile"
    )
    name = models.CharField(max_length=160, blank=True)
    description = models.TextField(blank=True)
    tone = models.CharField(max_length=255, blank=True, default="cercano y profesional")
    languages = models.JSONField(
        default=list, blank=True, help_text='e.g. ["es", "en"]; the first is the default.'
    )
    opening_hours = models.JSONField(
        default=dict, blank=True, help_text='{"mon": [["09:00", "18:00"]], ..., "sun": []}'
    )
    timezone = models.CharField(max_length=64, default="UTC")
    address = models.CharField(max_length=255, blank=True)
    handoff_policy = models.TextField(
        blank=True, help_text="When the assistant should hand over to a person."
    )
    custom_instructions = models.TextField(blank=True)
    disclosure_text = models.TextField(
        blank=True,
        help_text="How the bot introduces itself when asked (it always says it is a virtual assistant).",
    )
    version = models.PositiveIntegerField(default=1, help_text="Bumped on every edit (reply cache key).")
    knowledge_version = models.PositiveIntegerField(default=1, help_text="Bumped on every knowledge edit.")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.name or f"profile of workspace {self.workspace_id}"


class KnowledgeEntry(models.Model):
    class Kind(models.TextChoices):
        FAQ = "faq", "FAQ"
        DOCUMENT = "document", "Document"

    workspace = models.ForeignKey("accounts.Workspace", on_delete=models.CASCADE, related_name="knowledge")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.FAQ)
    title = models.CharField(max_length=500, help_text="The question (FAQ) or the document's title.")
    content = models.TextField(help_text="The answer (FAQ) or the document's text.")
    language = models.CharField(max_length=8, blank=True)
    source = models.CharField(max_length=255, blank=True, help_text="File or origin of an import.")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["workspace", "is_active"])]
        verbose_name_plural = "knowledge entries"

    def __str__(self) -> str:
        return self.title[:80]


class KnowledgeChunk(models.Model):
    """A retrievable passage: a whole FAQ, or one chunk of a document."""

    entry = models.ForeignKey(KnowledgeEntry, on_delete=models.CASCADE, related_name="chunks")
    workspace = models.ForeignKey("accounts.Workspace", on_delete=models.CASCADE, related_name="+")
    ordinal = models.PositiveIntegerField(default=0)
    text = models.TextField()
    # The chunk's search terms (space-separated stems), computed when the chunk is written, so that
    # building a workspace's index after an edit does not tokenize every other chunk again. Stored
    # under `knowledge.TERMS_VERSION`: terms of another version are recomputed at build.
    terms = models.TextField(blank=True, default="")
    terms_version = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["entry_id", "ordinal"]
        constraints = [
            models.UniqueConstraint(fields=["entry", "ordinal"], name="assistant_chunk_ordinal_uniq")
        ]

    def __str__(self) -> str:
        return f"{self.entry_id}#{self.ordinal}"


class Provider(models.TextChoices):
    GEMINI = "gemini", "Google Gemini"
    OPENAI = "openai", "OpenAI"
    ANTHROPIC = "anthropic", "Anthropic Claude"
    XAI = "xai", "xAI Grok"
    OLLAMA = "ollama", "Ollama"
    LMSTUDIO = "lmstudio", "LM Studio"
    OPENAI_COMPATIBLE = "openai_compatible", "OpenAI-compatible server"
    OFFLINE = "offline", "Offline responder"


class AssistantSettings(models.Model):
    """How replies are produced for a workspace. One per workspace, created on first use."""

    workspace = models.OneToOneField(
        "accounts.Workspace", on_delete=models.CASCADE, related_name="assistant_settings"
    )
    enabled = models.BooleanField(default=True)
    fallback_order = models.JSONField(
        default=list,
        blank=True,
        help_text="Provider names in order; empty = AI_FALLBACK_ORDER. Offline is always last.",
    )
    temperature = models.FloatField(default=0.3, validators=[MinValueValidator(0.0), MaxValueValidator(2.0)])
    max_tokens = models.PositiveIntegerField(default=400)
    provider_timeout_seconds = models.FloatField(default=8.0)
    reply_budget_seconds = models.FloatField(default=20.0)
    cache_ttl_seconds = models.PositiveIntegerField(default=3600)
    debounce_seconds = models.FloatField(default=2.0)
    history_token_budget = models.PositiveIntegerField(default=1200)

    class Meta:
        verbose_name_plural = "assistant settings"  # not Django's "...settingss"

    def __str__(self) -> str:
        return f"assistant settings of {self.workspace_id}"


class ProviderConfig(models.Model):
    workspace = models.ForeignKey(
        "accounts.Workspace", on_delete=models.CASCADE, related_name="llm_providers"
    )
    provider = models.CharField(max_length=32, choices=Provider.choices)
    enabled = models.BooleanField(default=True)
    model = models.CharField(max_length=128, blank=True)
    base_url = models.URLField(blank=True)
    api_key = EncryptedTextField(
        blank=True, help_text="Empty: taken from the environment (e.g. OPENAI_API_KEY)."
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "provider"], name="assistant_provider_uniq")
        ]

    def __str__(self) -> str:
        return f"{self.provider} ({self.model})"


class ReplyUsage(models.Model):
    """One row per reply produced: which provider answered, how fast, at what cost. Analytics reads it."""

    workspace = models.ForeignKey("accounts.Workspace", on_delete=models.CASCADE, related_name="+")
    conversation_id = models.BigIntegerField(null=True, blank=True)
    turn_key = models.CharField(max_length=128, blank=True)
    provider = models.CharField(max_length=32)
    model = models.CharField(max_length=128, blank=True)
    latency_ms = models.PositiveIntegerField(default=0)
    tokens_in = models.PositiveIntegerField(default=0)
    tokens_out = models.PositiveIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=12, decimal_places=8, default=Decimal("0"))
    cache_hit = models.BooleanField(default=False)
    fallback_path = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        indexes = [models.Index(fields=["workspace", "created_at"])]

    def __str__(self) -> str:
        return f"{self.provider} {self.created_at:%Y-%m-%d %H:%M:%S}"


class ModelPull(models.Model):
    """A long operation on a workspace's local model server, run by a worker on the `local_models`
    queue: a download into Ollama (`pull`, many minutes) or a load into LM Studio's memory (`load`).

    One row per workspace, kind and model: asking again restarts the row."""

    class Kind(models.TextChoices):
        PULL = "pull"
        LOAD = "load"

    class Status(models.TextChoices):
        QUEUED = "queued"
        PULLING = "pulling"
        LOADING = "loading"
        SUCCESS = "success"
        ERROR = "error"

    workspace = models.ForeignKey("accounts.Workspace", on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.PULL)
    model = models.CharField(max_length=200)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    detail = models.CharField(max_length=200, blank=True, help_text="The server's last status line.")
    completed_bytes = models.BigIntegerField(default=0)
    total_bytes = models.BigIntegerField(default=0)
    error_code = models.CharField(max_length=64, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "kind", "model"], name="assistant_model_job_uniq")
        ]

    def __str__(self) -> str:
        return f"{self.model} ({self.status})"
