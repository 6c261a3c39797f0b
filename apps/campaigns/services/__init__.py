"""Writes of the campaigns app: templates, audiences (attributes, consent, segments, imports), the inbox's
template and interactive sends, campaigns' status moves."""
