"""Who may call what: the minimum role for every operation of the OpenAPI schema.

`PUBLIC` needs no login at all, `AUTHENTICATED` any logged-in user, a role name that role or a
higher one in the workspace the request acts in. tests/test_role_matrix.py fails when the
schema has an operation without a row here, so a new endpoint must take a position.
"""

from __future__ import annotations

from apps.accounts.models import ROLE_RANK, Role

PUBLIC = "public"
AUTHENTICATED = "authenticated"
ANONYMOUS = "anonymous"
ROLES = [ANONYMOUS, Role.VIEWER, Role.AGENT, Role.SUPERVISOR, Role.ADMIN, Role.OWNER]

V, A, S, AD = Role.VIEWER, Role.AGENT, Role.SUPERVISOR, Role.ADMIN

MATRIX: dict[str, str] = {
    "POST /api/auth/login": PUBLIC,
    "POST /api/auth/refresh": PUBLIC,
    "POST /api/auth/logout": AUTHENTICATED,
    "GET /api/auth/me": AUTHENTICATED,
    "GET /api/accounts/workspace/": V,
    "PATCH /api/accounts/workspace/": AD,
    "GET /api/accounts/members/": V,
    "POST /api/accounts/members/": AD,
    "GET /api/accounts/members/{id}/": V,
    "PATCH /api/accounts/members/{id}/": AD,
    "DELETE /api/accounts/members/{id}/": AD,
    "GET /api/audit/": AD,
    "GET /api/alerts/": V,
    "GET /api/alerts/{id}/": V,
    "POST /api/alerts/{id}/acknowledge": A,
    "POST /api/alerts/{id}/resolve": A,
    "POST /api/alerts/{id}/assign": A,
    "GET /api/alerts/rules/": S,
    "POST /api/alerts/rules/": AD,
    "GET /api/alerts/rules/{id}/": S,
    "PATCH /api/alerts/rules/{id}/": AD,
    "DELETE /api/alerts/rules/{id}/": AD,
    "GET /api/calendar/connections/": V,
    "POST /api/calendar/connections/connect": AD,
    "POST /api/calendar/connections/callback": AD,
    "POST /api/calendar/connections/{id}/disconnect": AD,
    "GET /api/calendar/services/": V,
    "POST /api/calendar/services/": AD,
    "GET /api/calendar/services/{id}/": V,
    "PATCH /api/calendar/services/{id}/": AD,
    "GET /api/calendar/services/{id}/slots": V,
    "GET /api/calendar/bookings/": V,
    "POST /api/calendar/bookings/": A,
    "GET /api/calendar/bookings/{id}/": V,
    "POST /api/calendar/bookings/{id}/cancel": A,
    "POST /api/calendar/bookings/{id}/reschedule": A,
    "GET /api/analytics/": S,
    "GET /api/analytics/messages/": S,
    "GET /api/analytics/conversations/": S,
    "GET /api/analytics/response-times/": S,
    "GET /api/analytics/delivery/": S,
    "GET /api/analytics/llm/": S,
    "GET /api/analytics/alerts/": S,
    "GET /api/analytics/opt-outs/": S,
    "GET /api/analytics/campaigns/": S,
    "GET /api/analytics/export/{table}": S,
    "GET /api/business/": V,
    "PUT /api/business/": AD,
    "GET /api/business/providers": V,
    "GET /api/business/assistant": V,
    "PUT /api/business/assistant": AD,
    "PUT /api/business/providers": AD,
    "GET /api/business/knowledge/": V,
    "POST /api/business/knowledge/": S,
    "GET /api/business/knowledge/{id}/": V,
    "PATCH /api/business/knowledge/{id}/": S,
    "DELETE /api/business/knowledge/{id}/": S,
    "POST /api/business/knowledge/import": S,
    "GET /api/business/knowledge/search": V,
    "GET /api/lmstudio/status": AD,
    "POST /api/lmstudio/models/load": AD,
    "GET /api/lmstudio/models/loads": AD,
    "POST /api/lmstudio/models/unload": AD,
    "GET /api/lmstudio/ollama/models": AD,
    "POST /api/lmstudio/ollama/pull": AD,
    "GET /api/lmstudio/ollama/pulls": AD,
    "GET /api/contacts/": V,
    "POST /api/contacts/": A,
    "GET /api/contacts/{id}/": V,
    "PATCH /api/contacts/{id}/": A,
    "DELETE /api/contacts/{id}/": S,
    "GET /api/contacts/export": V,
    "POST /api/contacts/import": A,
    "GET /api/conversations/": V,
    "GET /api/conversations/{id}/": V,
    "GET /api/conversations/{id}/messages/": V,
    "POST /api/conversations/{id}/reply": A,
    "POST /api/conversations/{id}/takeover": A,
    "POST /api/conversations/{id}/handback": A,
    "POST /api/conversations/{id}/close": A,
    "POST /api/conversations/{id}/read": A,
    "POST /api/conversations/{id}/assign": A,
    "GET /api/conversations/{id}/notes/": V,
    "POST /api/conversations/{id}/notes/": A,
    "POST /api/conversations/{id}/attachment": A,
    "GET /api/canned-replies/": A,
    "POST /api/canned-replies/": A,
    "GET /api/canned-replies/{id}/": A,
    "DELETE /api/canned-replies/{id}/": S,
    "GET /api/messages/{id}/media": A,
    "GET /api/queue/": V,
    "POST /api/queue/{id}/cancel": S,
    "POST /api/queue/{id}/retry": S,
    "GET /api/templates/": A,
    "POST /api/templates/": AD,
    "GET /api/templates/{id}/": A,
    "DELETE /api/templates/{id}/": AD,
    "POST /api/templates/sync": AD,
    "GET /api/campaigns/": A,
    "POST /api/campaigns/": AD,
    "GET /api/campaigns/{id}/": A,
    "PATCH /api/campaigns/{id}/": AD,
    "DELETE /api/campaigns/{id}/": AD,
    "POST /api/campaigns/{id}/schedule": AD,
    "POST /api/campaigns/{id}/unschedule": AD,
    "POST /api/campaigns/{id}/pause": AD,
    "POST /api/campaigns/{id}/resume": AD,
    "POST /api/campaigns/{id}/cancel": AD,
    "GET /api/campaigns/{id}/funnel": A,
    "GET /api/campaigns/{id}/preview": A,
    "GET /api/campaigns/{id}/recipients/": A,
    "GET /api/segments/": A,
    "POST /api/segments/": AD,
    "GET /api/segments/{id}/": A,
    "PATCH /api/segments/{id}/": AD,
    "DELETE /api/segments/{id}/": AD,
    "GET /api/segments/{id}/count": A,
    "POST /api/segments/count": A,
    "GET /api/audience/settings": A,
    "PATCH /api/audience/settings": AD,
    "GET /api/contacts/imports/": A,
    "POST /api/contacts/imports/": A,
    "GET /api/contacts/imports/{id}/": A,
    "GET /api/contacts/{id}/consent": V,
    "POST /api/contacts/{id}/consent": A,
    "POST /api/conversations/{id}/template": A,
    "POST /api/conversations/{id}/interactive": A,
    "GET /api/whatsapp/channels/": AD,
    "POST /api/whatsapp/channels/": AD,
    "GET /api/whatsapp/channels/{id}/": AD,
    "PATCH /api/whatsapp/channels/{id}/": AD,
    "DELETE /api/whatsapp/channels/{id}/": AD,
    "GET /api/whatsapp/status": V,
}

ALLOWED = "allowed"


def expected(operation: str, role: str) -> int | str:
    """401, 403, or ALLOWED (any answer but 401/403, and never a 500)."""
    needed = MATRIX[operation]
    if needed == PUBLIC:
        return ALLOWED
    if role == ANONYMOUS:
        return 401
    if needed == AUTHENTICATED or ROLE_RANK[role] >= ROLE_RANK[needed]:
        return ALLOWED
    return 403


# --- dashboard and sandbox pages ------------------------------------------------------------------
# The same roles as the API's rows for the same act. Anonymous visitors are sent to the login page
# (the sandbox's JSON and POST doors answer 401 instead). tests/test_role_matrix.py fails when a page
# of apps/dashboard/urls.py or apps/sandbox/urls.py has no row here.
PAGES: dict[str, str] = {
    "GET /": PUBLIC,
    "GET /login/": PUBLIC,
    "POST /logout/": PUBLIC,
    "GET /inbox/": V,
    "GET /inbox/list/": V,
    "GET /inbox/waiting/": V,
    "GET /inbox/replies/": A,
    "POST /inbox/replies/": A,
    "POST /inbox/replies/{id}/delete/": S,
    "GET /conversations/{id}/": V,
    "GET /conversations/{id}/thread/": V,
    "GET /conversations/{id}/head/": V,
    "GET /conversations/{id}/canned/": A,
    "POST /conversations/{id}/assign/": A,
    "POST /conversations/{id}/note/": A,
    "POST /conversations/{id}/attach/": A,
    "POST /conversations/{id}/reply/": A,
    "POST /conversations/{id}/takeover/": A,
    "POST /conversations/{id}/handback/": A,
    "POST /conversations/{id}/close/": A,
    "GET /queue/": V,
    "GET /queue/list/": V,
    "POST /queue/{id}/cancel/": S,
    "POST /queue/{id}/retry/": S,
    "POST /conversations/{id}/template/": A,
    "GET /templates/": A,
    "POST /templates/sync/": AD,
    "GET /contacts/import/": A,
    "POST /contacts/import/": A,
    "GET /contacts/import/list/": A,
    "GET /segments/": A,
    "POST /segments/": AD,
    "POST /segments/count/": A,
    "GET /campaigns/": A,
    "POST /campaigns/": AD,
    "GET /campaigns/{id}/": A,
    "GET /campaigns/{id}/live/": A,
    "GET /campaigns/{id}/recipients.csv": A,
    "POST /campaigns/{id}/pause/": AD,
    "POST /campaigns/{id}/cancel/": AD,
    "GET /alerts/": V,
    "GET /alerts/list/": V,
    "POST /alerts/{id}/acknowledge/": A,
    "POST /alerts/{id}/resolve/": A,
    "POST /alerts/{id}/assign/": A,
    "GET /calendar/": V,
    "POST /calendar/": AD,
    "GET /calendar/callback": AD,
    "POST /calendar/connect/google/": AD,
    "POST /calendar/connections/{id}/disconnect/": AD,
    "GET /calendar/services/{id}/": AD,
    "POST /calendar/services/{id}/": AD,
    "POST /calendar/bookings/new/": A,
    "POST /calendar/bookings/{id}/cancel/": A,
    "GET /alerts/rules/": S,
    "GET /alerts/rules/new/": AD,
    "POST /alerts/rules/new/": AD,
    "GET /alerts/rules/{id}/": S,
    "POST /alerts/rules/{id}/": AD,
    "POST /alerts/rules/{id}/delete/": AD,
    "GET /analytics/": S,
    "GET /analytics/export/messages_by_day/": S,
    "GET /whatsapp-web/": V,
    "GET /whatsapp-web/list/": V,
    "POST /whatsapp-web/add/": AD,
    "POST /whatsapp-web/{id}/pair/": AD,
    "GET /business/": V,
    "POST /business/": AD,
    "GET /business/providers/": V,
    "POST /business/providers/": AD,
    "POST /business/assistant/": AD,
    "GET /business/knowledge/": V,
    "POST /business/knowledge/": S,
    "GET /business/knowledge/example.csv": V,
    "POST /business/providers/openai/test/": AD,
    "POST /business/knowledge/import/": S,
    "GET /business/knowledge/{id}/": S,
    "POST /business/knowledge/{id}/": S,
    "POST /business/knowledge/{id}/delete/": S,
    "GET /settings/numbers/": AD,
    "POST /settings/numbers/{id}/check/": AD,
    "POST /settings/numbers/{id}/verify-token/": AD,
    "GET /settings/members/": V,
    "POST /settings/members/": AD,
    "POST /settings/members/{id}/role/": AD,
    "POST /settings/members/{id}/remove/": AD,
    "GET /settings/audit/": AD,
    "GET /sandbox/": A,
    "POST /sandbox/send": A,
    "GET /sandbox/messages.json": A,
}
LOGIN = "login"


def page_expected(page: str, role: str) -> int | str:
    """LOGIN (sent to the login page, or 401), 403, or ALLOWED (any answer but those, never a 500)."""
    needed = PAGES[page]
    if needed == PUBLIC:
        return ALLOWED
    if role == ANONYMOUS:
        return LOGIN
    if ROLE_RANK[role] >= ROLE_RANK[needed]:
        return ALLOWED
    return 403
