"""Writes of the conversations domain, one module per concern:

- ingest: what the WhatsApp edge received (messages once, statuses forward only, preferences)
- inbound: processing one stored customer message (contact, conversation, opt-out, hand-off)
- outbound: the send queue and its state machine
- actions: what staff do to a conversation (take over, hand back, close, reply)
- optout: marketing opt-out of a contact
- contacts: contact CRUD, CSV import and export
"""
