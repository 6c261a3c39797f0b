"""Bodies other than JSON: CSV uploads, and answers that are files."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import QueryDict
from django.utils.datastructures import MultiValueDict
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import BaseParser, DataAndFiles
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request

from apps.conversations.services.contacts import IMPORT_TOO_LARGE, MAX_IMPORT_BYTES, PayloadTooLarge


class CSVBodyParser(BaseParser):
    """A text/csv request body, handed on as the upload `file`, as if it had come as multipart.

    Reads at most one byte past the import limit, so an oversized body is refused without holding it.
    """

    media_type = "text/csv"

    def parse(
        self, stream: Any, media_type: str | None = None, parser_context: Mapping[str, Any] | None = None
    ) -> DataAndFiles[Any, Any]:
        data: bytes = stream.read(MAX_IMPORT_BYTES + 1) if stream is not None else b""
        if len(data) > MAX_IMPORT_BYTES:
            raise PayloadTooLarge(IMPORT_TOO_LARGE)
        upload = SimpleUploadedFile("import.csv", data, content_type="text/csv")
        return DataAndFiles(QueryDict(), MultiValueDict({"file": [upload]}))


class JSONErrorsNegotiation(DefaultContentNegotiation):
    """For views that answer with a file: errors are always JSON, whatever the client accepts."""

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        first = next(iter(renderers))
        return first, first.media_type
