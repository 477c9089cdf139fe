"""The edge check every request passes before the rate limiter, the schemas and the views.

Hostile input is refused here, in the one error shape, before it can reach code that
would fail on it (issue 12):

- a JSON body nested deeper than :data:`MAX_JSON_DEPTH` (Python's parser recurses, so
  ``'[' * 30000`` would raise ``RecursionError`` in webargs and in the limiter's key
  functions): 400, found by a scan that never recurses;
- a body that is not JSON as the API reads it: invalid syntax, ``NaN``/``Infinity``, a
  number that overflows a float (``1e309``) or an integer too long for Python to read
  (more than 4,300 digits): 400;
- text Postgres cannot store: a NUL character anywhere in a JSON string (key or value),
  a query parameter or a path segment, or a lone UTF-16 surrogate (``"\\ud800"``): 422,
  with ``errors`` naming the location and the field;
- a ``POST``, ``PUT``, ``PATCH`` or ``DELETE`` to an operation that documents a JSON body, sent with
  none: 422 (``{}`` is a body: a PATCH of ``{}`` changes nothing and answers 200).

The parsed body is kept for the rate limiter's key functions (:func:`parsed_json`), which
thus never parse a body themselves.
"""

from __future__ import annotations

import json
import re
from typing import Any, NoReturn

from flask import Flask, abort, current_app, request

from api.errors import error_response

MAX_JSON_DEPTH = 32
# DELETE too: DELETE /me takes the password in a body.
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_SPECIAL = re.compile(rb'["\\\[\]{}]')
_OPENERS = frozenset(b"[{")
_QUOTE, _BACKSLASH = ord('"'), ord("\\")
_PARSED = "botyard.json_body"
_NO_BODY = object()

NUL_MESSAGE = "Text may not contain NUL (\\u0000) characters."
SURROGATE_MESSAGE = "Text must be valid Unicode (a lone surrogate such as \\ud800 is not)."


class _Unreadable(ValueError):
    """The body parses as JSON but not as a value the API can take."""


def json_depth(body: bytes) -> int:
    """How deeply arrays and objects nest in ``body`` (brackets inside strings not counted).

    Linear and without recursion: only quotes, backslashes and brackets are visited. Exact
    up to ``MAX_JSON_DEPTH + 1``, where it stops; 0 for a body with too few brackets to
    exceed the limit.
    """
    if body.count(b"[") + body.count(b"{") <= MAX_JSON_DEPTH:
        return 0  # cannot exceed the limit: skip the scan for ordinary bodies
    depth = deepest = 0
    in_string, escaped = False, -1
    for match in _SPECIAL.finditer(body):
        pos, char = match.start(), body[match.start()]
        if in_string:
            if pos == escaped:
                continue
            if char == _BACKSLASH:
                escaped = pos + 1
            elif char == _QUOTE:
                in_string = False
        elif char == _QUOTE:
            in_string = True
        elif char in _OPENERS:
            depth += 1
            deepest = max(deepest, depth)
            if deepest > MAX_JSON_DEPTH:
                break
        elif char != _BACKSLASH:
            depth -= 1
    return deepest


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise _Unreadable(f"The number {text[:20]}... is too large.")
    return value


def _no_constant(name: str) -> Any:
    raise _Unreadable(f"{name} is not a JSON number.")


def _unreadable(message: str) -> NoReturn:
    # The shape webargs gives a body it cannot parse: errors under "json".
    abort(error_response(400, message, {"json": [message]}))


def _load(body: bytes) -> Any:
    """``body`` as JSON, or abort 400 with a message a person can act on."""
    if json_depth(body) > MAX_JSON_DEPTH:
        _unreadable(f"Invalid JSON body: it nests deeper than {MAX_JSON_DEPTH} levels.")
    try:
        return json.loads(body.decode(), parse_float=_finite_float, parse_constant=_no_constant)
    except _Unreadable as exc:
        _unreadable(f"Invalid JSON body: {exc}")
    except (ValueError, RecursionError):  # syntax, UTF-8, integers beyond 4,300 digits
        _unreadable("Invalid JSON body.")


def _text_problem(text: str) -> str | None:
    if "\x00" in text:
        return NUL_MESSAGE
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return SURROGATE_MESSAGE
    return None


def _field_name(key: str) -> str:
    return key.replace("\x00", "\\u0000").encode("utf-8", "backslashreplace").decode()


def text_errors(value: Any) -> Any:
    """Field errors for the bad text in a parsed JSON value (nested like marshmallow's), or None.

    The caller bounds the depth (:func:`json_depth`), so the recursion here is shallow.
    """
    if isinstance(value, str):
        problem = _text_problem(value)
        return [problem] if problem else None
    items: Any
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return None
    errors: dict[Any, Any] = {}
    for key, item in items:
        problem = _text_problem(key) if isinstance(key, str) else None
        found = [problem] if problem else text_errors(item)
        if found:
            errors[_field_name(key) if isinstance(key, str) else key] = found
    return errors or None


def _flat_errors(pairs: Any) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    for key, value in pairs:
        problem = _text_problem(key) or (_text_problem(value) if isinstance(value, str) else None)
        if problem:
            errors[_field_name(key)] = [problem]
    return errors


def declares_json_body() -> bool:
    """Whether the matched operation documents a JSON request body (flask-smorest's doc)."""
    view = current_app.view_functions.get(request.endpoint or "")
    handler = getattr(getattr(view, "view_class", None), request.method.lower(), view)
    params = getattr(handler, "_apidoc", {}).get("arguments", {}).get("parameters", [])
    return any(p.get("in") == "json" for p in params)


def _has_body() -> bool:
    chunked = "chunked" in request.headers.get("Transfer-Encoding", "").lower()
    return chunked or (request.content_length or 0) > 0


def check_request() -> Any:
    """before_request: refuse hostile input in the one error shape (see the module doc)."""
    errors: dict[str, Any] = {}
    query = _flat_errors(request.args.items(multi=True))
    if query:
        errors["query"] = query
    path = _flat_errors((request.view_args or {}).items())
    if path:
        errors["path"] = path
    request.environ[_PARSED] = _NO_BODY
    if request.method in _BODY_METHODS and request.endpoint is not None:
        if _has_body() and request.is_json:
            body = _load(request.get_data(cache=True))
            request.environ[_PARSED] = body
            found = text_errors(body)
            if found:
                errors["json"] = found if isinstance(found, dict) else {"_schema": found}
        elif not _has_body() and declares_json_body():
            errors["json"] = {"_schema": ["This request needs a JSON body."]}
    if errors:
        return error_response(422, "The request is invalid; see errors.", errors)
    return None


def parsed_json() -> Any:
    """The request's JSON body as :func:`check_request` read it, or None (never raises)."""
    body = request.environ.get(_PARSED, _NO_BODY)
    return None if body is _NO_BODY else body


def init_input_guard(app: Flask) -> None:
    """Install the check; call before ``limiter.init_app`` so that it runs first."""
    app.before_request(check_request)
