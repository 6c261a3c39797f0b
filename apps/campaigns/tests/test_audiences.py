"""Audiences: attributes, consent kept in step with the opt-out, segments with a live count."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator

from apps.accounts.models import Role
from apps.accounts.tests.factories import WorkspaceFactory
from apps.campaigns import selectors
from apps.campaigns.models import Segment
from apps.campaigns.services import audiences
from apps.conversations.events import InboundMessage
from apps.conversations.models import ConsentRecord, Contact
from apps.conversations.services.inbound import inbound_message_process
from apps.conversations.services.ingest import inbound_store
from apps.conversations.tests.factories import ContactFactory, ConversationFactory
from apps.whatsapp.tests.factories import ChannelFactory

pytestmark = pytest.mark.django_db


def schema_of(component: str) -> dict:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return schema["components"]["schemas"][component]


# --- attributes -------------------------------------------------------------------------------------
def test_an_agent_sets_attributes_with_checked_names(member_client):
    client, agent = member_client(Role.AGENT)
    contact = ContactFactory.create(workspace=agent.workspace)

    saved = client.patch(
        f"/api/contacts/{contact.pk}/",
        {"attributes": {"city": " Madrid ", "points": 120, "vip": True}},
        format="json",
    )
    bad = client.patch(f"/api/contacts/{contact.pk}/", {"attributes": {"Ciudad Natal": "x"}}, format="json")

    assert saved.status_code == 200
    assert saved.json()["attributes"] == {"city": "Madrid", "points": 120, "vip": True}
    assert bad.status_code == 400 and "attributes" in bad.json()["error"]["details"]
    contact.refresh_from_db()
    assert contact.attributes == {"city": "Madrid", "points": 120, "vip": True}


def test_the_schema_states_the_rules_of_attributes_and_the_api_keeps_to_them(member_client):
    client, _ = member_client(Role.AGENT)
    attributes = schema_of("ContactInputRequest")["properties"]["attributes"]

    def create(wa_id: str, values: dict) -> int:
        return client.post(
            "/api/contacts/", {"wa_id": wa_id, "attributes": values}, format="json"
        ).status_code

    assert attributes["maxProperties"] == 50
    assert "`^[a-z](_?[a-z0-9])*_?$`" in attributes["description"]
    assert attributes["additionalProperties"]["anyOf"][0] == {
        "type": "string",
        "maxLength": 255,
        "nullable": True,
    }
    assert create("34600000001", {"a_1_": "x", "b" * 40: None, "c": 1.5}) == 201
    assert create("34600000002", {"a__b": "x"}) == 400
    assert create("34600000003", {"b" * 41: "x"}) == 400
    assert create("34600000004", {"a": " " + "x" * 255}) == 400  # the limit holds as sent
    assert create("34600000005", {"a": {"nested": 1}}) == 400
    assert list(Contact.objects.values_list("wa_id", "attributes")) == [
        ("34600000001", {"a_1_": "x", "c": 1.5})
    ]


# --- consent ------------------------------------------------------------------------------------------
def test_staff_record_consent_and_the_marketing_opt_out_follows(member_client):
    client, agent = member_client(Role.AGENT)
    contact = ContactFactory.create(workspace=agent.workspace)
    url = f"/api/contacts/{contact.pk}/consent"

    out = client.post(url, {"kind": "marketing", "opted_in": False}, format="json")
    utility = client.post(url, {"kind": "utility", "opted_in": True, "source": "api"}, format="json")
    back_in = client.post(url, {"kind": "marketing", "opted_in": True}, format="json")

    assert (out.status_code, out.json()["opted_out"]) == (201, True)
    assert (utility.status_code, utility.json()["opted_out"]) == (201, True)  # utility leaves marketing alone
    assert back_in.json()["opted_out"] is False
    history = client.get(url).json()["results"]
    assert [(r["kind"], r["opted_in"], r["source"]) for r in history] == [
        ("marketing", True, "staff"),
        ("utility", True, "api"),
        ("marketing", False, "staff"),
    ]


def test_every_opt_out_path_writes_a_consent_record(workspace, tasks_captured):
    """The keyword path (STOP/BAJA) goes through the same service: the record and the flag agree."""
    channel = ChannelFactory.create(workspace=workspace)
    item = InboundMessage(
        wamid="wamid.in.baja",
        type="text",
        timestamp=timezone.now(),
        from_wa_id="34600111222",
        from_bsuid="",
        from_name="Ana",
        body="BAJA",
        raw={"type": "text", "text": {"body": "BAJA"}},
    )
    [message_id] = inbound_store(channel=channel, messages=[item])

    inbound_message_process(message_id=message_id)

    contact = Contact.objects.get(wa_id="34600111222")
    assert contact.opted_out is True
    assert list(ConsentRecord.objects.values_list("contact_id", "kind", "opted_in", "source")) == [
        (contact.pk, "marketing", False, "keyword")
    ]


def test_consent_of_another_workspaces_contact_is_not_found(member_client):
    client, _ = member_client(Role.AGENT)
    theirs = ContactFactory.create(workspace=WorkspaceFactory.create())

    assert client.get(f"/api/contacts/{theirs.pk}/consent").status_code == 404
    assert (
        client.post(
            f"/api/contacts/{theirs.pk}/consent", {"kind": "marketing", "opted_in": False}, format="json"
        ).status_code
        == 404
    )
    assert not ConsentRecord.objects.exists()


# --- segments -------------------------------------------------------------------------------------------
@pytest.fixture
def people(workspace):
    channel = ChannelFactory.create(workspace=workspace)
    other_channel = ChannelFactory.create(workspace=workspace)
    now = timezone.now()
    ana = ContactFactory.create(
        workspace=workspace, tags=["vip", "madrid"], language="es", attributes={"city": "Madrid"}
    )
    ben = ContactFactory.create(workspace=workspace, tags=["vip"], language="en", opted_out=True)
    # Attribute names that are also lookups of a JSON field: still plain keys.
    cris = ContactFactory.create(
        workspace=workspace, tags=["madrid"], language="es", attributes={"contains": "Madrid", "in": "x"}
    )
    dani = ContactFactory.create(workspace=workspace, tags=[], language="es")
    ConversationFactory.create(
        workspace=workspace, channel=channel, contact=ana, last_inbound_at=now - timedelta(days=2)
    )
    ConversationFactory.create(
        workspace=workspace, channel=other_channel, contact=ben, last_inbound_at=now - timedelta(days=40)
    )
    ContactFactory.create(workspace=WorkspaceFactory.create(), tags=["vip"], language="es")  # another tenant
    return {"ana": ana, "ben": ben, "cris": cris, "dani": dani, "channel": channel}


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, {"ana", "ben", "cris", "dani"}),
        ({"tags_any": ["vip", "madrid"]}, {"ana", "ben", "cris"}),
        ({"tags_all": ["vip", "madrid"]}, {"ana"}),
        ({"languages": ["es"]}, {"ana", "cris", "dani"}),
        ({"opted_out": True}, {"ben"}),
        ({"opted_out": False, "tags_any": ["vip"]}, {"ana"}),
        ({"last_inbound_within_days": 7}, {"ana"}),
        ({"last_inbound_older_than_days": 7}, {"ben", "cris", "dani"}),
        ({"attributes": {"city": "Madrid"}}, {"ana"}),
        ({"attributes": {"contains": "Madrid", "in": "x"}}, {"cris"}),
        ({"attributes": {"isnull": "Madrid"}}, set()),
    ],
)
def test_segment_filters_select_the_right_contacts(workspace, people, filters, expected):
    found = selectors.segment_contacts(workspace=workspace, filters=filters)

    names = {name for name, contact in people.items() if name != "channel" and contact in found}
    assert names == expected
    assert found.count() == len(expected)  # nobody of the other workspace


def test_a_segment_by_channel_and_its_live_count(member_client, people):
    admin, member = member_client(Role.ADMIN, people["ana"].workspace)
    agent, _ = member_client(Role.AGENT, people["ana"].workspace)

    created = admin.post(
        "/api/segments/", {"name": "VIP", "filters": {"tags_any": ["vip"], "tags_all": []}}, format="json"
    )
    by_channel = agent.post("/api/segments/count", {"channel_ids": [people["channel"].pk]}, format="json")

    assert created.status_code == 201
    assert created.json()["filters"] == {"tags_any": ["vip"]}
    assert agent.get(f"/api/segments/{created.json()['id']}/count").json() == {
        "count": 2,
        "marketing_eligible": 1,
    }
    assert by_channel.json() == {"count": 1, "marketing_eligible": 1}
    ContactFactory.create(workspace=member.workspace, tags=["vip"])
    assert agent.get(f"/api/segments/{created.json()['id']}/count").json() == {
        "count": 3,
        "marketing_eligible": 2,
    }


def test_only_admins_save_segments_and_bad_filters_are_refused(member_client, workspace):
    agent, _ = member_client(Role.AGENT)
    admin, _ = member_client(Role.ADMIN)

    assert agent.post("/api/segments/", {"name": "x", "filters": {}}, format="json").status_code == 403
    unknown = admin.post("/api/segments/count", {"everyone": True}, format="json")
    assert unknown.status_code == 400
    assert not Segment.objects.exists()


def test_an_attribute_filter_names_a_key_never_a_lookup(member_client, workspace):
    admin, _ = member_client(Role.ADMIN, workspace)
    ContactFactory.create(workspace=workspace, attributes={"a": {"k": "1"}, "b": "1"})

    def count(attributes: dict) -> int:
        return admin.post("/api/segments/count", {"attributes": attributes}, format="json").json()["count"]

    assert count({"b": "1"}) == 1
    # Read as lookups these would match (a's nested k, b in ["1"]) or fail (isnull takes a boolean).
    assert count({"a__k": "1"}) == 0
    assert count({"b__in": "1"}) == 0
    assert count({"isnull": "false"}) == 0
    assert count({"Ciudad Natal": "x"}) == 0


def test_filters_are_named_in_the_schema_and_any_other_key_is_refused(member_client, people):
    agent, _ = member_client(Role.AGENT, people["ana"].workspace)
    filters = schema_of("SegmentFiltersRequest")

    counted = agent.post(
        "/api/segments/count", {"tags_any": ["vip"], "attributes": {"in": "x"}}, format="json"
    )
    misspelt = agent.post("/api/segments/count", {"tag_any": ["vip"]}, format="json")

    assert filters["additionalProperties"] is False
    assert set(filters["properties"]) == audiences.SEGMENT_FILTERS
    assert counted.json() == {"count": 0, "marketing_eligible": 0}
    assert misspelt.status_code == 400
    assert misspelt.json()["error"]["details"] == {"tag_any": ["Unknown filter."]}


# --- audience settings --------------------------------------------------------------------------------
def test_audience_settings_change_only_what_a_patch_sends(member_client):
    admin, member = member_client(Role.ADMIN)
    url = "/api/audience/settings"

    nothing = admin.patch(url, {}, format="json")
    mexico = admin.patch(url, {"default_region": "MX"}, format="json")
    unknown = admin.patch(url, {"default_region": "XX"}, format="json")
    lowercase = admin.patch(url, {"default_region": "es"}, format="json")  # the schema's enum is upper case

    assert (nothing.status_code, nothing.json()) == (200, {"default_region": "ES"})
    assert (mexico.status_code, mexico.json()) == (200, {"default_region": "MX"})
    assert (unknown.status_code, lowercase.status_code) == (400, 400)
    assert admin.get(url).json() == {"default_region": "MX"}
    patched = schema_of("PatchedAudienceSettingsInputRequest")
    assert "required" not in patched
    assert patched["properties"]["default_region"]["allOf"] == [{"$ref": "#/components/schemas/RegionEnum"}]
    assert schema_of("RegionEnum")["enum"] == audiences.REGIONS


def test_another_workspaces_segment_is_not_found(member_client):
    theirs = Segment.objects.create(workspace=WorkspaceFactory.create(), name="x", filters={})
    admin, _ = member_client(Role.ADMIN)

    assert admin.get(f"/api/segments/{theirs.pk}/").status_code == 404
    assert admin.get(f"/api/segments/{theirs.pk}/count").status_code == 404
    assert admin.patch(f"/api/segments/{theirs.pk}/", {"name": "mine"}, format="json").status_code == 404
    assert admin.delete(f"/api/segments/{theirs.pk}/").status_code == 404
    assert admin.get("/api/segments/").json()["results"] == []


def test_the_marketing_audience_never_holds_an_opted_out_contact(workspace, people):
    found = selectors.marketing_audience(workspace=workspace, filters={"tags_any": ["vip"]})

    assert list(found) == [people["ana"]]
