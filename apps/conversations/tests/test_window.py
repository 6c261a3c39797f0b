from datetime import UTC, datetime, timedelta

from apps.conversations.models import Conversation
from apps.conversations.selectors import window_open

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def test_the_window_is_open_for_24_hours_after_the_customer_wrote():
    conversation = Conversation(last_inbound_at=NOW - timedelta(hours=23, minutes=59))

    assert window_open(conversation=conversation, now=NOW) is True
    assert window_open(conversation=conversation, now=NOW + timedelta(minutes=1)) is False


def test_the_window_is_closed_before_any_customer_message_or_without_a_conversation():
    assert window_open(conversation=Conversation(), now=NOW) is False
    assert window_open(conversation=None, now=NOW) is False
