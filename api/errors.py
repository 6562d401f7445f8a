"""Domain exceptions become HTTP answers here, and only here, all in one shape (api.schemas.ErrorResponse):

    {"message": "<what happened, in one line>",
     "detail": [{"field", "row", "id", "expected", "got", "msg"}, ...]}

`detail` lists each bad value of refused input, and is empty when there is no value to name.

- a body that does not match the schema (a type, an enumeration, a list's length; FastAPI's
  RequestValidationError), and `features.errors.InvalidData` (a rule of the domain broken, every problem
  listed): 422. Each echoed `got` is made safe to send back: a number JSON cannot hold (NaN, Infinity:
  Python's JSON reader accepts them) as text, long text or a large object cut short.
- `ServiceError`, raised by the routes' dependencies: its status (401 without a valid key, 415 for a body that
  is not JSON in UTF-8, 503 while the models are not loaded), naming the header or the reason.
- `lending.errors.PermissionDenied` (the key's role may not do this): 403.
- `lending.errors.NotFound` (no such record, or none the caller may see): 404.
- `lending.errors.AlreadyReviewed` (the application has left pending_review) and `AlreadyDecided` (the bank's
  application_id was decided before): 409.
- `features.errors.ModelMismatch` (the scoring model reads features an application does not give: it was
  trained on another table and promoted by hand): 503 naming them; nothing is stored.
- the records database out of reach (`lending.db.unavailable`: down, unreachable, locked, silent, its pool
  full for 5 s): 503 with a fixed message (the driver's words, which name hosts and users, go to the log as
  one line); the next request tries again (the pool pings its connections). A statement at fault (SQLite
  reports "no such table" as an OperationalError too) stays a 500 with its trace.
- FastAPI's own answers (no such route, a method the route does not take) keep their status; a 405's
  `Allow` names every method of the path (Starlette's names those of the first route that matched it).
- a body the service cannot read (api.body): 413 over the size limit, 415 not JSON in UTF-8, 422 not JSON
  it can take (a key twice, a lone surrogate, nested too deep), each naming what came.
- anything else is a fault of ours: a 500 in the same shape, with a fixed message (the trace goes to the
  log).

Every answer is written as UTF-8 whatever text it echoes: a lone surrogate, which no UTF-8 can hold, is
shown as its escape (``\\udfff``), so that an answer never fails to be written.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.routing import Match

from api.schemas import ErrorResponse
from features.errors import InvalidData, ModelMismatch, Problem
from features.schema import body_problems
from features.values import json_value
from lending.db import DATABASE_ERRORS, driver_message, unavailable
from lending.errors import AlreadyDecided, AlreadyReviewed, NotFound, PermissionDenied

log = logging.getLogger(__name__)


def _answer(description: str) -> dict[str, Any]:
    return {"model": ErrorResponse, "description": description}


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: _answer("No API key, or one that is not valid"),
    413: _answer("A body larger than the service reads (IPCREDIT_MAX_BODY_BYTES), refused unread"),
    415: _answer("A body that is not JSON in UTF-8 (Content-Type, Content-Encoding, or its bytes)"),
    422: _answer("Refused input: each problem with its field, row, id, expected and got"),
    503: _answer("The records database does not answer (see /ready)"),
}
NOT_FOUND = {404: _answer("No such record, or none the caller may see")}
FORBIDDEN = {403: _answer("The key's role may not do this")}
CONFLICT = {409: _answer("The application has already been reviewed")}
ALREADY_DECIDED = {409: _answer("The bank's application_id was decided before (the record named)")}
UNAVAILABLE = {
    503: _answer("The models are not loaded, or the records database does not answer (see /ready)")
}
RECORDS_UNAVAILABLE = "the records database is unavailable (the service's log says why)"
SERVER_FAULT = "the service failed on this request: a fault of ours (the service's log has the trace)"


class ServiceError(Exception):
    """An answer other than success, with its status, its message, the problems it names and its headers."""

    def __init__(
        self,
        status_code: int,
        message: str,
        problems: Sequence[Problem] = (),
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status_code, self.message, self.problems, self.headers = status_code, message, problems, headers


MAX_ECHO_CHARS = 200  # of an input echoed back in a 422
PLACES = (("body",), ("query",), ("path",), ("header",))  # where FastAPI found a value it refused


def echoed(value: Any) -> Any:
    """An input as a 422 shows it: as it came when it is short, numbers JSON cannot hold as their text, and
    anything long as its first characters.

    >>> echoed(float("nan")), echoed(12), echoed({"a": [1, float("inf")]}), echoed("x" * 300)[-23:]
    ('NaN', 12, {'a': [1, 'Infinity']}, '(300 characters in all)')
    """
    if isinstance(value, str):
        text = value = printable(value)
    elif isinstance(value, float) and not math.isfinite(value) or isinstance(value, dict | list):
        try:
            text = json.dumps(value, default=str)  # NaN and Infinity written as those words
        except RecursionError:
            return "(nested too deep to show)"
    else:
        return json_value(value)
    if len(text) > MAX_ECHO_CHARS:
        return f"{text[:MAX_ECHO_CHARS]}... ({len(text):,} characters in all)"
    return value if isinstance(value, str) else json.loads(text, parse_constant=str)


def printable(text: str) -> str:
    """`text` as UTF-8 can hold it: a lone surrogate (JSON's ``"\\udfff"`` parses to one) as its escape.

    >>> printable("ok"), printable("x\\udfff")
    ('ok', 'x\\\\udfff')
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


class ErrorAnswer(JSONResponse):
    """An error answer's JSON: echoed text that UTF-8 cannot hold (a lone surrogate) written as its escape,
    not a failure to answer."""

    def render(self, content: Any) -> bytes:
        try:
            return super().render(content)
        except UnicodeEncodeError:
            return json.dumps(content, allow_nan=False, separators=(",", ":")).encode("ascii")


def problem_document(problem: Problem) -> dict[str, Any]:
    return {
        "field": problem.field,
        "row": problem.row,
        "id": problem.record_id,
        "expected": problem.expected,
        "got": echoed(problem.got),
        "msg": str(
            Problem(problem.field, problem.expected, echoed(problem.got), problem.row, problem.record_id)
        ),
    }


def answer(status_code: int, message: str, problems: Sequence[Problem] = (), headers=None) -> JSONResponse:
    body = {"message": message, "detail": [problem_document(p) for p in problems]}
    return ErrorAnswer(body, status_code, headers=headers)


def _invalid(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, InvalidData)
    return answer(status.HTTP_422_UNPROCESSABLE_CONTENT, f"{exc.what} refused", exc.problems)


def _schema_refused(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # "body.assets.2.claims" is the body's assets.claims, row 2; "query.lang" the query's lang
    errors = [{**e, "loc": e["loc"][1:]} if e["loc"][:1] in PLACES else e for e in exc.errors()]
    message = "request refused: it does not match the schema"
    return answer(status.HTTP_422_UNPROCESSABLE_CONTENT, message, body_problems(errors))


def _service_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServiceError)
    return answer(exc.status_code, exc.message, exc.problems, exc.headers)


def _framework(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    headers = exc.headers
    if exc.status_code == status.HTTP_405_METHOD_NOT_ALLOWED:
        headers = {**(headers or {}), "Allow": ", ".join(_allowed_methods(request))}
    return answer(exc.status_code, str(exc.detail), headers=headers)


METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route of the request's path takes (GET /v1/applications and POST are two routes),
    found by asking the routes as a request of each method would."""
    path = {"type": "http", "path": request.url.path, "root_path": request.scope.get("root_path", "")}
    return [
        method
        for method in METHODS
        if any(
            route.matches({**path, "method": method})[0] is Match.FULL for route in request.app.router.routes
        )
    ]


def _server_fault(_request: Request, exc: Exception) -> JSONResponse:
    # Starlette logs the trace and re-raises once this answer is sent: the caller gets the one shape.
    return answer(status.HTTP_500_INTERNAL_SERVER_ERROR, SERVER_FAULT)


def _database_unavailable(_request: Request, exc: Exception) -> JSONResponse:
    if not unavailable(exc):  # a statement at fault is ours: the server's 500, with its trace in the log
        raise exc
    # The driver's words (host, user) stay in the log: callers, some without a key, get a fixed text.
    log.warning("the records database is unavailable: %s", driver_message(exc))
    return answer(status.HTTP_503_SERVICE_UNAVAILABLE, RECORDS_UNAVAILABLE)


def _status(code: int):
    def handler(_request: Request, exc: Exception) -> JSONResponse:
        return answer(code, str(exc))

    return handler


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _schema_refused)
    app.add_exception_handler(InvalidData, _invalid)
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(HTTPException, _framework)
    app.add_exception_handler(PermissionDenied, _status(status.HTTP_403_FORBIDDEN))
    app.add_exception_handler(NotFound, _status(status.HTTP_404_NOT_FOUND))
    app.add_exception_handler(AlreadyReviewed, _status(status.HTTP_409_CONFLICT))
    app.add_exception_handler(AlreadyDecided, _status(status.HTTP_409_CONFLICT))
    app.add_exception_handler(ModelMismatch, _status(status.HTTP_503_SERVICE_UNAVAILABLE))
    for database_error in DATABASE_ERRORS:  # a full pool (its timeout) too
        app.add_exception_handler(database_error, _database_unavailable)
    app.add_exception_handler(Exception, _server_fault)
