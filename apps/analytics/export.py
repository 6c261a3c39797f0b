"""Each analytics table as CSV rows: a header, then one row per line of the table the API answers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from apps.analytics import selectors
from apps.analytics.selectors import Period

# Spreadsheets run a cell starting with one of these as a formula (CSV injection): error titles and
# model names come from outside.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    text = value.isoformat() if hasattr(value, "isoformat") else str(value)
    if isinstance(value, str) and text.startswith(_FORMULA_START):
        return f"'{text}"
    return text


def _rows(
    columns: list[str], fetch: Callable[[Period], dict[str, Any]], key: str
) -> Callable[[Period], tuple[list[str], list[dict[str, Any]]]]:
    def table(period: Period) -> tuple[list[str], list[dict[str, Any]]]:
        return columns, fetch(period)[key]

    return table


TABLES: dict[str, Callable[[Period], tuple[list[str], list[dict[str, Any]]]]] = {
    "messages_by_day": _rows(
        ["day", "inbound", "outbound"], lambda p: selectors.message_volume(period=p), "by_day"
    ),
    "messages_by_hour": _rows(
        ["hour", "inbound", "outbound"], lambda p: selectors.message_volume(period=p), "by_hour"
    ),
    "conversations_by_day": _rows(
        ["day", "opened", "handed", "closed"], lambda p: selectors.conversation_counts(period=p), "by_day"
    ),
    "response_times": _rows(
        ["measure", "count", "p50_seconds", "p90_seconds", "average_seconds"],
        lambda p: selectors.response_times(period=p),
        "rows",
    ),
    "delivery_funnel": _rows(["stage", "count"], lambda p: selectors.delivery_funnel(period=p), "funnel"),
    "delivery_failures": _rows(
        ["error_code", "error_title", "count"], lambda p: selectors.delivery_funnel(period=p), "failures"
    ),
    "llm_usage": _rows(
        [
            "provider",
            "model",
            "replies",
            "cache_hits",
            "fallbacks",
            "tokens_in",
            "tokens_out",
            "cost_usd",
            "latency_avg_ms",
            "latency_p50_ms",
            "latency_p90_ms",
        ],
        lambda p: selectors.llm_usage(period=p),
        "rows",
    ),
    "alerts_by_severity": _rows(
        ["severity", "alerts", "open", "acknowledged", "resolved"],
        lambda p: selectors.alerts_by_severity(period=p),
        "rows",
    ),
    "opt_outs_by_day": _rows(["day", "opt_outs"], lambda p: selectors.opt_outs(period=p), "by_day"),
    "opt_outs_by_source": _rows(["source", "opt_outs"], lambda p: selectors.opt_outs(period=p), "by_source"),
    "campaign_funnels": _rows(
        selectors.CAMPAIGN_COLUMNS, lambda p: selectors.campaign_funnels(period=p), "rows"
    ),
}


def table_csv_rows(*, table: str, period: Period) -> Iterator[list[str]]:
    """The header, then the table's rows as text cells."""
    columns, rows = TABLES[table](period)
    yield columns
    for row in rows:
        yield [_cell(row[column]) for column in columns]
