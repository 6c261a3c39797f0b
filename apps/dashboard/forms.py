"""Form fields of the dashboard pages; the services behind them do the domain validation."""

from __future__ import annotations

import re
import uuid
from typing import Any, ClassVar, cast

from django import forms
from django.utils.translation import gettext_lazy as _
from django_stubs_ext import StrOrPromise

from apps.assistant.models import AssistantSettings, BusinessProfile
from apps.assistant.services import ASSISTANT_SETTING_BOUNDS, DAYS
from apps.campaigns.services.inbox import media_link_clean
from apps.conversations.models import CannedReply
from apps.conversations.selectors import InboxView
from apps.conversations.text import TEXT_LIMIT
from apps.dashboard.templatetags.dashboard_labels import (
    ALERT_KIND,
    ALERT_STATE,
    CONVERSATION_STATUS,
    KNOWLEDGE_KIND,
    ROLE,
    SEND_STATE,
    SEVERITY,
)

INBOX_VIEWS = [
    (InboxView.LIVE, _("All open")),
    (InboxView.MINE, _("Mine")),
    (InboxView.UNASSIGNED, _("Unassigned")),
    (InboxView.WAITING, _("Waiting for a person")),
    (InboxView.BOT, _("Bot answers")),
    (InboxView.CLOSED, _("Closed")),
]
ATTACHMENT_KINDS = [
    ("image", _("Image")),
    ("document", _("Document")),
    ("video", _("Video")),
    ("audio", _("Audio")),
]


class InboxFilterForm(forms.Form):
    view = forms.ChoiceField(label=_("Show"), choices=INBOX_VIEWS, required=False)
    channel = forms.TypedChoiceField(label=_("Number"), coerce=int, empty_value=None, required=False)
    tag = forms.CharField(label=_("Tag"), required=False, max_length=64)
    q = forms.CharField(label=_("Search"), required=False, max_length=100)

    def __init__(self, *args: Any, channels: list[tuple[int, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["channel"].choices = [("", _("All numbers")), *channels]  # type: ignore[attr-defined]


class AssignForm(forms.Form):
    # A member's id, "me", or "" for nobody; the service checks the member may answer.
    assignee = forms.RegexField(regex=r"^(me|[0-9]{1,12})?$", required=False)


class CannedReplyForm(forms.Form):
    title = forms.CharField(label=_("Title"), max_length=CannedReply.TITLE_LIMIT)
    body = forms.CharField(
        label=_("Text"),
        max_length=CannedReply.BODY_LIMIT,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_(
            "Variables: {{name}}, {{first_name}}, {{number}}, {{agent}} and the contact's attributes."
        ),
    )


class QueueFilterForm(forms.Form):
    state = forms.ChoiceField(
        label=_("State"),
        choices=[("", _("All")), *SEND_STATE.items()],
        required=False,
    )


class AlertFilterForm(forms.Form):
    state = forms.ChoiceField(
        label=_("State"), choices=[("", _("All")), *ALERT_STATE.items()], required=False
    )
    severity = forms.ChoiceField(
        label=_("Severity"), choices=[("", _("All")), *SEVERITY.items()], required=False
    )


class ReplyForm(forms.Form):
    # Longer texts are split by the queue; this cap only stops a runaway paste.
    body = forms.CharField(
        label=_("Reply"), widget=forms.Textarea(attrs={"rows": 3}), max_length=TEXT_LIMIT * 4
    )


def _comma_list(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


_RANGE = re.compile(r"^([0-9]{1,2}:[0-9]{2})\s*[-\u2013]\s*([0-9]{1,2}:[0-9]{2})$")
DAY_LABELS = {
    "mon": _("Monday"),
    "tue": _("Tuesday"),
    "wed": _("Wednesday"),
    "thu": _("Thursday"),
    "fri": _("Friday"),
    "sat": _("Saturday"),
    "sun": _("Sunday"),
}


def _hours_field(day: str) -> forms.CharField:
    help_text = _("e.g. 09:00-14:00, 16:00-20:00; empty means closed.") if day == "mon" else ""
    field = forms.CharField(label=DAY_LABELS[day], max_length=200, required=False, help_text=help_text)
    field.widget.attrs["placeholder"] = _("closed")
    return field


def hours_text(ranges: list[list[str]]) -> str:
    return ", ".join(f"{start}-{end}" for start, end in ranges)


class ProfileSectionForm(forms.Form):
    """One card of the business page. It saves its own fields only, so the other sections keep their
    values (the service updates just the fields it is given)."""

    section: ClassVar[str] = ""
    title: ClassVar[StrOrPromise] = ""

    @classmethod
    def initial_from(cls, profile: BusinessProfile) -> dict[str, Any]:
        return {name: getattr(profile, name) for name in cls.base_fields}

    def field_for(self, name: str, problem: str) -> str | None:
        """The field beside which a service's problem about `name` is shown (None: above the form)."""
        return name if name in self.fields else None


class ProfileIdentityForm(ProfileSectionForm):
    section = "identity"
    title = _("Identity")
    name = forms.CharField(label=_("Business name"), max_length=160, required=False)
    description = forms.CharField(
        label=_("Description"),
        widget=forms.Textarea(attrs={"rows": 4}),
        required=False,
        max_length=5000,
        help_text=_("What you sell or do, in a few lines: the assistant answers from it."),
    )
    address = forms.CharField(label=_("Address"), max_length=255, required=False)


class ProfileHoursForm(ProfileSectionForm):
    section = "hours"
    title = _("Opening hours")
    timezone = forms.CharField(label=_("Time zone"), max_length=64, help_text=_("e.g. Europe/Madrid"))
    # A day per field; all seven empty means "not known" (the bot then states none).
    hours_mon = _hours_field("mon")
    hours_tue = _hours_field("tue")
    hours_wed = _hours_field("wed")
    hours_thu = _hours_field("thu")
    hours_fri = _hours_field("fri")
    hours_sat = _hours_field("sat")
    hours_sun = _hours_field("sun")

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        texts = {day: cleaned.pop(f"hours_{day}", "") or "" for day in DAYS}
        hours: dict[str, list[list[str]]] = {}
        for day, text in texts.items():
            spans = [_RANGE.match(part) for part in _comma_list(text)]
            if not all(spans):
                self.add_error(f"hours_{day}", _("Write ranges as 09:00-14:00, separated by commas."))
                continue
            hours[day] = [[m[1].zfill(5), m[2].zfill(5)] for m in spans if m]
        # The service checks the times themselves (24:00 at most, start before end, no overlaps).
        cleaned["opening_hours"] = hours if any(hours.values()) else {}
        return cleaned

    def field_for(self, name: str, problem: str) -> str | None:
        # The service names the day first: "mon: 09:00-14:00 and 13:00-18:00 overlap."
        day = problem.split(":", 1)[0]
        if name == "opening_hours" and day in DAYS:
            return f"hours_{day}"
        return super().field_for(name, problem)

    @classmethod
    def initial_from(cls, profile: BusinessProfile) -> dict[str, Any]:
        data: dict[str, Any] = {"timezone": profile.timezone}
        for day in DAYS:
            data[f"hours_{day}"] = hours_text((profile.opening_hours or {}).get(day, []))
        return data


class ProfileBehaviourForm(ProfileSectionForm):
    section = "behaviour"
    title = _("Assistant behaviour")
    tone = forms.CharField(
        label=_("Tone"), max_length=255, required=False, help_text=_("e.g. friendly and professional")
    )
    custom_instructions = forms.CharField(
        label=_("Custom instructions"),
        widget=forms.Textarea(attrs={"rows": 4}),
        required=False,
        max_length=10000,
    )
    disclosure_text = forms.CharField(
        label=_("Disclosure text"),
        widget=forms.Textarea(attrs={"rows": 2}),
        required=False,
        max_length=2000,
        help_text=_("How the bot introduces itself when asked; it always says it is a virtual assistant."),
    )


class ProfileHandoffForm(ProfileSectionForm):
    section = "handoff"
    title = _("Hand-off to a person")
    handoff_policy = forms.CharField(
        label=_("Hand-off policy"),
        widget=forms.Textarea(attrs={"rows": 4}),
        required=False,
        max_length=5000,
        help_text=_("When the assistant should pass the conversation to a person."),
    )


class ProfileLanguageForm(ProfileSectionForm):
    section = "language"
    title = _("Languages")
    languages = forms.CharField(
        label=_("Languages"),
        help_text=_("Comma separated, e.g. es, en; the first is the default."),
        max_length=100,
        required=False,
    )

    def clean_languages(self) -> list[str]:
        return _comma_list(self.cleaned_data["languages"])

    @classmethod
    def initial_from(cls, profile: BusinessProfile) -> dict[str, Any]:
        return {"languages": ", ".join(profile.languages or [])}


PROFILE_SECTIONS: dict[str, type[ProfileSectionForm]] = {
    form.section: form
    for form in (
        ProfileIdentityForm,
        ProfileHoursForm,
        ProfileBehaviourForm,
        ProfileHandoffForm,
        ProfileLanguageForm,
    )
}


class KnowledgeForm(forms.Form):
    kind = forms.ChoiceField(label=_("Kind"), choices=list(KNOWLEDGE_KIND.items()))
    title = forms.CharField(label=_("Question or title"), max_length=500)
    content = forms.CharField(label=_("Answer or text"), widget=forms.Textarea)
    language = forms.CharField(label=_("Language"), max_length=8, required=False)
    is_active = forms.BooleanField(label=_("Active"), required=False, initial=True)


class KnowledgeImportForm(forms.Form):
    file = forms.FileField(label=_("File (.csv, .md or .txt)"))


class KnowledgeFilterForm(forms.Form):
    q = forms.CharField(label=_("Search"), required=False, max_length=100)
    language = forms.ChoiceField(label=_("Language"), required=False)
    kind = forms.ChoiceField(
        label=_("Kind"), required=False, choices=[("", _("All")), *KNOWLEDGE_KIND.items()]
    )

    def __init__(self, *args: Any, languages: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices = [("", _("All languages")), *((code, code) for code in languages)]
        self.fields["language"].choices = choices  # type: ignore[attr-defined]


class ProvidersOrderForm(forms.Form):
    fallback_order = forms.CharField(
        label=_("Fallback order"),
        help_text=_("Provider names, comma separated; empty uses AI_FALLBACK_ORDER."),
        required=False,
        max_length=300,
    )

    def clean_fallback_order(self) -> list[str]:
        return _comma_list(self.cleaned_data["fallback_order"])


class ProviderForm(forms.Form):
    enabled = forms.BooleanField(label=_("Enabled"), required=False)
    model = forms.CharField(label=_("Model"), max_length=128, required=False)
    base_url = forms.URLField(label=_("Base URL"), required=False, assume_scheme="http")
    # Write-only: the page never shows a stored key; blank keeps it, "clear" removes it.
    api_key = forms.CharField(
        label=_("API key"), required=False, max_length=500, widget=forms.PasswordInput(render_value=False)
    )
    clear_key = forms.BooleanField(label=_("Remove the stored key"), required=False)

    def change(self, provider: str) -> dict[str, Any]:
        data = self.cleaned_data
        change: dict[str, Any] = {
            "provider": provider,
            "enabled": data["enabled"],
            "model": data["model"],
            "base_url": data["base_url"],
        }
        if data["clear_key"]:
            change["api_key"] = ""
        elif data["api_key"]:
            change["api_key"] = data["api_key"]
        return change


def _bounded(
    name: str, field: type[forms.Field], label: StrOrPromise, help_text: StrOrPromise = ""
) -> forms.Field:
    low, high = ASSISTANT_SETTING_BOUNDS[name]
    return field(label=label, min_value=low, max_value=high, help_text=help_text)  # type: ignore[call-arg]


class AssistantSettingsForm(forms.Form):
    enabled = forms.BooleanField(
        label=_("The bot answers"), required=False, help_text=_("Off: every conversation waits for a person.")
    )
    temperature = _bounded(
        "temperature", forms.FloatField, _("Temperature"), _("0 = always the same wording.")
    )
    max_tokens = _bounded("max_tokens", forms.IntegerField, _("Longest answer (tokens)"))
    provider_timeout_seconds = _bounded(
        "provider_timeout_seconds", forms.FloatField, _("Time limit per provider (s)")
    )
    reply_budget_seconds = _bounded(
        "reply_budget_seconds",
        forms.FloatField,
        _("Time limit per reply (s)"),
        _("Fallbacks included; then the offline responder answers."),
    )
    cache_ttl_seconds = _bounded(
        "cache_ttl_seconds", forms.IntegerField, _("Reuse an answer for (s)"), _("0 = never reuse.")
    )
    debounce_seconds = _bounded(
        "debounce_seconds",
        forms.FloatField,
        _("Wait before answering (s)"),
        _("A burst of messages gets one answer."),
    )
    history_token_budget = _bounded(
        "history_token_budget", forms.IntegerField, _("Conversation memory (tokens)")
    )

    @staticmethod
    def initial_from(row: AssistantSettings) -> dict[str, Any]:
        return {name: getattr(row, name) for name in AssistantSettingsForm.base_fields}


# --- campaigns: templates, imports, segments ---------------------------------------------------------
class TemplateSendForm(forms.Form):
    template = forms.IntegerField(label=_("Template"), min_value=1)
    parameters = forms.CharField(
        label=_("Values of {{1}}, {{2}}, … (one per line)"),
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        max_length=10_000,
    )
    header_parameter = forms.CharField(label=_("Header value"), required=False, max_length=1024)

    def clean_parameters(self) -> list[str]:
        return [line.strip() for line in self.cleaned_data["parameters"].splitlines() if line.strip()]


class ContactImportForm(forms.Form):
    file = forms.FileField(label=_("CSV file"))
    region = forms.CharField(
        label=_("Country for numbers without +code"), required=False, max_length=2, help_text=_("e.g. ES, MX")
    )
    tags = forms.CharField(label=_("Tags for every contact"), required=False, max_length=400)


OPTED_CHOICES = [("", _("Any")), ("no", _("Receives marketing")), ("yes", _("Opted out"))]


class SegmentForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=120, required=False)
    tags_any = forms.CharField(label=_("Any of these tags"), required=False, max_length=400)
    tags_all = forms.CharField(label=_("All of these tags"), required=False, max_length=400)
    languages = forms.CharField(
        label=_("Languages"), required=False, max_length=100, help_text=_("e.g. es, en")
    )
    opted_out = forms.ChoiceField(label=_("Marketing"), choices=OPTED_CHOICES, required=False)
    last_inbound_within_days = forms.IntegerField(
        label=_("Wrote within the last N days"), required=False, min_value=0, max_value=3650
    )
    last_inbound_older_than_days = forms.IntegerField(
        label=_("Silent for more than N days"), required=False, min_value=0, max_value=3650
    )

    def filters(self) -> dict[str, Any]:
        data = self.cleaned_data
        found: dict[str, Any] = {
            "tags_any": _comma_list(data.get("tags_any") or ""),
            "tags_all": _comma_list(data.get("tags_all") or ""),
            "languages": _comma_list(data.get("languages") or ""),
            "opted_out": {"yes": True, "no": False}.get(data.get("opted_out") or ""),
            "last_inbound_within_days": data.get("last_inbound_within_days"),
            "last_inbound_older_than_days": data.get("last_inbound_older_than_days"),
        }
        return {key: value for key, value in found.items() if value not in (None, [], "")}


RULE_STATUSES = {key: CONVERSATION_STATUS[key] for key in ("open", "pending_human", "human", "closed")}


class AlertRuleForm(forms.Form):
    """One alert rule; the fields a kind does not use are kept as they are (the services check each kind)."""

    name = forms.CharField(label=_("Name"), max_length=100)
    kind = forms.ChoiceField(label=_("Kind"), choices=list(ALERT_KIND.items()))
    severity = forms.ChoiceField(label=_("Severity"), choices=list(SEVERITY.items()), initial="medium")
    is_active = forms.BooleanField(label=_("Active"), required=False, initial=True)
    keywords = forms.CharField(
        label=_("Keywords"),
        required=False,
        max_length=5000,
        help_text=_("Keyword rules: words or phrases separated by commas; no case or accents."),
    )
    exclusions = forms.CharField(
        label=_("Exclusions"), required=False, max_length=5000, help_text=_("Phrases that cancel a match.")
    )
    pattern = forms.CharField(
        label=_("Pattern"), required=False, max_length=500, strip=False, help_text=_("Pattern rules.")
    )
    threshold = forms.FloatField(
        label=_("Sentiment threshold"),
        min_value=-1,
        max_value=1,
        initial=-0.3,
        help_text=_("Sentiment rules: from -1 (furious) to 0; a message scoring below it raises the alert."),
    )
    classifier = forms.ChoiceField(
        label=_("Sentiment scored by"),
        choices=[("lexicon", _("Offline lexicon")), ("llm", _("The workspace's AI providers"))],
        initial="lexicon",
        help_text=_("The AI providers are asked after the message is processed, one call per message."),
    )
    minutes = forms.IntegerField(
        label=_("Minutes"),
        min_value=0,
        max_value=7 * 24 * 60,
        initial=0,
        help_text=_("No answer: minutes waiting; delivery failures: the window."),
    )
    rate = forms.FloatField(
        label=_("Failure rate"),
        min_value=0,
        max_value=1,
        initial=0,
        help_text=_("Delivery failures: 0 to 1."),
    )
    min_count = forms.IntegerField(label=_("Minimum sends"), min_value=0, max_value=1_000_000, initial=0)
    channels = forms.MultipleChoiceField(
        label=_("Channels"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("None ticked: every channel."),
    )
    statuses = forms.MultipleChoiceField(
        label=_("Conversation states"),
        required=False,
        choices=list(RULE_STATUSES.items()),
        widget=forms.CheckboxSelectMultiple,
        help_text=_("None ticked: every state."),
    )
    cooldown_minutes = forms.IntegerField(
        label=_("Cool-down (minutes)"), min_value=0, max_value=7 * 24 * 60, initial=30
    )
    notify_emails = forms.CharField(
        label=_("E-mail to"), required=False, max_length=2600, help_text=_("Addresses separated by commas.")
    )
    webhook_url = forms.CharField(label=_("Webhook URL"), required=False, max_length=500)
    webhook_secret = forms.CharField(
        label=_("Webhook secret"),
        required=False,
        max_length=200,
        widget=forms.PasswordInput(render_value=False),
        help_text=_("Empty: keep the current one."),
    )
    hand_to_person = forms.BooleanField(label=_("Also hand the conversation to a person"), required=False)

    def __init__(self, *args: Any, channels: list[tuple[int, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = cast(forms.MultipleChoiceField, self.fields["channels"])
        field.choices = [(str(pk), label) for pk, label in channels]

    def rule_fields(self) -> dict[str, Any]:
        """The cleaned data as the services take it (lists, ids); an empty secret is left out."""
        data = dict(self.cleaned_data)
        for name in ("keywords", "exclusions", "notify_emails"):
            data[name] = _comma_list(data[name])
        data["channels"] = [int(pk) for pk in data["channels"]]
        if not data["webhook_secret"]:
            del data["webhook_secret"]
        return data

    @staticmethod
    def initial_for(rule: Any) -> dict[str, Any]:
        fields = [name for name in AlertRuleForm.base_fields if name != "webhook_secret"]
        initial = {name: getattr(rule, name) for name in fields}
        for name in ("keywords", "exclusions", "notify_emails"):
            initial[name] = ", ".join(initial[name])
        initial["channels"] = [str(pk) for pk in rule.channels]
        return initial


VARIABLE_CHOICES = [
    ("name", _("Contact's name")),
    ("attribute", _("Contact attribute")),
    ("wa_id", _("WhatsApp number")),
    ("language", _("Language")),
    ("text", _("Same text for everyone")),
]
CAMPAIGN_VARIABLES = 5  # {{1}}..{{5}} on the page; the API takes up to 20


class CampaignForm(forms.Form):
    """A campaign as the builder page writes it: the variables come as rows var_N_source/key/default."""

    name = forms.CharField(label=_("Name"), max_length=120)
    template = forms.TypedChoiceField(label=_("Approved template"), coerce=int)
    channel = forms.TypedChoiceField(label=_("WhatsApp number"), coerce=int)
    segment = forms.TypedChoiceField(
        label=_("Audience"),
        coerce=int,
        required=False,
        empty_value=None,
        help_text=_("Empty: every contact."),
    )
    header_media_url = forms.URLField(
        label=_("Header image, video or document (https link)"),
        required=False,
        max_length=1024,
        assume_scheme="https",
        help_text=_("Only for a template whose header is media."),
    )

    def clean_header_media_url(self) -> str:
        return media_link_clean(self.cleaned_data.get("header_media_url") or "")

    def __init__(
        self, *args: Any, templates: Any = (), channels: Any = (), segments: Any = (), **kwargs: Any
    ):
        super().__init__(*args, **kwargs)
        choices = {
            "template": [(t.pk, f"{t.name} ({t.language}, {t.variable_count})") for t in templates],
            "channel": [(c.pk, str(c)) for c in channels],
            "segment": [("", _("Every contact")), *[(s.pk, s.name) for s in segments]],
        }
        for name, values in choices.items():
            cast(forms.ChoiceField, self.fields[name]).choices = values
        rows: list[tuple[str, Any]] = [
            (f"var_{n}", _("Variable {{%(n)s}}") % {"n": n}) for n in range(1, CAMPAIGN_VARIABLES + 1)
        ]
        rows.append(("hvar_1", _("Header variable {{1}}")))
        rows += [(f"bvar_{n}", _("End of link button %(n)s") % {"n": n}) for n in (1, 2)]
        for prefix, label in rows:
            self.fields[f"{prefix}_source"] = forms.ChoiceField(
                label=label, choices=[("", "—"), *VARIABLE_CHOICES], required=False
            )
            self.fields[f"{prefix}_key"] = forms.CharField(
                label=_("Attribute of: %(place)s") % {"place": label}, max_length=64, required=False
            )
            self.fields[f"{prefix}_default"] = forms.CharField(
                label=_("Text or default of: %(place)s") % {"place": label}, max_length=1024, required=False
            )

    def _rows(self, prefix: str, count: int) -> list[dict[str, str]]:
        found = []
        for n in range(1, count + 1):
            source = self.cleaned_data.get(f"{prefix}_{n}_source") or ""
            if not source:
                break
            found.append(
                {
                    "source": source,
                    "key": self.cleaned_data.get(f"{prefix}_{n}_key") or "",
                    "default": self.cleaned_data.get(f"{prefix}_{n}_default") or "",
                }
            )
        return found

    def variables(self) -> list[dict[str, str]]:
        return self._rows("var", CAMPAIGN_VARIABLES)

    def header_variables(self) -> list[dict[str, str]]:
        return self._rows("hvar", 1)

    def button_variables(self) -> list[dict[str, str]]:
        return self._rows("bvar", 2)


class CampaignScheduleForm(forms.Form):
    scheduled_at = forms.DateTimeField(
        label=_("Send at (your workspace's time zone)"),
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"],
        help_text=_("Empty: now."),
    )
    recurrence = forms.CharField(
        label=_("Or repeat (cron: minute hour day month weekday)"),
        max_length=64,
        required=False,
        help_text=_("At most daily, e.g. 0 9 * * 1 for Mondays at 09:00. Each time, a copy is sent."),
    )


class AnalyticsFilterForm(forms.Form):
    start = forms.DateField(
        label=_("First day"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    end = forms.DateField(
        label=_("Last day"), required=False, widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    channel = forms.TypedChoiceField(label=_("Number"), required=False, coerce=int, empty_value=None)

    def __init__(self, *args: Any, channels: list[tuple[int, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["channel"].choices = [("", _("All numbers")), *channels]  # type: ignore[attr-defined]


class CalendarServiceForm(forms.Form):
    """A bookable service; the calendar app's service checks the grid and the calendar's workspace."""

    name = forms.CharField(label=_("Name"), max_length=120)
    duration_minutes = forms.IntegerField(
        label=_("Duration (minutes)"), min_value=5, max_value=24 * 60, initial=30
    )
    buffer_before_minutes = forms.IntegerField(
        label=_("Buffer before (minutes)"), min_value=0, max_value=240, initial=0
    )
    buffer_after_minutes = forms.IntegerField(
        label=_("Buffer after (minutes)"), min_value=0, max_value=240, initial=0
    )
    price = forms.DecimalField(label=_("Price"), min_value=0, max_digits=10, decimal_places=2, required=False)
    connection = forms.TypedChoiceField(label=_("Calendar"), coerce=int, required=False, empty_value=None)
    min_notice_minutes = forms.IntegerField(label=_("Minimum notice (minutes)"), min_value=0, initial=60)
    horizon_days = forms.IntegerField(
        label=_("Bookable up to (days ahead)"), min_value=1, max_value=365, initial=30
    )
    daily_cap = forms.IntegerField(
        label=_("Most bookings a day"),
        min_value=1,
        max_value=1000,
        required=False,
        help_text=_("Empty: no limit."),
    )

    def __init__(self, *args: Any, connections: list[tuple[int, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = cast(forms.TypedChoiceField, self.fields["connection"])
        field.choices = [("", _("None: a person confirms each booking")), *connections]

    def service_fields(self) -> dict[str, Any]:
        data = dict(self.cleaned_data)
        data["connection_id"] = data.pop("connection")
        return data


# --- members and the audit log ------------------------------------------------------------------------
class MemberAddForm(forms.Form):
    username = forms.RegexField(
        regex=r"^[\w.+-]{3,89}$",
        label=_("User name"),
        max_length=89,
        help_text=_(
            "Letters, digits and . + - _; they log in as this name, a dot and the workspace's short name."
        ),
        error_messages={"invalid": _("3 to 89 letters, digits or . + - _ (no spaces, no @).")},
    )
    email = forms.EmailField(label=_("E-mail"), required=False)
    first_name = forms.CharField(label=_("First name"), max_length=150, required=False)
    password = forms.CharField(
        label=_("Initial password"),
        widget=forms.PasswordInput(render_value=False),
        max_length=256,
        strip=False,
        help_text=_("Give it to them privately; they can change it after logging in."),
    )
    role = forms.ChoiceField(label=_("Role"), choices=list(ROLE.items()), initial="agent")


class MemberRoleForm(forms.Form):
    role = forms.ChoiceField(label=_("Role"), choices=list(ROLE.items()))


class AuditFilterForm(forms.Form):
    actor = forms.TypedChoiceField(label=_("Who"), coerce=int, empty_value=None, required=False)
    action = forms.ChoiceField(label=_("Action"), required=False)
    since = forms.DateField(label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(
        label=_("To (inclusive)"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, *args: Any, actors: list[tuple[int, str]], actions: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["actor"].choices = [("", _("Anyone")), *actors]  # type: ignore[attr-defined]
        self.fields["action"].choices = [("", _("Any")), *((a, a) for a in actions)]  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and until < since:
            self.add_error("until", _("The end comes before the start."))
        return cleaned


class CalendarBookingForm(forms.Form):
    """A booking made by staff (a phone call, a walk-in): the local date and time of the business."""

    service = forms.TypedChoiceField(label=_("Service"), coerce=int)
    date = forms.DateField(label=_("Date"), widget=forms.DateInput(attrs={"type": "date"}))
    time = forms.TimeField(label=_("Time"), widget=forms.TimeInput(attrs={"type": "time", "step": 300}))
    customer_name = forms.CharField(label=_("Customer's name"), max_length=255)
    customer_phone = forms.CharField(label=_("Customer's phone"), max_length=32, required=False)
    # Drawn when the form is shown: a double click or a resubmitted form books once.
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=64)

    def __init__(self, *args: Any, services: list[tuple[int, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.TypedChoiceField, self.fields["service"]).choices = services
        if not self.is_bound:
            self.initial["idempotency_key"] = f"staff-{uuid.uuid4().hex}"


class CalendarServiceEditForm(CalendarServiceForm):
    """A service edited on the page: the creation fields, whether it is bookable, and its reminders."""

    is_active = forms.BooleanField(label=_("Active (customers can book it)"), required=False)
    reminder_hours = forms.CharField(
        label=_("Reminders (hours before)"),
        required=False,
        max_length=40,
        help_text=_("Comma separated, e.g. 24, 2. Empty: no reminders."),
    )
    reminder_template = forms.CharField(
        label=_("Reminder template"),
        required=False,
        max_length=512,
        help_text=_("An approved template's name, for reminders outside the 24-hour window."),
    )

    def clean_reminder_hours(self) -> list[int]:
        text = self.cleaned_data.get("reminder_hours") or ""
        try:
            return [int(part) for part in text.replace(";", ",").split(",") if part.strip()]
        except ValueError:
            raise forms.ValidationError(_("Whole hours separated by commas, e.g. 24, 2.")) from None
