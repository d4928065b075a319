"""Voisin's logs: one line per event on stderr, as text for a person or as JSON for a machine.

:func:`configure_logging` sets up the root logger from ``VOISIN_LOG_FORMAT`` and returns the
logging configuration ``voisin serve`` hands to uvicorn, so that uvicorn's own lines (start-up,
errors, the access log) come out the same way:

- ``text``: what a terminal has always shown: ``<time> <logger> <LEVEL> <message>`` for
  Voisin's lines, and uvicorn's own coloured lines (its access log on stdout).
- ``json``: one JSON object per line on stderr, for every logger, uvicorn's included:
  ``ts`` (UTC, ISO 8601, milliseconds), ``level``, ``logger``, ``message``, ``request_id``
  (while serving a request), ``exception`` (the traceback, when there is one) and any extra
  fields the call passed (``log.info(..., extra={"slot": 7})``); an access line also carries
  ``client``, ``method``, ``path``, ``http_version`` and ``status``.
- ``auto`` (the default): ``text`` when stderr is a terminal, ``json`` otherwise (a
  supervisor, a container, a file), where lines are read by machines first.

Every HTTP request has an id (:data:`REQUEST_ID`, set by :class:`api.app.RequestId`): the
client's ``X-Request-ID`` when :func:`accept_request_id` finds it well-formed, else a new one.
Each line logged while serving the request carries it, whatever thread logs it (the request's
thread inherits the context).

No line may carry a secret: the formatters blank a bearer token and a password in a URL
wherever they appear (a message, an exception's text), as a last guard behind the code that
never logs them.
"""

from __future__ import annotations

import copy
import json
import logging
import logging.config
import re
import sys
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

#: The id of the HTTP request being served (None outside a request: start-up, the outbox).
REQUEST_ID: ContextVar[str | None] = ContextVar("voisin_request_id", default=None)
#: The header a client may send an id in, and the response carries it back in.
REQUEST_ID_HEADER = "X-Request-ID"
#: Longest request id taken from a client (a UUID is 36 characters, a W3C trace id 32).
REQUEST_ID_MAX_CHARS = 128
#: Characters a client's request id may use: nothing that could break a log line, a header
#: or a query over the logs (no space, quote, backslash, control character or newline).
_REQUEST_ID = re.compile(r"[A-Za-z0-9._~:+/=-]+")

#: Voisin's text lines, as they always were.
TEXT_FORMAT = "%(asctime)s %(name)s %(levelname)s %(message)s"

#: Secrets a line must never show: a bearer token (8 characters at least, so that "a bearer
#: token is missing" stays as it is), and the password of a URL's user info
#: (``postgresql+psycopg://user:password@host``).
_BEARER = re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]{8,}")
_URL_PASSWORD = re.compile(r"([a-z][a-z0-9+.-]*://[^\s:/@]+:)[^\s@/]+@", re.IGNORECASE)

#: A LogRecord's own attributes; anything else on a record is an extra field of the call,
#: except uvicorn's ``color_message`` (its message again, with terminal colours).
_RECORD_ATTRIBUTES = frozenset(
    {*vars(logging.makeLogRecord({})), "message", "asctime", "taskName", "color_message"}
)


def new_request_id() -> str:
    return uuid.uuid4().hex


def accept_request_id(given: str | None) -> str:
    """The client's request id if it is well-formed (1 to :data:`REQUEST_ID_MAX_CHARS` of
    letters, digits and ``._~:+/=-``), else a new one: a malformed id is never repeated, in
    the logs or the response."""
    if given and len(given) <= REQUEST_ID_MAX_CHARS and _REQUEST_ID.fullmatch(given):
        return given
    return new_request_id()


def redact(text: str) -> str:
    """``text`` with bearer tokens and URL passwords blanked."""
    return _URL_PASSWORD.sub(r"\1[redacted]@", _BEARER.sub(r"\1 [redacted]", text))


def resolve_format(log_format: str, stream: TextIO | None = None) -> Literal["text", "json"]:
    """``text`` or ``json``: ``auto`` is ``text`` on a terminal and ``json`` anywhere else."""
    if log_format in ("text", "json"):
        return "text" if log_format == "text" else "json"
    if log_format != "auto":
        raise ValueError(f"log format must be 'auto', 'text' or 'json', not {log_format!r}")
    stream = sys.stderr if stream is None else stream
    try:
        return "text" if stream.isatty() else "json"
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return "json"


class TextFormatter(logging.Formatter):
    """:data:`TEXT_FORMAT`, with secrets blanked."""

    def __init__(self, fmt: str | None = None) -> None:
        super().__init__(fmt or TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per record (see the module for its fields)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # uvicorn's configuration passes ``fmt`` and ``use_colors``: neither means anything here.
        super().__init__()

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        request_id = REQUEST_ID.get()
        if request_id is not None:
            entry["request_id"] = request_id
        args = record.args
        if record.name == "uvicorn.access" and isinstance(args, tuple) and len(args) == 5:
            client, method, path, http_version, status = args
            entry.update(
                client=client, method=method, path=path, http_version=http_version, status=status
            )
        for key, value in vars(record).items():
            if key not in _RECORD_ATTRIBUTES and not key.startswith("_"):
                entry.setdefault(key, value)
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        if record.stack_info:
            entry["stack"] = redact(self.formatStack(record.stack_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


def _json_config(stream: TextIO | None, level: int) -> dict[str, Any]:
    """A :func:`logging.config.dictConfig` that sends every logger, uvicorn's included,
    through one JSON handler. The formatter names are uvicorn's (``default``, ``access``),
    which its ``use_colors`` option expects to find."""
    handler: dict[str, Any] = {"class": "logging.StreamHandler", "formatter": "default"}
    handler["stream"] = stream if stream is not None else "ext://sys.stderr"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "default": {"()": JsonFormatter},
            "access": {"()": JsonFormatter},
        },
        "handlers": {"default": handler},
        "loggers": {
            name: {"handlers": [], "level": level, "propagate": True}
            for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")
        },
        "root": {"handlers": ["default"], "level": level},
    }


def configure_logging(
    log_format: str, *, stream: TextIO | None = None, level: int = logging.INFO
) -> dict[str, Any]:
    """Set up the root logger for ``log_format`` (``auto``, ``text`` or ``json``, see the
    module), writing to ``stream`` (stderr by default); return the configuration to give
    uvicorn (``uvicorn.Config(log_config=...)``), which applies it again at start."""
    chosen = resolve_format(log_format, stream)
    if chosen == "json":
        config = _json_config(stream, level)
        logging.config.dictConfig(config)
        return config
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr if stream is None else stream)
    handler.setFormatter(TextFormatter())
    root.addHandler(handler)
    root.setLevel(level)
    from uvicorn.config import LOGGING_CONFIG

    return copy.deepcopy(LOGGING_CONFIG)
