"""`INSERT ... RETURNING id` for hot paths, its SQL compiled once per process, model and database.

Django's compiler (field_as_sql, quote_name, assembling the statement) costs more Python time than
the statement's round trip on the hottest writes: a webhook delivery's message row, a live event per
sent message. A one-row insert reuses the compiled statement; the row only prepares its values the way
the compiler would (`pre_save`, `get_db_prep_save`).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.utils import CursorWrapper
from django.db.models import Field, Model
from django.db.models.constants import OnConflict
from django.db.models.sql import InsertQuery
from django_prometheus.db.common import DatabaseWrapperMixin, ExportingCursorWrapper


def _fields(model: type[Model]) -> list[Field[Any, Any]]:
    return [f for f in model._meta.concrete_fields if not f.primary_key and not f.generated]


def statement(
    model: type[Model], alias: str, rows: Sequence[Model], *, ignore_conflicts: bool = False
) -> tuple[str, Sequence[Any]]:
    """The compiled multi-row statement (returning the ids of the rows that went in)."""
    query = InsertQuery(model, on_conflict=OnConflict.IGNORE if ignore_conflicts else None)
    query.insert_values(_fields(model), list(rows))
    compiler = query.get_compiler(using=alias)
    compiler.returning_fields = [model._meta.pk]
    [(sql, params)] = compiler.as_sql()
    return sql, params


@functools.cache
def _single(model: type[Model], alias: str, ignore_conflicts: bool) -> tuple[str, list[Field[Any, Any]]]:
    sql, params = statement(model, alias, [model()], ignore_conflicts=ignore_conflicts)
    fields = _fields(model)
    if len(params) != len(fields):  # a backend whose statement is not one placeholder per field
        raise ImproperlyConfigured(f"Unexpected single-row insert for {alias}: {sql}")
    return sql, fields


def insert(rows: Sequence[Model], *, ignore_conflicts: bool = False) -> list[int]:
    """Insert `rows` (all of one model) in one statement; the ids that went in, ascending.

    With `ignore_conflicts`, a row a unique constraint refuses is skipped, not an error.
    """
    model = type(rows[0])
    connection = connections[model._default_manager.db]
    params: Sequence[Any]
    if len(rows) == 1:
        sql, fields = _single(model, connection.alias, ignore_conflicts)
        params = [field.get_db_prep_save(field.pre_save(rows[0], True), connection) for field in fields]
    else:
        sql, params = statement(model, connection.alias, rows, ignore_conflicts=ignore_conflicts)
    with _cursor(connection) as cursor:
        cursor.execute(sql, params)
        return sorted(row[0] for row in cursor.fetchall())


@functools.cache
def _server_cursor_class(alias: str, counted: bool) -> type[Any]:
    import psycopg  # noqa: PLC0415 - PostgreSQL only; SQLite deployments need not have it

    # On django-prometheus's backend the statement is counted and timed like any other (django_db_*).
    return ExportingCursorWrapper(psycopg.Cursor, alias, "postgresql") if counted else psycopg.Cursor


def _cursor(connection: BaseDatabaseWrapper) -> CursorWrapper:
    """On PostgreSQL, a cursor that binds its parameters on the server.

    Django's default psycopg cursor binds client-side: it quotes every parameter into the SQL text in
    Python (~13% of a webhook request's CPU for the message row's 30-odd columns, bench/webhook.sh's
    profile). Bound on the server, the values go out through psycopg's C dumpers. No named prepared
    statement is made (Django sets `prepare_threshold` to None, which keeps PgBouncer's transaction
    pooling working), so nothing outlives the statement on the server. The cursor is wrapped like any of
    Django's (query logging, execute wrappers, error translation).
    """
    if connection.vendor != "postgresql":
        return connection.cursor()
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    with connection.wrap_database_errors:
        # Django has no public way to wrap a cursor of another class than the connection's own.
        wrapped: CursorWrapper = connection._prepare_cursor(  # type: ignore[attr-defined]
            _server_cursor_class(connection.alias, isinstance(connection, DatabaseWrapperMixin))(
                connection.connection
            )
        )
        return wrapped
