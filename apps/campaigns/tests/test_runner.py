"""The campaign runner (issue 12, items 3 and 4): fan-out once per contact even when a worker dies, a
feed that keeps the number's queue short, pause / resume / cancel at any moment, Meta's stops
(131048, a paused template, the messaging limit) and the funnel read back from the messages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.test import TestCase
from django.utils import timezone

from apps.accounts.tests.factories import WorkspaceFactory
from apps.campaigns import selectors
from apps.campaigns.models import Campaign, Recipient, Template
from apps.campaigns.services import runner
from apps.campaigns.tests.conftest import BODY, WABA  # noqa: F401 - BODY for the API tests
from apps.conversations.models import Conversation, Message
from apps.conversations.services import sender
from apps.conversations.tests.factories import ContactFactory, ConversationFactory
from apps.whatsapp.models import Channel
from chatbot.exceptions import Conflict, ValidationFailed

pytestmark = [pytest.mark.django_db]

St = Campaign.Status
R = Recipient.State
S = Message.SendState
NAME_AND_OFFER = [
    {"source": "name", "key": "", "default": ""},
    {"source": "attribute", "key": "offer", "default": "5%"},
]


def contacts(workspace, count: int, start: int = 0, **fields: Any) -> list:
    return [
        ContactFactory.create(
            workspace=workspace, wa_id=f"3461200{start + n:04d}", name=f"Cliente {start + n}", **fields
        )
        for n in range(count)
    ]


def campaign_for(waba_channel, template, admin, **fields: Any) -> Campaign:
    values: dict[str, Any] = {
        "name": "Rebajas",
        "template": template,
        "channel": waba_channel,
        "audience_filters": {},
        "variables": NAME_AND_OFFER,
        **fields,
    }
    return runner.campaign_create(workspace=waba_channel.workspace, user=admin, **values)


def started(campaign: Campaign, admin, tasks_captured) -> str:
    """Schedule it now: it runs; the token of its step chain."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        runner.campaign_schedule(campaign=campaign, user=admin)
    campaign.refresh_from_db()
    assert campaign.status == St.RUNNING
    assert tasks_captured.of("campaigns.campaign_step")[-1].args == (campaign.pk, campaign.feed_token)
    return campaign.feed_token


def step(campaign: Campaign, token: str | None = None) -> float | None:
    campaign.refresh_from_db()
    return runner.campaign_step(campaign_id=campaign.pk, token=token or campaign.feed_token)


def steps_until_fanned_out(campaign: Campaign, most: int = 50) -> None:
    for _ in range(most):
        if step(campaign) != 0.0:  # 0: more contacts to fan out at once
            return


def campaign_messages(campaign: Campaign):
    return Message.objects.filter(author=Message.Author.CAMPAIGN, workspace_id=campaign.workspace_id)


def test_a_campaign_fans_out_once_per_contact_and_skips_with_the_reason(
    waba_channel, template, admin, tasks_captured, settings
):
    workspace = waba_channel.workspace
    settings.CAMPAIGNS_FANOUT_BATCH = 3
    reachable = contacts(workspace, 4)
    opted_out = contacts(workspace, 1, start=50, opted_out=True)[0]
    nameless = ContactFactory.create(workspace=workspace, wa_id="34699999999", name="", profile_name="")
    contacts(WorkspaceFactory.create(), 2)  # another tenant's
    campaign = campaign_for(waba_channel, template, admin)
    started(campaign, admin, tasks_captured)

    assert step(campaign) == 0.0  # a full batch: the next batch at once
    assert Recipient.objects.filter(campaign=campaign).count() == 3
    steps_until_fanned_out(campaign)

    found = {r.contact_id: r for r in Recipient.objects.filter(campaign=campaign)}
    assert set(found) == {c.pk for c in [*reachable, opted_out, nameless]}  # the other tenant's: nobody
    assert (found[opted_out.pk].state, found[opted_out.pk].skip_reason) == (R.SKIPPED, "opted_out")
    assert (found[nameless.pk].state, found[nameless.pk].skip_reason) == (R.SKIPPED, "missing_variable")
    assert found[reachable[0].pk].parameters == ["Cliente 0", "5%"]
    campaign.refresh_from_db()
    assert campaign.fanned_out_at is not None and campaign.fanout_cursor == max(found)


def test_a_worker_killed_mid_step_leaves_nothing_half_written_and_the_rerun_sends_nobody_twice(
    waba_channel, template, admin, tasks_captured, settings, monkeypatch
):
    settings.CAMPAIGNS_FANOUT_BATCH = 2
    people = contacts(waba_channel.workspace, 5)
    campaign = campaign_for(waba_channel, template, admin)
    token = started(campaign, admin, tasks_captured)
    assert step(campaign) == 0.0  # 2 recipients, 2 messages

    def killed(*args: Any, **kwargs: Any) -> int:
        raise SystemExit("worker killed")

    monkeypatch.setattr(runner, "_feed", killed)
    with pytest.raises(SystemExit):
        step(campaign)
    monkeypatch.undo()
    campaign.refresh_from_db()
    assert Recipient.objects.filter(campaign=campaign).count() == 2 and campaign.fanout_cursor == people[1].pk

    # The broker re-delivers the step (acks late), and a duplicate of it runs too.
    steps_until_fanned_out(campaign)
    step(campaign, token)
    per_contact = {}
    for message in campaign_messages(campaign).exclude(send_state=S.CANCELLED):
        per_contact[message.contact_id] = per_contact.get(message.contact_id, 0) + 1
    assert per_contact == {contact.pk: 1 for contact in people}
    assert Recipient.objects.filter(campaign=campaign, state=R.QUEUED).count() == 5


def test_the_feed_keeps_the_numbers_queue_a_few_seconds_long_and_replies_queue_behind_it_only(
    waba_channel, template, admin, tasks_captured, settings
):
    settings.CAMPAIGNS_FEED_AHEAD = 2.0
    Channel.objects.filter(pk=waba_channel.pk).update(send_rate=3)  # 6 in the queue at most
    contacts(waba_channel.workspace, 20)
    campaign = campaign_for(waba_channel, template, admin)
    started(campaign, admin, tasks_captured)

    assert step(campaign) == settings.CAMPAIGNS_FEED_INTERVAL
    assert campaign_messages(campaign).filter(send_state=S.PENDING).count() == 6
    step(campaign)
    assert campaign_messages(campaign).count() == 6  # the queue is full: nothing more yet
    campaign_messages(campaign).filter(pk__in=campaign_messages(campaign).values("pk")[:4]).update(
        send_state=S.SENT, status=Message.Status.SENT
    )
    step(campaign)
    assert campaign_messages(campaign).filter(send_state=S.PENDING).count() == 6
    message = campaign_messages(campaign).first()
    assert message.type == "template" and message.payload["name"] == "oferta"
    assert message.payload["components"][0]["parameters"][1] == {"type": "text", "text": "5%"}
    assert message.conversation.status == Conversation.Status.OPEN  # a reply lands in the inbox


def test_pause_takes_back_the_unsent_messages_and_resume_sends_them_once(
    waba_channel, template, admin, tasks_captured
):
    people = contacts(waba_channel.workspace, 6)
    campaign = campaign_for(waba_channel, template, admin)
    old_token = started(campaign, admin, tasks_captured)
    step(campaign)
    sent_already = campaign_messages(campaign).order_by("pk").first()
    Message.objects.filter(pk=sent_already.pk).update(send_state=S.SENT, status=Message.Status.SENT)

    runner.campaign_pause(campaign=campaign, user=admin)

    campaign.refresh_from_db()
    assert (campaign.status, campaign.paused_reason) == (St.PAUSED, "staff")
    assert campaign_messages(campaign).filter(send_state=S.PENDING).count() == 0
    assert campaign_messages(campaign).filter(send_state=S.CANCELLED).count() == 5
    assert Recipient.objects.filter(campaign=campaign, state=R.WAITING).count() == 5
    assert step(campaign, old_token) is None  # the old chain stops

    runner.campaign_resume(campaign=campaign, user=admin)
    campaign.refresh_from_db()
    assert campaign.feed_token != old_token and campaign.status == St.RUNNING
    assert step(campaign, old_token) is None
    step(campaign)
    live = campaign_messages(campaign).exclude(send_state=S.CANCELLED)
    assert sorted(live.values_list("contact_id", flat=True)) == sorted(c.pk for c in people)


def test_cancel_stops_everyone_not_yet_handed_to_whatsapp(
    waba_channel, template, admin, tasks_captured, settings
):
    settings.CAMPAIGNS_FEED_AHEAD = 1.0
    Channel.objects.filter(pk=waba_channel.pk).update(send_rate=2)
    contacts(waba_channel.workspace, 5)
    campaign = campaign_for(waba_channel, template, admin)
    started(campaign, admin, tasks_captured)
    step(campaign)
    claimed = campaign_messages(campaign).order_by("pk").first()
    Message.objects.filter(pk=claimed.pk).update(send_state=S.PROCESSING)

    runner.campaign_cancel(campaign=campaign, user=admin)

    funnel = selectors.campaign_funnel(campaign=campaign)
    assert (funnel["total"], funnel["cancelled"], funnel["in_queue"]) == (5, 4, 1)
    assert Message.objects.get(pk=claimed.pk).send_state == S.PROCESSING  # it may have reached Meta
    with pytest.raises(Conflict):
        runner.campaign_resume(campaign=campaign, user=admin)


def test_a_131048_pauses_the_campaign_and_a_template_paused_by_meta_too(
    waba_channel, template, admin, tasks_captured
):
    contacts(waba_channel.workspace, 4)
    campaign = campaign_for(waba_channel, template, admin)
    started(campaign, admin, tasks_captured)
    step(campaign)
    spam = campaign_messages(campaign).order_by("pk").first()
    Message.objects.filter(pk=spam.pk).update(send_state=S.RETRY, error_code=131048)

    assert step(campaign) is None
    campaign.refresh_from_db()
    assert (campaign.status, campaign.paused_reason) == (St.PAUSED, "spam_rate_limit")
    assert Recipient.objects.filter(campaign=campaign, state=R.WAITING).count() == 4
    from apps.alerts.models import Alert

    told = Alert.objects.get(workspace_id=campaign.workspace_id)
    assert (told.kind, told.severity, told.rule_id) == ("campaign_stopped", "high", None)
    assert "131048" in told.summary and campaign.name in told.summary

    Message.objects.filter(pk=spam.pk).update(error_code=None)
    runner.campaign_resume(campaign=campaign, user=admin)
    Template.objects.filter(pk=template.pk).update(status=Template.Status.PAUSED)
    assert step(campaign) is None
    campaign.refresh_from_db()
    assert (campaign.status, campaign.paused_reason) == (St.PAUSED, "template_paused")
    with pytest.raises(Conflict):  # not while the template is paused
        runner.campaign_resume(campaign=campaign, user=admin)

    Template.objects.filter(pk=template.pk).update(status=Template.Status.APPROVED)
    runner.campaign_resume(campaign=campaign, user=admin)
    Template.objects.filter(pk=template.pk).update(variable_count=3)  # synced again, changed at Meta
    assert step(campaign) is None
    campaign.refresh_from_db()
    assert campaign.status == St.FAILED and "variables changed" in campaign.failure
    assert Alert.objects.filter(workspace_id=campaign.workspace_id, kind="campaign_stopped").count() == 3
    assert set(Recipient.objects.filter(campaign=campaign).values_list("state", flat=True)) == {R.CANCELLED}

    Template.objects.filter(pk=template.pk).update(variable_count=2)
    campaign = campaign_for(waba_channel, template, admin, name="Otra")
    started(campaign, admin, tasks_captured)
    Template.objects.filter(pk=template.pk).update(status=Template.Status.DISABLED)
    assert step(campaign) is None
    campaign.refresh_from_db()
    assert campaign.status == St.FAILED and "disabled" in campaign.failure


def test_the_messaging_limit_counts_customers_across_campaigns_and_the_rest_wait_for_the_window(
    waba_channel, template, admin, tasks_captured
):
    Channel.objects.filter(pk=waba_channel.pk).update(messaging_limit=4)
    contacts(waba_channel.workspace, 6, tags=["vip"])
    yesterday_customer = contacts(waba_channel.workspace, 1, start=70)[0]
    earlier = campaign_for(waba_channel, template, admin, name="Ayer")
    an_hour_ago = timezone.now() - timedelta(hours=1)
    Recipient.objects.create(
        campaign=earlier,
        contact=yesterday_customer,
        channel=waba_channel,
        state=R.QUEUED,
        queued_at=an_hour_ago,
    )
    campaign = campaign_for(waba_channel, template, admin, audience_filters={"tags_any": ["vip"]})
    started(campaign, admin, tasks_captured)

    wait = step(campaign)

    assert campaign_messages(campaign).count() == 3  # 4 customers a day, one used an hour ago
    campaign.refresh_from_db()
    assert campaign.waiting_reason == "messaging_limit"
    assert campaign.waiting_until == an_hour_ago + timedelta(hours=24)
    assert wait == runner.LIMIT_RECHECK
    assert step(campaign) == runner.LIMIT_RECHECK and campaign_messages(campaign).count() == 3
    Recipient.objects.filter(campaign=earlier).update(queued_at=an_hour_ago - timedelta(hours=24))
    step(campaign)
    assert campaign_messages(campaign).count() == 4
    campaign.refresh_from_db()
    assert campaign.waiting_reason == "messaging_limit"


def test_the_numbers_of_one_business_account_share_its_messaging_limit(
    waba_channel, template, admin, tasks_captured
):
    from apps.whatsapp.tests.factories import ChannelFactory

    workspace = waba_channel.workspace
    sibling = ChannelFactory.create(workspace=workspace, waba_id=waba_channel.waba_id, messaging_limit=3)
    other_account = ChannelFactory.create(workspace=workspace, waba_id="999", messaging_limit=3)
    Channel.objects.filter(pk=waba_channel.pk).update(messaging_limit=3)
    contacts(workspace, 2, tags=["early"])
    contacts(workspace, 3, start=10, tags=["late"])
    first = campaign_for(waba_channel, template, admin, name="A", audience_filters={"tags_any": ["early"]})
    started(first, admin, tasks_captured)
    step(first)
    assert campaign_messages(first).count() == 2

    second = campaign_for(sibling, template, admin, name="B", audience_filters={"tags_any": ["late"]})
    started(second, admin, tasks_captured)
    step(second)
    other_template = Template.objects.create(
        workspace=workspace,
        waba_id="999",
        name="oferta",
        language="es",
        category=Template.Category.MARKETING,
        status=Template.Status.APPROVED,
        components=BODY,
        variable_count=2,
    )
    third = campaign_for(
        other_account, other_template, admin, name="C", audience_filters={"tags_any": ["late"]}
    )
    started(third, admin, tasks_captured)
    step(third)

    recipients = Recipient.objects.filter(state=R.QUEUED)
    assert recipients.filter(campaign=second).count() == 1  # 3 a day for the account, 2 used by A
    second.refresh_from_db()
    assert second.waiting_reason == "messaging_limit"
    assert recipients.filter(campaign=third).count() == 3  # another account: its own count


def test_templates_sent_from_the_inbox_count_against_the_messaging_limit(
    waba_channel, template, admin, tasks_captured
):
    Channel.objects.filter(pk=waba_channel.pk).update(messaging_limit=3)
    contacts(waba_channel.workspace, 5, tags=["vip"])
    inbox_customer = contacts(waba_channel.workspace, 1, start=80)[0]
    conversation = ConversationFactory(channel=waba_channel, contact=inbox_customer)
    sent = Message.objects.create(
        workspace=waba_channel.workspace,
        channel=waba_channel,
        conversation=conversation,
        contact=inbox_customer,
        direction=Message.Direction.OUTBOUND,
        author=Message.Author.AGENT,
        type="template",
        send_state=Message.SendState.SENT,
        status=Message.Status.DELIVERED,
    )
    two_hours_ago = timezone.now() - timedelta(hours=2)
    Message.objects.filter(pk=sent.pk).update(created_at=two_hours_ago)
    campaign = campaign_for(waba_channel, template, admin, audience_filters={"tags_any": ["vip"]})
    started(campaign, admin, tasks_captured)

    step(campaign)

    assert campaign_messages(campaign).count() == 2  # 3 a day, one started from the inbox
    campaign.refresh_from_db()
    assert (campaign.waiting_reason, campaign.waiting_until) == (
        "messaging_limit",
        two_hours_ago + timedelta(hours=24),
    )


def test_the_campaign_completes_once_every_message_left_the_queue(
    waba_channel, template, admin, tasks_captured
):
    contacts(waba_channel.workspace, 2)
    campaign = campaign_for(waba_channel, template, admin)
    started(campaign, admin, tasks_captured)
    step(campaign)
    assert step(campaign) is not None  # still in the queue
    campaign_messages(campaign).update(send_state=S.SENT, status=Message.Status.SENT)
    assert step(campaign) is None
    campaign.refresh_from_db()
    assert campaign.status == St.COMPLETED and campaign.finished_at is not None


def test_the_funnel_follows_the_status_webhooks_and_the_replies(
    waba_channel, template, admin, tasks_captured
):
    people = contacts(waba_channel.workspace, 5)
    contacts(waba_channel.workspace, 1, start=90, opted_out=True)
    campaign = campaign_for(waba_channel, template, admin)
    started(campaign, admin, tasks_captured)
    step(campaign)
    by_contact = {m.contact_id: m for m in campaign_messages(campaign)}
    statuses = [Message.Status.SENT, Message.Status.DELIVERED, Message.Status.READ, Message.Status.FAILED]
    for person, status in zip(people, statuses, strict=False):
        Message.objects.filter(pk=by_contact[person.pk].pk).update(
            status=status,
            send_state=S.FAILED if status == Message.Status.FAILED else S.SENT,
            error_code=131049 if status == Message.Status.FAILED else None,
        )
    read = by_contact[people[2].pk]
    Message.objects.create(
        workspace_id=read.workspace_id,
        channel_id=read.channel_id,
        conversation_id=read.conversation_id,
        contact_id=read.contact_id,
        direction=Message.Direction.INBOUND,
        author=Message.Author.CUSTOMER,
        body="¡Me interesa!",
        wamid="wamid.reply-1",
    )

    funnel = selectors.campaign_funnel(campaign=campaign)

    assert funnel == {
        "total": 6,
        "waiting": 0,
        "skipped": 1,
        "cancelled": 0,
        "queued": 5,
        "in_queue": 1,
        "sent": 3,
        "delivered": 2,
        "read": 1,
        "replied": 1,
        "failed": 1,
        "skipped_by_reason": {"opted_out": 1},
        "failed_by_code": [{"error_code": 131049, "count": 1}],
    }
    replied = selectors.recipient_list(campaign=campaign, stage="replied")
    assert [r.contact_id for r in replied] == [people[2].pk]
    assert [r.contact_id for r in selectors.recipient_list(campaign=campaign, stage="failed")] == [
        people[3].pk
    ]


def test_a_time_without_offset_is_read_in_the_workspaces_zone_and_the_skipped_hour_is_refused():
    madrid = "Europe/Madrid"
    assert (
        runner.local_time(datetime.fromisoformat("2027-03-27T10:00"), madrid).astimezone(UTC).hour == 9
    )  # CET
    assert (
        runner.local_time(datetime.fromisoformat("2027-03-28T10:00"), madrid).astimezone(UTC).hour == 8
    )  # CEST
    with pytest.raises(ValidationFailed, match="does not exist"):
        runner.local_time(datetime.fromisoformat("2027-03-28T02:30"), madrid)
    aware = datetime(2027, 3, 28, 2, 30, tzinfo=UTC)
    assert runner.local_time(aware, madrid) is aware


def test_a_scheduled_campaign_starts_when_its_time_comes_and_a_stalled_chain_restarts(
    waba_channel, template, admin, tasks_captured
):
    contacts(waba_channel.workspace, 1)
    campaign = campaign_for(waba_channel, template, admin)
    at = timezone.now() + timedelta(hours=2)
    runner.campaign_schedule(campaign=campaign, user=admin, scheduled_at=at)
    assert runner.campaigns_tick() == {"started": 0, "restarted": 0}
    assert runner.campaigns_tick(now=at + timedelta(seconds=1))["started"] == 1
    campaign.refresh_from_db()
    assert campaign.status == St.RUNNING
    token = campaign.feed_token

    Campaign.objects.filter(pk=campaign.pk).update(fed_at=timezone.now() - timedelta(minutes=5))
    assert runner.campaigns_tick()["restarted"] == 1
    campaign.refresh_from_db()
    assert campaign.feed_token != token and step(campaign, token) is None


def test_a_campaign_that_cannot_be_sent_is_refused_with_the_reason(waba_channel, template, admin):
    campaign = campaign_for(waba_channel, template, admin, variables=NAME_AND_OFFER[:1])
    with pytest.raises(Conflict, match="takes 2 variables"):
        runner.campaign_schedule(campaign=campaign, user=admin)
    Template.objects.filter(pk=template.pk).update(status=Template.Status.PENDING)
    runner.campaign_update(campaign=campaign, user=admin, variables=NAME_AND_OFFER)
    with pytest.raises(Conflict, match="not approved"):
        runner.campaign_schedule(campaign=campaign, user=admin)
    with pytest.raises(ValidationFailed):
        runner.campaign_update(campaign=campaign, user=admin, variables=[{"source": "attribute"}])
    Template.objects.filter(pk=template.pk).update(
        status=Template.Status.APPROVED,
        components=[
            *BODY,
            {"type": "BUTTONS", "buttons": [{"type": "URL", "text": "Ver", "url": "https://x.es/{{1}}"}]},
        ],
    )
    with pytest.raises(Conflict, match="1 links ending in a variable; the campaign gives 0"):
        runner.campaign_schedule(campaign=campaign, user=admin)
    Template.objects.filter(pk=template.pk).update(
        components=[{"type": "HEADER", "format": "TEXT", "text": "Para {{1}}"}, *BODY]
    )
    with pytest.raises(Conflict, match="header takes 1 variables; the campaign gives 0"):
        runner.campaign_schedule(campaign=campaign, user=admin)
    with pytest.raises(ValidationFailed, match="at most 1 items"):
        runner.campaign_update(campaign=campaign, user=admin, header_variables=NAME_AND_OFFER)
    with pytest.raises(ValidationFailed, match="Link button 1: an attribute source names its key"):
        runner.campaign_update(campaign=campaign, user=admin, button_variables=[{"source": "attribute"}])


HEADER_AND_LINKS = [
    {"type": "HEADER", "format": "TEXT", "text": "Oferta para {{1}}", "example": {"header_text": ["Ana"]}},
    *BODY,
    {
        "type": "BUTTONS",
        "buttons": [
            {"type": "QUICK_REPLY", "text": "No me interesa"},
            {"type": "URL", "text": "Mi cupón", "url": "https://tienda.example/cupon/{{1}}"},
            {"type": "URL", "text": "Tienda", "url": "https://tienda.example/"},
            {"type": "URL", "text": "Mi pedido", "url": "https://tienda.example/pedido?c={{1}}"},
        ],
    },
]


@pytest.mark.django_db(transaction=True)
def test_header_and_link_button_variables_are_filled_per_customer_and_reach_meta(
    waba_channel, template, admin, tasks_captured, graph_standin
):
    Template.objects.filter(pk=template.pk).update(components=HEADER_AND_LINKS)
    template.refresh_from_db()
    workspace = waba_channel.workspace
    ana = ContactFactory.create(
        workspace=workspace, wa_id="34612000001", name="Ana María", attributes={"coupon": "AB 12/ñ"}
    )
    ContactFactory.create(workspace=workspace, wa_id="34612000002", name="Luis", attributes={})
    campaign = campaign_for(
        waba_channel,
        template,
        admin,
        variables=[NAME_AND_OFFER[0], {"source": "text", "key": "", "default": "15%"}],
        header_variables=[{"source": "name", "key": "", "default": ""}],
        button_variables=[
            {"source": "attribute", "key": "coupon", "default": ""},  # Luis has none: skipped
            {"source": "wa_id", "key": "", "default": ""},
        ],
    )
    assert runner.campaign_preview(campaign=campaign)[0]["text"].startswith("Oferta para Ana María\n\nHola")
    started(campaign, admin, tasks_captured)
    step(campaign)
    sender.sender_run(channel_id=waba_channel.pk, slice_seconds=5.0, threads=2)

    recipients = {r.contact_id: r for r in Recipient.objects.filter(campaign=campaign)}
    assert recipients[ana.pk].header_parameters == ["Ana María"]
    assert recipients[ana.pk].button_parameters == ["AB%2012%2F%C3%B1", "34612000001"]
    assert [r.skip_reason for r in recipients.values() if r.contact_id != ana.pk] == ["missing_variable"]
    sent = [record for record in graph_standin.sent if record["type"] == "template"]
    assert [record["to"] for record in sent] == ["34612000001"]
    assert sent[0]["content"]["components"] == [
        {"type": "header", "parameters": [{"type": "text", "text": "Ana María"}]},
        {
            "type": "body",
            "parameters": [{"type": "text", "text": "Ana María"}, {"type": "text", "text": "15%"}],
        },
        {
            "type": "button",
            "sub_type": "url",
            "index": "1",
            "parameters": [{"type": "text", "text": "AB%2012%2F%C3%B1"}],
        },
        {
            "type": "button",
            "sub_type": "url",
            "index": "3",
            "parameters": [{"type": "text", "text": "34612000001"}],
        },
    ]
    message = campaign_messages(campaign).get()
    assert message.body.startswith("Oferta para Ana María\n\nHola Ana María, 15% de descuento.")


@pytest.mark.django_db(transaction=True)
def test_end_to_end_the_sender_delivers_each_customer_one_template_through_the_graph_standin(
    waba_channel, template, admin, tasks_captured, graph_standin
):
    people = contacts(waba_channel.workspace, 8, attributes={"offer": "20%"})
    ConversationFactory.create(channel=waba_channel, contact=people[0])  # one already talks to us
    campaign = campaign_for(waba_channel, template, admin)
    started(campaign, admin, tasks_captured)
    for _ in range(5):
        step(campaign)
        sender.sender_run(channel_id=waba_channel.pk, slice_seconds=5.0, threads=2)
        if step(campaign) is None:
            break

    campaign.refresh_from_db()
    assert campaign.status == St.COMPLETED
    sent = [record for record in graph_standin.sent if record["type"] == "template"]
    assert sorted(record["to"] for record in sent) == sorted(p.wa_id for p in people)
    first = next(record for record in sent if record["to"] == people[0].wa_id)
    assert first["content"]["components"][0]["parameters"] == [
        {"type": "text", "text": "Cliente 0"},
        {"type": "text", "text": "20%"},
    ]
    assert Conversation.objects.filter(contact=people[0]).count() == 1  # its live conversation was used
    assert selectors.campaign_funnel(campaign=campaign)["sent"] == 8


def test_a_template_with_an_image_header_needs_its_https_link_and_sends_it_to_everyone(
    waba_channel, template, admin, tasks_captured, graph_standin
):
    Template.objects.filter(pk=template.pk).update(
        components=[{"type": "HEADER", "format": "IMAGE", "example": {"header_handle": ["4::aW1n"]}}, *BODY]
    )
    contacts(waba_channel.workspace, 2, attributes={"offer": "30%"})
    campaign = campaign_for(waba_channel, template, admin)
    with pytest.raises(Conflict, match="https:// link"):
        runner.campaign_schedule(campaign=campaign, user=admin)

    runner.campaign_update(
        campaign=campaign, user=admin, header_media_url="https://tienda.example/rebajas.jpg"
    )
    started(campaign, admin, tasks_captured)
    step(campaign)

    payload = campaign_messages(campaign).first().payload
    assert payload["components"][0] == {
        "type": "header",
        "parameters": [{"type": "image", "image": {"link": "https://tienda.example/rebajas.jpg"}}],
    }
    assert payload["components"][1]["type"] == "body"
