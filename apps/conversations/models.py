from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.postgres.search import SearchVectorField
from django.db import models

DEFAULT_OPT_OUT_WORDS = ["stop", "baja", "cancelar", "unsubscribe"]
DEFAULT_OPT_IN_WORDS = ["start", "alta"]
DEFAULT_HANDOFF_WORDS = ["agente", "humano", "persona", "human", "agent"]
# failure_reason of a customer message whose processing failed INBOUND_MAX_ATTEMPTS times.
INBOUND_SET_ASIDE = "processing_failed"
# A customer's current reaction on a message is their latest one (WhatsApp keeps one per person and
# message; an empty emoji removed it): by Meta's timestamp, then by arrival within the same second.
REACTION_ORDER = (models.F("sent_by_customer_at").desc(nulls_last=True), "-pk")


class ConversationSettings(models.Model):
    """Per-workspace rules for conversations (one row per workspace, created on first use)."""

    workspace = models.OneToOneField(
        "accounts.Workspace", on_delete=models.CASCADE, related_name="conversation_settings"
    )
    opt_out_words = models.JSONField(default=list, blank=True)
    opt_in_words = models.JSONField(default=list, blank=True)
    handoff_words = models.JSONField(default=list, blank=True)
    opt_out_confirmation = models.JSONField(default=dict, blank=True, help_text='{"es": "...", "en": "..."}')
    opt_in_confirmation = models.JSONField(default=dict, blank=True)
    takeover_idle_minutes = models.PositiveIntegerField(
        default=0,
        help_text="Bot resumes after this many idle minutes of a takeover; 0 = only when handed back.",
    )
    max_send_attempts = models.PositiveSmallIntegerField(default=5)
    recipient_interval_seconds = models.FloatField(
        default=6.0, help_text="Pace per customer (Meta: ~1 per 6 s)."
    )
    recipient_burst = models.PositiveSmallIntegerField(default=3)

    class Meta:
        verbose_name_plural = "conversation settings"  # not Django's "...settingss"

    def __str__(self) -> str:
        return f"settings of {self.workspace_id}"


class Contact(models.Model):
    """A customer. Keyed by wa_id (phone) or Meta's business-scoped user id: either may be absent."""

    workspace = models.ForeignKey("accounts.Workspace", on_delete=models.CASCADE, related_name="contacts")
    wa_id = models.CharField(max_length=32, blank=True)
    bsuid = models.CharField(max_length=128, blank=True, help_text="Meta's business-scoped user id (US.…).")
    name = models.CharField(max_length=255, blank=True)
    profile_name = models.CharField(max_length=255, blank=True)
    language = models.CharField(max_length=8, blank=True)
    tags = models.JSONField(default=list, blank=True)
    attributes = models.JSONField(
        default=dict, blank=True, help_text="Named values for segments and templates."
    )
    notes = models.TextField(blank=True)
    opted_out = models.BooleanField(default=False, help_text="Opted out of marketing messages.")
    opted_out_at = models.DateTimeField(null=True, blank=True)
    opt_out_source = models.CharField(max_length=32, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "wa_id"], condition=~models.Q(wa_id=""), name="conv_contact_waid_uniq"
            ),
            models.UniqueConstraint(
                fields=["workspace", "bsuid"], condition=~models.Q(bsuid=""), name="conv_contact_bsuid_uniq"
            ),
            models.CheckConstraint(condition=~models.Q(wa_id="", bsuid=""), name="conv_contact_has_an_id"),
        ]

    def __str__(self) -> str:
        return self.name or self.profile_name or self.wa_id or self.bsuid

    @property
    def display_name(self) -> str:
        return self.name or self.profile_name or self.wa_id or self.bsuid


class ConsentRecord(models.Model):
    """One change of a contact's consent, kept for good: what, from where, when. Written by
    services.optout with every change of `Contact.opted_out` (marketing), so the two never disagree."""

    class Kind(models.TextChoices):
        MARKETING = "marketing", "Marketing"
        UTILITY = "utility", "Utility"

    class Source(models.TextChoices):
        CSV = "csv", "CSV import"
        API = "api", "API"
        KEYWORD = "keyword", "Keyword (STOP, BAJA, ...)"
        USER_PREFERENCES = "user_preferences", "WhatsApp user preferences"
        BUTTON = "button", "Template button"
        STAFF = "staff", "Staff"
        META_ERROR = "meta_error", "WhatsApp error 131050"

    id = models.BigAutoField(primary_key=True)
    workspace = models.ForeignKey("accounts.Workspace", on_delete=models.CASCADE, related_name="+")
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="consent_records")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    opted_in = models.BooleanField()
    source = models.CharField(max_length=24, choices=Source.choices)
    at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["contact", "kind", "-at"], name="conv_consent_contact_idx")]

    def __str__(self) -> str:
        return f"{self.kind} {'in' if self.opted_in else 'out'} ({self.source})"


class Conversation(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", "Open (bot answers)"
        PENDING_HUMAN = "pending_human", "Waiting for a person"
        HUMAN = "human", "A person answers"
        CLOSED = "closed", "Closed"

    workspace = models.ForeignKey(
        "accounts.Workspace", on_delete=models.CASCADE, related_name="conversations"
    )
    channel = models.ForeignKey("whatsapp.Channel", on_delete=models.CASCADE, related_name="conversations")
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="conversations")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_inbound_at = models.DateTimeField(null=True, blank=True, help_text="Opens the 24-hour window.")
    last_message_at = models.DateTimeField(null=True, blank=True)
    human_activity_at = models.DateTimeField(null=True, blank=True)
    unread_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    # The first time it went to a person (waiting for one, or taken over); analytics counts hand-offs
    # and people's first-response time from it. Kept through a hand-back and a reopening.
    handed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # At most one live conversation per customer and number; a closed one is history.
            models.UniqueConstraint(
                fields=["channel", "contact"],
                condition=~models.Q(status="closed"),
                name="conv_one_live_per_contact_channel",
            ),
        ]
        indexes = [models.Index(fields=["workspace", "status", "-last_message_at"])]

    def __str__(self) -> str:
        return f"{self.contact} ({self.status})"


class Message(models.Model):
    """Every message in or out. Outbound rows are also the send queue (`send_state`)."""

    class Direction(models.TextChoices):
        INBOUND = "in", "Inbound"
        OUTBOUND = "out", "Outbound"

    class Author(models.TextChoices):
        CUSTOMER = "customer", "Customer"
        BOT = "bot", "Bot"
        AGENT = "agent", "Agent"
        SYSTEM = "system", "System"
        CAMPAIGN = "campaign", "Campaign"

    class Status(models.TextChoices):
        """Delivery as WhatsApp reports it; moves forward only."""

        RECEIVED = "received", "Received"  # inbound
        QUEUED = "queued", "Queued"  # outbound, not yet accepted by WhatsApp
        ACCEPTED = "accepted", "Accepted"
        SENT = "sent", "Sent"
        DELIVERED = "delivered", "Delivered"
        READ = "read", "Read"
        FAILED = "failed", "Failed"

    class SendState(models.TextChoices):
        """The outbound queue's state machine (see services.SEND_TRANSITIONS)."""

        NONE = "", "-"
        PENDING = "pending", "Pending"
        PROCESSING = "processing", "Processing"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"
        RETRY = "retry", "Retry"
        CANCELLED = "cancelled", "Cancelled"

    id = models.BigAutoField(primary_key=True)
    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    # Indexed with the id (Meta.indexes), which serves the foreign key as well.
    workspace = models.ForeignKey(
        "accounts.Workspace", on_delete=models.CASCADE, related_name="messages", db_index=False
    )
    channel = models.ForeignKey("whatsapp.Channel", on_delete=models.CASCADE, related_name="messages")
    conversation = models.ForeignKey(
        Conversation, null=True, blank=True, on_delete=models.CASCADE, related_name="messages"
    )
    contact = models.ForeignKey(
        Contact, null=True, blank=True, on_delete=models.CASCADE, related_name="messages"
    )
    direction = models.CharField(max_length=3, choices=Direction.choices)
    author = models.CharField(max_length=16, choices=Author.choices)
    author_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    type = models.CharField(max_length=32, default="text")
    body = models.TextField(blank=True)
    payload = models.JSONField(
        default=dict, blank=True, help_text="Inbound: Meta's item; outbound: what we send."
    )
    template_fallback = models.JSONField(
        null=True, blank=True, help_text="Template to send if the window closed."
    )
    wamid = models.CharField(max_length=255, blank=True)
    reply_to_wamid = models.CharField(max_length=255, blank=True)
    # Inbound identity as received (the contact is resolved when the message is processed).
    from_wa_id = models.CharField(max_length=32, blank=True)
    from_bsuid = models.CharField(max_length=128, blank=True)
    from_name = models.CharField(max_length=255, blank=True)
    sent_by_customer_at = models.DateTimeField(null=True, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    # Inbound: how processing dealt with a message that is not a question for the bot's reply
    # (reaction, keyword, group, system, to_person); "" for one the reply to its turn answers.
    handled_as = models.CharField(max_length=16, blank=True)
    # Delivery status (outbound) ...
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RECEIVED)
    status_at = models.DateTimeField(null=True, blank=True)
    error_code = models.IntegerField(null=True, blank=True)
    error_title = models.CharField(max_length=255, blank=True)
    # ... and the send queue.
    send_state = models.CharField(
        max_length=16, choices=SendState.choices, default=SendState.NONE, blank=True
    )
    dedupe_key = models.CharField(max_length=128, blank=True)
    # Tries at this row's job: inbound, processing it (INBOUND_MAX_ATTEMPTS); outbound, sends counted
    # against max_attempts (the claim's counter; each send's own record is a SendAttempt row).
    attempts = models.PositiveSmallIntegerField(default=0)
    # Inbound: tries at the bot's reply to the turn this message ends (REPLY_MAX_ATTEMPTS); kept
    # here, not in the task, so a worker killed mid-call still counts.
    reply_attempts = models.PositiveSmallIntegerField(default=0)
    max_attempts = models.PositiveSmallIntegerField(default=5)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    processing_started_at = models.DateTimeField(null=True, blank=True)
    # Inbound only (set aside, the last processing or reply error). An outbound send's reason and error
    # are in its SendAttempt rows; outbound rows from before that table keep theirs here.
    failure_reason = models.CharField(max_length=64, blank=True)
    last_error = models.TextField(blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            # A re-delivered webhook is a no-op: this constraint, not a check-then-insert, decides.
            models.UniqueConstraint(
                fields=["channel", "wamid"], condition=~models.Q(wamid=""), name="conv_msg_wamid_uniq"
            ),
            models.UniqueConstraint(
                fields=["workspace", "dedupe_key"],
                condition=~models.Q(dedupe_key=""),
                name="conv_msg_dedupe_uniq",
            ),
        ]
        indexes = [
            models.Index(fields=["conversation", "created_at"]),
            # The prompt history (a conversation's last turns by id): without it PostgreSQL walks the
            # primary key backwards through every workspace's newer messages (bench/growth.py).
            models.Index(fields=["conversation", "id"], name="conv_msg_conversation_id"),
            # A workspace's messages by id: the search reads those after its index's cursor this way.
            models.Index(fields=["workspace", "id"], name="conv_msg_workspace_id"),
            # The send queue's list, newest first, and its count read from the index alone: the
            # workspace's whole outbound history otherwise (210 -> 32 ms at 500,000 rows, bench/growth.py).
            models.Index(
                fields=["workspace", "-created_at", "-id"],
                condition=models.Q(direction="out") & ~models.Q(send_state=""),
                name="conv_msg_queue",
            ),
            models.Index(fields=["send_state", "next_attempt_at"]),
            # Inbound rows not processed yet (the sweeper, the backlog): a handful at any time, where
            # an index on (direction, processed_at) was skipped for the outbound rows' NULLs.
            models.Index(
                fields=["created_at"],
                condition=models.Q(direction="in", processed_at__isnull=True),
                name="conv_msg_inbound_unprocessed",
            ),
            # Staff messages of a conversation (analytics: people's first response, the bot alone): a
            # small share of the rows, found without reading every message of the conversation.
            models.Index(
                fields=["conversation", "created_at"],
                condition=models.Q(author="agent"),
                name="conv_msg_staff_idx",
            ),
            # The reactions on a message, found by the wamid they react to (selectors.with_reactions).
            models.Index(
                fields=["channel", "reply_to_wamid"],
                condition=models.Q(handled_as="reaction"),
                name="conv_msg_reaction_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.direction} {self.type} {self.wamid or self.uid}"

    @property
    def failure_reason_shown(self) -> str:
        """Why the row failed or waits: an outbound row's last send attempt ('' once accepted), else
        the field. From the selectors' annotation when present, else one query."""
        return self._last_send()[0]

    @property
    def last_error_shown(self) -> str:
        return self._last_send()[1]

    @property
    def reaction_shown(self) -> tuple[str, datetime | None]:
        """(emoji, when) of the customer's current reaction on this message; ("", None) without one.
        From the selectors' annotation when present, else one query."""
        if "reaction_emoji" in self.__dict__:
            emoji, at = self.__dict__["reaction_emoji"], self.__dict__["reaction_at"]
        elif self.wamid:
            latest = (
                Message.objects.filter(
                    channel_id=self.channel_id, reply_to_wamid=self.wamid, handled_as="reaction"
                )
                .order_by(*REACTION_ORDER)
                .values_list("body", "sent_by_customer_at", "created_at")
                .first()
            )
            emoji, at = (latest[0], latest[1] or latest[2]) if latest else ("", None)
        else:
            emoji, at = "", None
        return (emoji, at) if emoji else ("", None)

    def _last_send(self) -> tuple[str, str]:
        reason: str | None = None
        detail = ""
        if "last_send_reason" in self.__dict__:
            reason, detail = self.__dict__["last_send_reason"], self.__dict__["last_send_detail"]
        elif self.direction == self.Direction.OUTBOUND and self.send_state not in ("", "pending"):
            last = self.send_attempts.order_by("-number").values_list("outcome", "reason", "detail").first()
            if last is not None:
                outcome, reason, detail = last
                if outcome == SendAttempt.Outcome.ACCEPTED:
                    reason = detail = ""
        # None: no attempt rows (inbound, never sent, or sent before SendAttempt existed).
        if reason is None:
            return self.failure_reason, self.last_error
        return reason, detail or ""


class SenderLease(models.Model):
    """Which sender sends a number's outbound queue right now: one at a time, until `expires_at`.

    A live sender renews it well before it expires; a killed one stops renewing, and the next
    sender takes the number over once it has expired.
    """

    channel = models.OneToOneField(
        "whatsapp.Channel", on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    holder = models.CharField(max_length=128, blank=True)
    expires_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"sender of channel {self.channel_id}: {self.holder} until {self.expires_at:%H:%M:%S}"


class SendAttempt(models.Model):
    """One try at sending an outbound message, like Healthchecks' `Notification`: saved `in_flight` in
    the statement that claims the message (before the transport is called) and settled with what came
    of it. A sender killed mid-send leaves it `in_flight` until the status webhook or the sweeper
    settles it."""

    class Outcome(models.TextChoices):
        IN_FLIGHT = "in_flight", "In flight"
        ACCEPTED = "accepted", "Accepted"  # by WhatsApp (its answer, or a status webhook for it)
        RETRY = "retry", "Failed, retried later"
        FAILED = "failed", "Failed for good"
        UNKNOWN = "unknown", "Outcome unknown"  # may have reached WhatsApp: never re-sent blindly

    DETAIL_LIMIT = 2000

    id = models.BigAutoField(primary_key=True)
    # No index of their own: rows are read per message, through the (message, number) constraint's.
    workspace = models.ForeignKey(
        "accounts.Workspace", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    message = models.ForeignKey(
        Message, on_delete=models.CASCADE, related_name="send_attempts", db_index=False
    )
    number = models.PositiveSmallIntegerField(help_text="1 for the message's first send, then 2, ...")
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.IN_FLIGHT)
    reason = models.CharField(max_length=64, blank=True, help_text="Why it failed (transport's reason).")
    error_code = models.IntegerField(null=True, blank=True, help_text="Meta's error code.")
    detail = models.CharField(max_length=DETAIL_LIMIT, blank=True)
    wamid = models.CharField(max_length=255, blank=True, help_text="WhatsApp's id, once accepted.")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["message", "number"], name="conv_sendattempt_message_number_uniq")
        ]

    def __str__(self) -> str:
        return f"send {self.number} of message {self.message_id}: {self.outcome}"

    @property
    def duration(self) -> timedelta | None:
        return self.finished_at - self.started_at if self.finished_at else None


class ConversationSearch(models.Model):
    """The words of a conversation's messages, for the inbox search (PostgreSQL full text).

    One row per conversation, not per message: a common word's matches are counted in conversations
    (thousands) rather than messages (hundreds of thousands), and the row changes only when a message
    brings a word the conversation had not used (services/search_index.py). `document` holds stripped
    lexemes (no positions) under three configurations: chatbot_simple (words as written, without
    accents, for prefix matches), chatbot_es and chatbot_en (stems). The GIN index on (workspace,
    document) is created by migration 0012 on PostgreSQL only; SQLite searches the messages directly.
    """

    conversation = models.OneToOneField(
        Conversation, on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    workspace = models.ForeignKey(
        "accounts.Workspace", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    document = SearchVectorField()
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"search words of conversation {self.conversation_id}"


class SearchIndexCursor(models.Model):
    """How far the search indexer has read the message table (by id); one row.

    Messages after `last_message_id` are searched directly (few: the indexer runs every few seconds),
    so a message is found from the moment it is stored."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    last_message_id = models.BigIntegerField(default=0)
    # Messages below this id were stored before the search index existed and are not indexed yet
    # (0: none left); the indexer works down through them, newest first.
    backfill_below = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"search index read up to message {self.last_message_id}"


class InternalNote(models.Model):
    """Staff's note on a conversation: shown to staff beside the thread, never sent to the customer and
    never part of the assistant's prompt (a table of its own, so no query of messages can pick it up)."""

    BODY_LIMIT = 4000
    is_note = True  # told apart from a Message where a thread shows both

    id = models.BigAutoField(primary_key=True)
    workspace = models.ForeignKey("accounts.Workspace", on_delete=models.CASCADE, related_name="+")
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="notes")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    body = models.TextField(max_length=BODY_LIMIT)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["conversation", "created_at"], name="conv_note_conversation_idx")]

    def __str__(self) -> str:
        return f"note {self.pk} on conversation {self.conversation_id}"


class CannedReply(models.Model):
    """A saved answer staff insert in the composer; {{name}}, {{number}}, {{agent}} are filled in."""

    TITLE_LIMIT = 80
    BODY_LIMIT = 4096

    workspace = models.ForeignKey("accounts.Workspace", on_delete=models.CASCADE, related_name="+")
    title = models.CharField(max_length=TITLE_LIMIT)
    body = models.TextField(max_length=BODY_LIMIT)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "canned replies"
        constraints = [
            models.UniqueConstraint(fields=["workspace", "title"], name="conv_canned_reply_title_uniq")
        ]

    def __str__(self) -> str:
        return self.title
