"""Dependencies of the routes, as `Annotated[..., Depends()]` aliases (the FastAPI full-stack template's
`api/deps.py`): the records session, the caller, the loaded models and the language of texts.

- `SessionDep`: one session per request whose transaction commits when the route returns (before the
  answer is sent, so that a failed commit is never answered as a success) and rolls back if it raises.
  The session begins its transaction at its first query, so a route computes first and writes last: on
  SQLite a transaction holds the database's write lock from its first statement.
- `PrincipalDep`: the caller of the ``X-API-Key`` header (lending.keys.authenticate), in a short read of
  its own (lending.db.reading: no write lock); 401 without a key or with one that is unknown, revoked or
  malformed.
- `ModelsDep`: the models loaded at startup, for a route that computes with them, in the caller's
  institution's turn (api.limits: each institution one at a time, a few institutions at once; 429 with
  Retry-After over its budget of assets in flight); 503 when the models are not loaded (see /ready).
  `LoadedModelsDep`: the same models for a route that only reads their versions.
- `LanguageDep`: ``?lang=zh`` (the default) or ``?lang=en``.

A body is read before any of these, by the routers' route class (api.body: its size, encoding and JSON).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Annotated

from fastapi import Depends, Query, Request, Security, status
from fastapi.security import APIKeyHeader
from sqlalchemy.orm import Session

from api import limits
from api.errors import ServiceError
from api.schemas import Language
from api.serving import ServedModels
from features.errors import Problem
from lending import keys
from lending.db import reading, transaction
from lending.keys import Principal

API_KEY_HEADER = "X-API-Key"

api_key_header = APIKeyHeader(
    name=API_KEY_HEADER,
    scheme_name="ApiKey",
    description="An institution's key: `ipcredit keys create --institution NAME --role ROLE`.",
    auto_error=False,
)


def get_session(request: Request) -> Iterator[Session]:
    with transaction(request.app.state.sessions) as session:
        yield session


def get_principal(request: Request, key: Annotated[str | None, Security(api_key_header)]) -> Principal:
    challenge = {"WWW-Authenticate": f'ApiKey header="{API_KEY_HEADER}"'}
    if not key:
        message = f"an API key is needed in the {API_KEY_HEADER} header"
        missing = Problem(API_KEY_HEADER, "an institution's API key (ipcredit keys create)", None)
        raise ServiceError(status.HTTP_401_UNAUTHORIZED, message, [missing], challenge)
    with reading(request.app.state.sessions) as session:
        principal = keys.authenticate(session, key)
    if principal is None:
        message = "the API key is not valid (unknown, revoked or malformed)"
        # the key given is never echoed: a caller's secret stays out of answers and logs
        refused = Problem(API_KEY_HEADER, "a key that is issued and not revoked", "(not shown)")
        raise ServiceError(status.HTTP_401_UNAUTHORIZED, message, [refused], challenge)
    return principal


async def get_models(request: Request) -> ServedModels:
    # async: it only reads the app's state, and a sync dependency costs a worker-thread round trip.
    models = request.app.state.models
    if models is None:
        message = f"the models are not loaded: {request.app.state.not_ready}"
        raise ServiceError(status.HTTP_503_SERVICE_UNAVAILABLE, message)
    return models


async def compute_with_models(
    request: Request, principal: Annotated[Principal, Depends(get_principal)]
) -> AsyncIterator[ServedModels]:
    models = await get_models(request)
    async with limits.compute_turn(request, principal):  # held until the route returns
        yield models


SessionDep = Annotated[Session, Depends(get_session, scope="function")]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
LoadedModelsDep = Annotated[ServedModels, Depends(get_models)]
ModelsDep = Annotated[ServedModels, Depends(compute_with_models, scope="function")]
LanguageDep = Annotated[
    Language, Query(description="Language of the reason and recommendation texts: zh (default) or en")
]
