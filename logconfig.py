"""structlog configuration shared by the web, worker and scheduler processes.

JSON lines in production, readable console output in development. A redaction
processor runs last before rendering so no password, token or secret reaches a
log line, whatever the caller passed. Output is never coloured, and escape codes
from elsewhere are removed when the stream is not a terminal.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import IO, Any

import structlog

REDACTED = "[redacted]"

# Key names whose values are secrets wherever they appear in an event.
_SECRET_KEY = re.compile(
    r"pass(word)?|secret|token|authorization|cookie|api[_-]?key|refresh|jwt|hash", re.I
)
# A JWT (three base64url segments, the first a JSON header) anywhere inside a string.
_JWT = re.compile(r"eyJ[\w-]{5,}\.[\w-]{5,}\.[\w-]{5,}")
_BEARER = re.compile(r"(Bearer\s+)\S+", re.I)
# "password=hunter2" or "token: abc" inside free text (for example a %-formatted message).
_ASSIGNMENT = re.compile(r"\b(\w*(?:pass(?:word)?|secret|token)\w*)(\s*[=:]\s*)(\S+)", re.I)


def _scrub(value: Any, depth: int = 0) -> Any:
    if depth > 6:
        return value
    if isinstance(value, str):
        value = _JWT.sub(REDACTED, value)
        value = _BEARER.sub(r"\1" + REDACTED, value)
        return _ASSIGNMENT.sub(r"\1\2" + REDACTED, value)
    if isinstance(value, dict):
        return {
            k: (REDACTED if _SECRET_KEY.search(str(k)) else _scrub(v, depth + 1))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_scrub(v, depth + 1) for v in value]
    return value


def redact_secrets(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: blank out secret-looking keys and token-looking strings."""
    for key in list(event_dict):
        if key == "event":
            event_dict[key] = _scrub(event_dict[key])
        elif _SECRET_KEY.search(key):
            event_dict[key] = REDACTED
        else:
            event_dict[key] = _scrub(event_dict[key])
    return event_dict


# A terminal escape sequence: CSI (colours, cursor moves) or a two-character escape.
_ESCAPE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|[@-Z\\-_])")


def _strip_escapes(value: Any, depth: int = 0) -> Any:
    if isinstance(value, str):
        return _ESCAPE.sub("", value)
    if depth < 6 and isinstance(value, dict):
        return {k: _strip_escapes(v, depth + 1) for k, v in value.items()}
    if depth < 6 and isinstance(value, list | tuple):
        return [_strip_escapes(v, depth + 1) for v in value]
    return value


def strip_escapes(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: remove terminal escape codes from every value.

    Libraries colour their messages when *stdout* is a terminal (RQ's queue names), not
    when the log stream is; a log file or collector must get plain text.
    """
    for key in list(event_dict):
        event_dict[key] = _strip_escapes(event_dict[key])
    return event_dict


def _is_terminal(stream: IO[str]) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def configure_logging(
    level: str = "INFO", json: bool = False, stream: IO[str] | None = None
) -> None:
    """Configure structlog and route stdlib logging through the same renderer.

    Lines go to ``stream`` (stderr by default). The renderer never colours; when the
    stream is not a terminal, escape codes that callers or libraries put into messages
    and tracebacks are removed as well.
    """
    stream = stream or sys.stderr
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        redact_secrets,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(
            colors=False, exception_formatter=structlog.dev.plain_traceback
        )
    )
    structlog.configure(
        processors=[
            # Drop events below the logger's level before any other processor runs: a
            # request's info lines cost nothing when LOG_LEVEL is WARNING.
            structlog.stdlib.filter_by_level,
            *shared[:-2],
            structlog.processors.StackInfoRenderer(),
            *shared[-2:],
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    plain = [] if _is_terminal(stream) else [strip_escapes]
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *plain, renderer],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_botyard", False):
            root.removeHandler(old)
    handler._botyard = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    # Werkzeug's access log would print query strings verbatim; ours is redacted.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
