"""Domain exceptions become HTTP answers here, and only here.

- `features.errors.InvalidData` (refused input, every problem listed): 422 with
  ``{"message", "detail": [{"field", "row", "id", "expected", "got", "msg"}]}``.
- `lending.errors.PermissionDenied` (the key's role may not do this): 403.
- `lending.errors.NotFound` (no such record, or none the caller may see): 404.
- `lending.errors.AlreadyReviewed` (the application has left pending_review): 409.
- `lending.errors.AlreadyDecided` (the bank's application_id was decided before): 409.
- `api.serving.ModelMismatch` (the scoring model reads features an application does not give: it was
  trained on another table and promoted by hand): 503 naming them; nothing is stored.
- the records database out of reach (`lending.db.unavailable`: down, unreachable, locked): 503 with a fixed
  ``{"detail": "the records database is unavailable (...)"}`` (the driver's words, which name hosts and
  users, go to the log as one line); the next request tries again (the pool pings its connections). A
  statement at fault (SQLite reports "no such table" as an OperationalError too) stays a 500 with its trace.

A body that does not match the schema keeps FastAPI's own 422 (``detail``: loc, msg, type per field), with
each echoed ``input`` made safe to send back: a number JSON cannot hold (NaN, Infinity: Python's JSON reader
accepts them) is shown as text, and long text or a large object is cut short rather than echoed whole.
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import InterfaceError, OperationalError

from api.compute import plain
from api.schemas import ErrorResponse, InvalidDataResponse
from api.serving import ModelMismatch
from features.errors import InvalidData, Problem
from lending.db import driver_message, unavailable
from lending.errors import AlreadyDecided, AlreadyReviewed, NotFound, PermissionDenied

log = logging.getLogger(__name__)

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "No API key, or one that is not valid"},
    415: {"model": ErrorResponse, "description": "A body that is not JSON in UTF-8 (Content-Type)"},
    422: {
        "model": InvalidDataResponse,
        "description": "Refused input: the problems found, each with its field, row, id, expected and got "
        "(a body that does not match the schema gets FastAPI's list of loc, msg and type instead)",
    },
    503: {"model": ErrorResponse, "description": "The records database does not answer (see /ready)"},
}
NOT_FOUND = {404: {"model": ErrorResponse, "description": "No such record, or none the caller may see"}}
FORBIDDEN = {403: {"model": ErrorResponse, "description": "The key's role may not do this"}}
CONFLICT = {409: {"model": ErrorResponse, "description": "The application has already been reviewed"}}
ALREADY_DECIDED = {
    409: {
        "model": ErrorResponse,
        "description": "The bank's application_id was decided before (the record named)",
    }
}
UNAVAILABLE = {
    503: {
        "model": ErrorResponse,
        "description": "The models are not loaded, or the records database does not answer (see /ready)",
    }
}


def problem_document(problem: Problem) -> dict[str, Any]:
    return {
        "field": problem.field,
        "row": problem.row,
        "id": problem.record_id,
        "expected": problem.expected,
        "got": plain(problem.got),
        "msg": str(problem),
    }


def _invalid(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, InvalidData)
    body = {"message": f"{exc.what} refused", "detail": [problem_document(p) for p in exc.problems]}
    return JSONResponse(body, status.HTTP_422_UNPROCESSABLE_CONTENT)


MAX_ECHO_CHARS = 200  # of an input echoed back in a 422


def echoed(value: Any) -> Any:
    """An input as a 422 shows it: as it came when it is short, numbers JSON cannot hold as their text, and
    anything long as its first characters.

    >>> echoed(float("nan")), echoed(12), echoed({"a": [1, float("inf")]}), echoed("x" * 300)[-23:]
    ('NaN', 12, {'a': [1, 'Infinity']}, '(300 characters in all)')
    """
    if isinstance(value, str):
        text = value
    elif isinstance(value, float) and not math.isfinite(value) or isinstance(value, dict | list):
        text = json.dumps(value, default=str)  # NaN and Infinity written as those words
    else:
        return value
    if len(text) > MAX_ECHO_CHARS:
        return f"{text[:MAX_ECHO_CHARS]}... ({len(text):,} characters in all)"
    return value if isinstance(value, str) else json.loads(text, parse_constant=str)


def _schema_refused(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [{**e, "input": echoed(e["input"])} if "input" in e else e for e in exc.errors()]
    return JSONResponse({"detail": jsonable_encoder(errors)}, status.HTTP_422_UNPROCESSABLE_CONTENT)


RECORDS_UNAVAILABLE = "the records database is unavailable (the service's log says why)"


def _database_unavailable(_request: Request, exc: Exception) -> JSONResponse:
    if not unavailable(exc):  # a statement at fault is ours: the server's 500, with its trace in the log
        raise exc
    # The driver's words (host, user) stay in the log: callers, some without a key, get a fixed text.
    log.warning("the records database is unavailable: %s", driver_message(exc))
    return JSONResponse({"detail": RECORDS_UNAVAILABLE}, status.HTTP_503_SERVICE_UNAVAILABLE)


def _status(code: int):
    def handler(_request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, code)

    return handler


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _schema_refused)
    app.add_exception_handler(InvalidData, _invalid)
    app.add_exception_handler(PermissionDenied, _status(status.HTTP_403_FORBIDDEN))
    app.add_exception_handler(NotFound, _status(status.HTTP_404_NOT_FOUND))
    app.add_exception_handler(AlreadyReviewed, _status(status.HTTP_409_CONFLICT))
    app.add_exception_handler(AlreadyDecided, _status(status.HTTP_409_CONFLICT))
    app.add_exception_handler(ModelMismatch, _status(status.HTTP_503_SERVICE_UNAVAILABLE))
    for database_error in (OperationalError, InterfaceError):
        app.add_exception_handler(database_error, _database_unavailable)
