"""The HTTP edge, on SQLite and PostgreSQL: whatever bytes a client sends, the answer is a documented status
in the one error shape (never a 500), echoing the input safely; a body over the size limit is refused before
it is read; a record names the caller's own bank; the files `ipcredit up` writes are its owner's alone.

Each test here reproduces a defect of issue 18 (items 1, 2, 4, 9, 12, 13a, 13b, 13d).
"""

from __future__ import annotations

import gzip
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from test_api_support import application_bodies, create_keys, model_store, settings_for, store_env

from api import server
from api.main import create_app
from core.settings import DEFAULT_MAX_BODY_BYTES
from lending.testing import BACKENDS, scratch_url

ROLES = {
    "bank_a": ("Bank A", "bank"),
    "bank_b": ("Bank B", "bank"),
    "evaluator": ("Ezhou IP Evaluation Centre", "evaluator"),
}
JSON = {"content-type": "application/json"}


@dataclass
class Service:
    client: TestClient
    keys: dict[str, str]

    def send(self, method: str, path: str, who: str = "bank_a", headers: dict | None = None, **kwargs):
        given = {"X-API-Key": self.keys[who], **(headers or {})}
        return self.client.request(method, path, headers=given, **kwargs)

    def post_text(self, path: str, text: str, who: str = "bank_a"):
        """A body sent as written (json.dumps would escape what these tests put in)."""
        return self.send("POST", path, who, JSON, content=text.encode("utf-8", "surrogatepass"))


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    found = model_store(tmp_path_factory)
    with store_env(found.home):
        yield found


@pytest.fixture(scope="module")
def body(store):
    return application_bodies(store, 1)[0]


@pytest.fixture(scope="module", params=BACKENDS)
def service(request, store, tmp_path_factory):
    with scratch_url(request.param, tmp_path_factory.mktemp(f"edges-{request.param}")) as url:
        with TestClient(create_app(settings_for(url)), raise_server_exceptions=False) as client:
            yield Service(client, create_keys(client.app.state.sessions, ROLES))


def _error(response, status: int) -> dict:
    """The answer, checked to be `status` in the one error shape."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    answer = response.json()
    assert set(answer) == {"message", "detail"} and isinstance(answer["message"], str), answer
    for problem in answer["detail"]:
        assert set(problem) == {"field", "row", "id", "expected", "got", "msg"}, problem
    return answer


def _with(text: str, old: str, new: str) -> str:
    assert old in text
    return text.replace(old, new, 1)


# --------------------------------------------------------------------------- 1: lone surrogates


@pytest.mark.parametrize(
    "place, field, row",
    [
        ("application_id", "application_id", None),
        ("enterprise_id", "enterprise.enterprise_id", None),
        ("asset_id", "assets.asset_id", 0),
        ("bank_id", "loan.bank_id", None),
        ("asset_kind", "assets.asset_kind", 0),  # an enumeration
        ("application_date", "loan.application_date", None),  # a date
        ("field name", "loan", None),  # a key: the object that holds it is named
    ],
)
def test_a_lone_surrogate_anywhere_in_a_body_is_a_422_naming_its_place(service, body, place, field, row):
    sent = {**body, "application_id": "A-1", "loan": {**body["loan"], "bank_id": "Bank A"}}
    text = json.dumps(sent)
    if place == "field name":
        text = _with(text, '"term_months"', '"term_\\udfffmonths"')
    else:
        value = json.dumps({**sent, **sent["enterprise"], **sent["assets"][0], **sent["loan"]}[place])
        text = _with(text, f'"{place}": {value}', f'"{place}": "x\\udfff"')
    answer = _error(service.post_text("/v1/applications", text), 422)
    (problem,) = answer["detail"]
    assert (problem["field"], problem["row"]) == (field, row), problem
    assert "\\udfff" in problem["got"] and "surrogate" in problem["expected"], problem


def test_a_lone_surrogate_in_an_unknown_field_of_a_valuation_is_a_422(service):
    answer = _error(service.post_text("/v1/valuations", '{"colour": "\\udfff"}'), 422)
    assert any("\\udfff" in str(p["got"]) for p in answer["detail"]), answer


# --------------------------------------------------------------------------- 2 and 12: time filters


@pytest.mark.parametrize(
    "name, value",
    [
        ("created_from", "0001-01-01T00:00:00+14:00"),  # before year 1 in UTC
        ("created_to", "9999-12-31T23:59:59-14:00"),  # after year 9999 in UTC
        ("created_to", "0.5"),  # a number: read as a Unix time
        ("created_from", "1700000000"),
    ],
)
def test_a_time_filter_is_an_iso_8601_time_that_utc_can_hold(service, name, value):
    answer = _error(service.send("GET", "/v1/applications", params={name: value}), 422)
    (problem,) = answer["detail"]
    assert problem["field"] == name and problem["got"] == value, problem
    assert "ISO 8601" in problem["expected"] or "UTC" in problem["expected"], problem


def test_a_time_filter_near_the_calendar_s_ends_but_within_utc_is_taken(service):
    params = {"created_from": "0001-01-01T14:00:00+14:00", "created_to": "9999-12-31T09:59:59-14:00"}
    response = service.send("GET", "/v1/applications", params=params)
    assert response.status_code == 200, response.text


# --------------------------------------------------------------------------- 4: a NUL in a review reason


def test_a_nul_in_a_review_reason_is_a_422_naming_the_field(service, body):
    created = service.send("POST", "/v1/applications", json=body)
    assert created.status_code == 201, created.text
    path = f"/v1/applications/{created.json()['id']}/review"
    refused = service.send("POST", path, "evaluator", json={"decision": "override", "reason": "seen\x00ok"})
    (problem,) = _error(refused, 422)["detail"]
    assert problem["field"] == "reason" and "NUL" in problem["expected"], problem
    stored = service.send("GET", f"/v1/applications/{created.json()['id']}", "evaluator").json()
    assert stored["status"] == "pending_review" and stored["reviews"] == []  # nothing was stored


@pytest.mark.parametrize("name", ["application_id", "enterprise_id"])
def test_a_nul_in_an_id_filter_is_a_422_not_a_500(service, name):
    # found by schemathesis: PostgreSQL's text holds no NUL, and an id has none
    (problem,) = _error(service.send("GET", "/v1/applications", params={name: "\x00"}), 422)["detail"]
    assert problem["field"] == name, problem


# --------------------------------------------------------------------------- 9: the size limit


def test_a_body_over_the_size_limit_is_a_413_before_it_is_read(service):
    limit = service.client.app.state.settings.max_body_bytes
    assert limit == DEFAULT_MAX_BODY_BYTES
    pulled, sent = [], []

    async def endless() -> dict:  # a body without a Content-Length that never ends: counted as it comes
        pulled.append(1)
        return {"type": "http.request", "body": b" " * 65_536, "more_body": True}

    async def send(message: dict) -> None:
        sent.append(message)

    headers = [(b"content-type", b"application/json"), (b"x-api-key", service.keys["bank_a"].encode())]
    scope = {"type": "http", "method": "POST", "path": "/v1/valuations", "headers": headers}
    scope |= {"asgi": {"version": "3.0"}, "http_version": "1.1", "scheme": "http", "query_string": b""}
    scope |= {"raw_path": b"/v1/valuations", "root_path": "", "server": ("testserver", 80), "client": None}
    service.client.portal.call(service.client.app, scope, endless, send)
    assert sent[0]["status"] == 413 and len(pulled) == limit // 65_536 + 1  # no chunk after the limit
    answer = json.loads(b"".join(m.get("body", b"") for m in sent[1:]))
    (problem,) = answer["detail"]
    assert problem["field"] == "body" and f"{limit:,}" in problem["expected"], problem

    declared = {**JSON, "content-length": str(103_000_000)}
    answer = _error(service.send("POST", "/v1/valuations", headers=declared, content=b"{}"), 413)
    assert answer["detail"][0]["got"] == "103,000,000 bytes (Content-Length)", answer


def test_the_largest_documented_request_is_well_inside_the_size_limit(body):
    assets = [{**asset, "asset_id": f"CNP{n:08d}"} for n, asset in enumerate(body["assets"] * 1000)][:1000]
    largest = json.dumps({"assets": assets, "level": 0.9}, indent=2, ensure_ascii=False).encode()
    assert len(largest) * 3 < DEFAULT_MAX_BODY_BYTES, len(largest)


def test_the_size_limit_is_a_setting(store, tmp_path):
    with scratch_url("sqlite", tmp_path) as url:
        settings = settings_for(url, IPCREDIT_MAX_BODY_BYTES="100")
        with TestClient(create_app(settings), raise_server_exceptions=False) as client:
            response = client.post("/v1/valuations", headers=JSON, content=b'{"assets": [' + b" " * 100)
    (problem,) = _error(response, 413)["detail"]
    assert "100 bytes" in problem["expected"] and problem["got"] == "112 bytes (Content-Length)", problem


# --------------------------------------------------------------------------- 12: the contract


@pytest.mark.parametrize(
    "content, headers, status, expected",
    [
        (b'{"assets": "\xff"}', JSON, 415, "UTF-8"),  # invalid UTF-8
        ('{"assets": []}'.encode("utf-16"), JSON, 415, "UTF-8"),  # UTF-16, with its byte order mark
        ('{"assets": []}'.encode("utf-16-le"), JSON, 415, "UTF-8"),  # and without one
        (gzip.compress(b'{"assets": []}'), JSON, 415, "UTF-8"),  # compressed, not said so
        (gzip.compress(b'{"assets": []}'), {**JSON, "content-encoding": "gzip"}, 415, "identity"),
        (b'{"level": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", JSON, 422, "nested"),
        (b'{"level": ' + b"9" * 5000 + b"}", JSON, 422, "digits"),
    ],
    ids=["invalid-utf8", "utf16-bom", "utf16le", "gzip-unsaid", "gzip-said", "deep", "long-integer"],
)
def test_a_body_the_service_cannot_read_is_a_documented_4xx_not_a_400(
    service, content, headers, status, expected
):
    answer = _error(service.send("POST", "/v1/valuations", headers=headers, content=content), status)
    (problem,) = answer["detail"]
    assert problem["field"] in ("body", "Content-Encoding") and expected in problem["expected"], problem


def test_a_body_without_a_content_type_is_read_as_json(service, body):
    content = json.dumps({"assets": body["assets"][:1]}).encode()
    response = service.send("POST", "/v1/valuations", content=content)
    assert response.status_code == 201, response.text


def test_a_body_nested_within_the_parser_s_reach_is_refused_without_a_500(service):
    deep = "[" * 900 + "]" * 900
    answer = _error(service.post_text("/v1/valuations", '{"assets": [], "x": ' + deep + "}"), 422)
    assert answer["detail"], answer


def test_every_422_in_the_openapi_document_is_the_one_error_shape(service):
    document = service.client.get("/openapi.json").json()
    assert "HTTPValidationError" not in document["components"]["schemas"]
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status in ("413", "415", "422"):
                declared = operation["responses"].get(status)
                if declared is not None:
                    schema = declared["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/ErrorResponse"}, (method, path, status)
            if method == "post":
                assert {"413", "415", "422"} <= set(operation["responses"]), (method, path)


@pytest.mark.parametrize(
    "method, path, allowed",
    [
        ("OPTIONS", "/v1/applications", "GET, POST"),
        ("DELETE", "/v1/applications", "GET, POST"),
        ("PUT", "/v1/valuations/x", "GET"),
    ],
)
def test_a_method_a_path_does_not_take_names_every_method_it_does(service, method, path, allowed):
    response = service.send(method, path)
    _error(response, 405)
    assert response.headers["allow"] == allowed


def test_a_server_error_is_json_in_the_one_shape(service, body, monkeypatch):
    from api.routes import valuations

    def broken(*args, **kwargs):
        raise RuntimeError("the fault's own words")

    monkeypatch.setattr(valuations.documents, "value_assets", broken)
    answer = _error(service.send("POST", "/v1/valuations", json={"assets": body["assets"][:1]}), 500)
    assert answer["detail"] == [] and "own words" not in answer["message"], answer


# --------------------------------------------------------------------------- 13a: duplicate keys


@pytest.mark.parametrize(
    "old, new, field, row",
    [
        ('"loan": {', '"loan": {"term_months": 6, ', "loan.term_months", None),
        ('"asset_kind"', '"asset_id": "X", "asset_kind"', "assets.asset_id", 0),
        ('"loan"', '"application_id": "A-2", "loan"', "application_id", None),
    ],
)
def test_a_key_twice_in_one_object_is_refused_naming_it(service, body, old, new, field, row):
    text = json.dumps({**body, "application_id": "A-1"})
    answer = _error(service.post_text("/v1/applications", _with(text, old, new)), 422)
    (problem,) = answer["detail"]
    assert (problem["field"], problem["row"]) == (field, row) and "once" in problem["expected"], problem


# --------------------------------------------------------------------------- 13b: the lending bank


def test_a_bank_files_its_applications_under_its_own_name_only(service, body):
    def filed(bank_id, who):
        loan = {k: v for k, v in body["loan"].items() if k != "bank_id"}
        return service.send("POST", "/v1/applications", who, json={**body, "loan": {**loan, **bank_id}})

    (problem,) = _error(filed({"bank_id": "Bank A"}, "bank_b"), 422)["detail"]
    assert problem["field"] == "loan.bank_id" and "Bank B" in problem["expected"], problem
    assert problem["got"] == "Bank A"
    for given in ({}, {"bank_id": None}, {"bank_id": "Bank B"}, {"bank_id": "BANK B"}):
        response = filed(given, "bank_b")
        assert response.status_code == 201, response.text
        assert response.json()["request"]["loan"]["bank_id"] == "Bank B"  # the institution's own name


# --------------------------------------------------------------------------- 13d: files of `ipcredit up`


def test_the_files_up_writes_are_readable_by_their_owner_only(store, tmp_path, monkeypatch):
    home = tmp_path / "home"
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "portfolio").symlink_to(store.portfolio_dir)  # the default portfolio folder
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("IPCREDIT_HOME", str(home))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store.home / 'mlflow.db'}")  # its champions
    monkeypatch.delenv("DATABASE_URL", raising=False)
    (home).mkdir()
    previous = _umask(0o022)  # the usual default: files readable by all
    try:
        server.up(8125, lambda step: None, echo=lambda line: None, run=lambda **kwargs: None)
        assert _umask(0o022) == 0o022  # put back as it was
    finally:
        _umask(previous)
    written = [Path(home, name) for name in ("ipcredit.db", server.DEMO_KEY_FILE, server.EXAMPLE_FILE)]
    assert {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in written} == {
        p.name: oct(0o600) for p in written
    }


def test_a_records_file_and_a_model_store_written_before_become_their_owner_s_alone(
    store, tmp_path, monkeypatch
):
    records = tmp_path / "records.db"
    records.touch(mode=0o644)
    records.chmod(0o644)
    models = tmp_path / "mlflow.db"
    models.touch(mode=0o644)
    models.chmod(0o644)
    server.owner_only(f"sqlite:///{records}", f"sqlite:///{models}", "http://mlflow:5000")
    assert stat.S_IMODE(records.stat().st_mode) == 0o600
    assert stat.S_IMODE(models.stat().st_mode) == 0o600  # the local model store too


def _umask(mask: int) -> int:
    return os.umask(mask)
