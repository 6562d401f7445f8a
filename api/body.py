"""A request's body, read once by the service itself before FastAPI validates it (`JsonRoute`, the route
class of the routers that take a body), so that every body the service cannot read gets a documented answer:

- 415: a `Content-Type` other than JSON in UTF-8, a `Content-Encoding` other than identity (a gzip body), or
  bytes that are not UTF-8 (UTF-16, UTF-32, a stray byte), naming what came;
- 413: a body over `Settings.max_body_bytes`, refused on its `Content-Length` before a byte is read, or as
  soon as a body without one goes past it;
- 422: text that is not JSON (where and why), a key twice in one object (the last would silently win), a
  string holding a lone surrogate (no UTF-8 text can hold it, nor any answer echo it), JSON nested deeper
  than the parser's reach, an integer of more digits than Python converts: each naming its field and row.

A body without `Content-Type` is read as JSON. The parsed body is handed to FastAPI's handler, which
validates it against the route's schema as before.
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from collections.abc import Iterator
from email.message import Message
from typing import Any

from fastapi import Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from api.errors import ServiceError
from features.errors import Problem

BODY_METHODS = ("POST", "PUT", "PATCH")
UTF8 = ("utf-8", "utf8")
JSON_INVALID = "json_invalid"  # the error type FastAPI gives a body that is not JSON (features.schema)
# A JSON escape of a surrogate code point: the only way one reaches a parsed string (strict UTF-8 has none).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


class JsonRoute(APIRoute):
    """A route whose body, when it takes one, is read and parsed by `read_json` first."""

    def __init__(self, *args: Any, **kwargs: Any):
        # `read_json` has judged the Content-Type: FastAPI is to take what it parsed, a header or none
        super().__init__(*args, **{**kwargs, "strict_content_type": False})

    def get_route_handler(self):
        handle = super().get_route_handler()
        if self.body_field is None:
            return handle

        async def read_then_handle(request: Request) -> Response:
            if request.method not in BODY_METHODS:
                return await handle(request)
            raw, parsed = await read_json(request, request.app.state.settings.max_body_bytes)
            return await handle(ReadRequest(request.scope, request.receive, raw, parsed))

        return read_then_handle


class ReadRequest(Request):
    """A request whose body `read_json` has read and parsed already: FastAPI's handler reads these."""

    def __init__(self, scope, receive, raw: bytes, parsed: Any):
        super().__init__(scope, receive)
        self._raw_body, self._parsed_body = raw, parsed

    async def body(self) -> bytes:
        return self._raw_body

    async def json(self) -> Any:
        return self._parsed_body


async def read_json(request: Request, limit: int) -> tuple[bytes, Any]:
    """(the body's bytes, the JSON they hold; None for no body), or the service's refusal (415, 413, 422)."""
    _check_headers(request)
    raw = await _read_within(request, limit)
    if not raw:
        return raw, None  # FastAPI says which fields are required
    return raw, parse(_utf8_text(raw))


def _check_headers(request: Request) -> None:
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding != "identity":
        message = f"the body must be sent uncompressed (Content-Encoding: identity); got {encoding!r}"
        wrong = Problem("Content-Encoding", "identity (no compression)", encoding)
        raise ServiceError(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, message, [wrong])
    if "content-type" not in request.headers:
        return  # no Content-Type at all: read as JSON
    header = Message()  # the standard library's parser of Content-Type and its parameters
    header["content-type"] = request.headers["content-type"]
    subtype = header.get_content_subtype()
    is_json = header.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )
    if not is_json or header.get_content_charset("utf-8") not in UTF8:
        got = request.headers["content-type"]
        message = f"the body must be JSON in UTF-8 (Content-Type: application/json); got {got!r}"
        wrong = Problem("Content-Type", "application/json in UTF-8", got)
        raise ServiceError(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, message, [wrong])


async def _read_within(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit, f"{int(declared):,} bytes (Content-Length)")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:  # a body without a Content-Length, or longer than it said: not read further
            raise _too_large(limit, f"more than {limit:,} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit: int, got: str) -> ServiceError:
    message = f"the body is too large: at most {limit:,} bytes are read (IPCREDIT_MAX_BODY_BYTES); got {got}"
    problem = Problem("body", f"at most {limit:,} bytes (IPCREDIT_MAX_BODY_BYTES)", got)
    return ServiceError(status.HTTP_413_CONTENT_TOO_LARGE, message, [problem])


def _utf8_text(raw: bytes) -> str:
    """The body as text; 415 naming the encoding when it is not UTF-8 (Python's JSON reader would take
    UTF-16 and UTF-32 without a word)."""
    detected = json.detect_encoding(raw)
    if detected not in ("utf-8", "utf-8-sig"):
        got = f"text in {detected.upper()}"
        raise _not_utf8(got)
    try:
        return raw.decode(detected)
    except UnicodeDecodeError as e:
        raise _not_utf8(f"byte 0x{raw[e.start]:02x} at byte {e.start:,}, which is not UTF-8") from None


def _not_utf8(got: str) -> ServiceError:
    message = f"the body must be JSON in UTF-8; got {got}"
    return ServiceError(
        status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, message, [Problem("body", "JSON in UTF-8", got)]
    )


def parse(text: str) -> Any:
    """The JSON in `text`, or a RequestValidationError naming each place it cannot be taken (422).

    >>> parse('{"a": [1, {"b": "c"}]}')
    {'a': [1, {'b': 'c'}]}
    >>> [e["loc"] for e in _errors(lambda: parse('{"a": [1, {"b": 1, "b": 2}]}'))]
    [('body', 'a', 1, 'b')]
    >>> [e["loc"] for e in _errors(lambda: parse('{"a": "\\\\udfff"}'))]
    [('body', 'a')]
    """
    try:
        parsed = json.loads(text, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as e:
        invalid = {"type": JSON_INVALID, "loc": ("body", e.pos), "msg": "JSON decode error", "input": {}}
        raise RequestValidationError([{**invalid, "ctx": {"error": e.msg}}]) from None
    except _DuplicateKey:
        raise RequestValidationError(list(_duplicate_keys(text))) from None
    except RecursionError:
        expected = f"JSON nested fewer than {sys.getrecursionlimit():,} levels deep (objects and lists)"
        raise _body_refused(expected, "objects or lists nested deeper") from None
    except ValueError as e:  # an integer of more digits than Python converts
        expected = f"numbers of at most {sys.get_int_max_str_digits():,} digits"
        raise _body_refused(expected, str(e).split(";")[0]) from None
    if _SURROGATE_ESCAPE.search(text):  # rare: only then is every string looked at
        surrogates = list(_lone_surrogates(parsed))
        if surrogates:
            raise RequestValidationError(surrogates)
    return parsed


def _body_refused(expected: str, got: str) -> RequestValidationError:
    return RequestValidationError([{"type": "body", "loc": ("body",), "msg": expected, "input": got}])


class _DuplicateKey(Exception):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) < len(pairs):
        raise _DuplicateKey
    return found


class _Repeated(dict):
    """An object as parsed once a key was found twice in the body, with the keys it holds twice."""

    repeated: list[str]


def _keep_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = _Repeated(pairs)
    counts = Counter(key for key, _ in pairs)
    found.repeated = [key for key, n in counts.items() if n > 1]
    return found


def _duplicate_keys(text: str) -> Iterator[dict[str, Any]]:
    for loc, value in _walk(json.loads(text, object_pairs_hook=_keep_repeats)):
        for key in getattr(value, "repeated", ()):
            expected = "each key once in an object (the last would silently win)"
            yield {
                "type": "duplicate_key",
                "loc": ("body", *loc, key),
                "msg": expected,
                "input": f"{key!r} twice",
            }


def _lone_surrogates(parsed: Any) -> Iterator[dict[str, Any]]:
    expected = "text without a lone surrogate (U+D800 to U+DFFF alone are no character: no UTF-8 holds them)"
    for loc, value in _walk(parsed):
        texts = [value] if isinstance(value, str) else list(value) if isinstance(value, dict) else []
        for text in texts:
            if any("\ud800" <= c <= "\udfff" for c in text):
                yield {"type": "surrogate", "loc": ("body", *loc), "msg": expected, "input": text}


def _walk(value: Any) -> Iterator[tuple[tuple[str | int, ...], Any]]:
    """Every value inside `value` with its place, without recursion (a body may be nested a thousand deep)."""
    stack: list[tuple[tuple[str | int, ...], Any]] = [((), value)]
    while stack:
        loc, item = stack.pop()
        yield loc, item
        children = (
            item.items() if isinstance(item, dict) else enumerate(item) if isinstance(item, list) else ()
        )
        stack.extend(((*loc, k), v) for k, v in reversed(list(children)))


def _errors(call) -> list[dict[str, Any]]:
    try:
        call()
    except RequestValidationError as e:
        return list(e.errors())
    return []
