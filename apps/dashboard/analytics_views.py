"""The Analytics page: the figures of /api/analytics/ for a range of days, with charts and CSV links."""

from __future__ import annotations

import csv
from datetime import date
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from apps.accounts.models import Membership, Role
from apps.analytics import export, selectors
from apps.dashboard import charts, forms
from apps.dashboard.access import member_page
from apps.dashboard.templatetags.analytics_labels import STAGE
from apps.dashboard.templatetags.dashboard_labels import SEVERITY
from apps.dashboard.views import _page
from chatbot.exceptions import ValidationFailed


def _day(row: dict[str, Any]) -> str:
    day: date = row["day"]
    return date_format(day, "d M")


def _channels(membership: Membership) -> list[tuple[int, str]]:
    return [
        (pk, name or str(pk))
        for pk, name in selectors.period_channels(workspace=membership.workspace).values_list("pk", "name")
    ]


def _period(form: forms.AnalyticsFilterForm, membership: Membership) -> selectors.Period:
    """The range asked for; the default one (and the reason on the form) when it cannot be read."""
    filters: dict[str, Any] = {}
    if form.is_bound:
        form.is_valid()  # the fields that are valid still narrow the period
        filters = form.cleaned_data
    try:
        return selectors.period_build(
            workspace=membership.workspace,
            start=filters.get("start"),
            end=filters.get("end"),
            channel_id=filters.get("channel"),
        )
    except ValidationFailed as exc:
        form.add_error(None, exc.message)
        return selectors.period_build(workspace=membership.workspace)


@require_GET
@member_page(read=Role.SUPERVISOR)
def analytics(request: HttpRequest, membership: Membership) -> HttpResponse:
    form = forms.AnalyticsFilterForm(request.GET or None, channels=_channels(membership))
    period = _period(form, membership)
    messages = selectors.message_volume(period=period)
    conversations = selectors.conversation_counts(period=period)
    delivery = selectors.delivery_funnel(period=period)
    alerts = selectors.alerts_by_severity(period=period)
    inbound, outbound = ("inbound", "in", _("In")), ("outbound", "out", _("Out"))
    figure_charts = {
        "messages_by_day": charts.stacked_columns(
            title=_("Messages by day"), rows=messages["by_day"], series=[inbound, outbound], label=_day
        ),
        "messages_by_hour": charts.stacked_columns(
            title=_("Messages by hour of day"),
            rows=messages["by_hour"],
            series=[inbound, outbound],
            label=lambda row: f"{row['hour']:02d}",
            most_labels=12,
        ),
        "conversations_by_day": charts.lines(
            title=_("Conversations by day"),
            rows=conversations["by_day"],
            series=[
                ("opened", "opened", _("Opened")),
                ("handed", "handed", _("Handed to a person")),
                ("closed", "closed", _("Closed")),
            ],
            label=_day,
        ),
        "delivery": charts.horizontal_bars(
            title=_("Delivery funnel"),
            items=[(str(STAGE[row["stage"]]), row["count"], row["stage"]) for row in delivery["funnel"]],
            of=delivery["outbound"] or None,
        ),
        "alerts": charts.horizontal_bars(
            title=_("Alerts by severity"),
            items=[
                (str(SEVERITY[row["severity"]]), row["alerts"], row["severity"]) for row in alerts["rows"]
            ],
        ),
    }
    query = {"start": period.start.isoformat(), "end": period.end.isoformat()}
    if period.channel_id is not None:
        query["channel"] = str(period.channel_id)
    return _page(
        request,
        membership,
        "dashboard/analytics.html",
        form=form,
        period=period,
        export_query="&".join(f"{key}={value}" for key, value in query.items()),
        charts=figure_charts,
        messages_figures=messages,
        conversations=conversations,
        response=selectors.response_times(period=period),
        delivery=delivery,
        llm=selectors.llm_usage(period=period),
        alerts=alerts,
        opt_outs=selectors.opt_outs(period=period),
        campaigns=selectors.campaign_funnels(period=period),
    )


@require_GET
@member_page(read=Role.SUPERVISOR)
def analytics_export(request: HttpRequest, membership: Membership, table: str) -> HttpResponse:
    """One table as CSV, for the range the page shows (the API's export, for a logged-in page)."""
    if table not in export.TABLES:
        raise Http404
    form = forms.AnalyticsFilterForm(request.GET or None, channels=_channels(membership))
    period = _period(form, membership)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    csv.writer(response).writerows(export.table_csv_rows(table=table, period=period))
    response["Content-Disposition"] = (
        f'attachment; filename="{table}_{period.start:%Y%m%d}-{period.end:%Y%m%d}.csv"'
    )
    return response
