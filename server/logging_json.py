"""The server's log: ``[log] format = "text"`` (one line a record) or ``"json"`` (one JSON object
a line, for log shippers), both with the request ID, the actor and the outcome of the request a
record belongs to.

Personal data stays out of both (docs/threat-model.md): the access line names the route's
template (``/ra/applications/{id}``), never the path or query as sent, and no header; bodies are
never logged; the actor is an operator's name, an enrollment ID or a kind of process, never an
applicant's name or address. As a last guard every message has e-mail addresses masked.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import re
import sys
from typing import Any

from aiohttp import web

REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "jitsuin_request_id", default=None
)
# Who the request acts as, once known: set when an operator is authenticated and from the actor
# of each audit entry the request appends (server/metrics.py wraps the store).
ACTOR: contextvars.ContextVar[str | None] = contextvars.ContextVar("jitsuin_actor", default=None)

access_log = logging.getLogger("jitsuin.access")

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# Attributes every LogRecord has: what is left in ``record.__dict__`` are the ``extra`` fields.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


def acting(operator: Any) -> Any:
    """``operator``, noted as the actor of the running request."""
    ACTOR.set(operator.name)  # as the audit log names operators
    return operator


def outcome(status: int) -> str:
    return "ok" if status < 400 else "refused" if status < 500 else "error"


def _message(record: logging.LogRecord) -> str:
    return _EMAIL.sub("<e-mail>", record.getMessage())


class _Context(logging.Filter):
    """Copy the request ID and actor of the running request onto each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = REQUEST_ID.get()
        if getattr(record, "actor", None) is None:
            record.actor = ACTOR.get()
        return True


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "pid": record.process,
            "message": _message(record),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_") and value is not None:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = _EMAIL.sub("<e-mail>", self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self, with_pid: bool) -> None:
        pid = "[%(process)d] " if with_pid else ""
        super().__init__(f"%(asctime)s {pid}%(levelname)s %(name)s %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = _message(record)
        line = super().formatMessage(record)
        context = [
            f"{key}={value}"
            for key in ("request_id", "actor", "outcome")
            if (value := getattr(record, key, None)) is not None
        ]
        return f"{line} [{' '.join(context)}]" if context else line

    def formatException(self, ei: Any) -> str:
        return _EMAIL.sub("<e-mail>", super().formatException(ei))


def configure(form: str, *, with_pid: bool = False) -> None:
    """Log INFO and above to stderr in ``form`` ("text" or "json")."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JSONFormatter() if form == "json" else TextFormatter(with_pid))
    handler.addFilter(_Context())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.INFO)


def log_access(request: web.Request, status: int, seconds: float) -> None:
    """One line a request: method, route template, status, outcome, time, request ID, actor
    (``observe`` in server/middlewares.py calls this once the request is answered)."""
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else "(no route)"
    access_log.info(
        "%s %s %d",
        request.method,
        route,
        status,
        extra={
            "method": request.method,
            "route": route,
            "status": status,
            "outcome": outcome(status),
            "duration_ms": round(seconds * 1000, 1),
        },
    )
