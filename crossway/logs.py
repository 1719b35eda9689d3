"""Log lines as JSON, each with the exchange's message id and trace id when known.

``--log-format json`` (or a process's own setting, e.g. ``[logging] format = "json"`` of a
gateway) turns every log line into one JSON object::

    {"time": "2026-05-01T12:00:00.123Z", "level": "WARNING", "logger": "gateway.provider.pipeline",
     "message": "…", "message_id": "9f…", "trace_id": "4bf9…", "gateway": "EE/GOV/70000001/gw1"}

The ids come from, in order: the log call's ``extra`` (``message_id``, ``trace_id``), the ids
bound to the current task by :func:`bind_exchange` (the exchange recorder binds them as soon as
it learns them, on both sides), and the current OpenTelemetry span. Nothing else is added: a
log message never holds a secret or a payload byte (crossway.core.errors), and the formatter
adds only ids. Context variables are per asyncio task, and gRPC runs each call in its own task,
so one call's ids never appear on another call's lines.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Final

from opentelemetry import trace

__all__ = ["LOG_FORMATS", "JsonFormatter", "bind_exchange", "bound_ids", "json_handler"]

LOG_FORMATS: Final = ("text", "json")

_message_id: ContextVar[str] = ContextVar("crossway_message_id", default="")
_trace_id: ContextVar[str] = ContextVar("crossway_trace_id", default="")


def bind_exchange(*, message_id: str = "", trace_id: str = "") -> None:
    """Name the exchange the current task works on (empty values leave what is bound)."""
    if message_id:
        _message_id.set(message_id)
    if trace_id:
        _trace_id.set(trace_id)


def bound_ids() -> tuple[str, str]:
    """(message id, trace id) bound to the current task, "" when none."""
    return _message_id.get(), _trace_id.get()


def _span_trace_id() -> str:
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else ""


class JsonFormatter(logging.Formatter):
    """One JSON object per record; ``static`` fields (e.g. the gateway id, the worker) on each."""

    def __init__(self, static: Mapping[str, str | int] | None = None) -> None:
        super().__init__()
        self._static = dict(static or {})

    def format(self, record: logging.LogRecord) -> str:
        seconds = time.gmtime(record.created)
        line: dict[str, object] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", seconds) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        message_id = getattr(record, "message_id", "") or _message_id.get()
        trace_id = getattr(record, "trace_id", "") or _trace_id.get() or _span_trace_id()
        if message_id:
            line["message_id"] = message_id
        if trace_id:
            line["trace_id"] = trace_id
        line.update(self._static)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, separators=(",", ":"), default=str)


def json_handler(static: Mapping[str, str | int] | None = None) -> logging.Handler:
    """A stderr handler writing :class:`JsonFormatter` lines."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter(static))
    return handler
