"""The service end to end through FastAPI's TestClient, on SQLite and PostgreSQL: every endpoint, keys and
who sees what, refused input (422 naming the field), the one-transaction write, a stored decision
reproduced exactly from its stored request and model versions, and serving on after the registry is gone.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import types
import uuid
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from test_api_support import (
    application_bodies,
    create_keys,
    model_store,
    settings_for,
    store_env,
)

from api.main import create_app
from api.schemas import AssetIn
from features.errors import ModelMismatch, require_features
from lending.db import transaction
from lending.keys import authenticate
from lending.records import get_application, get_valuation
from lending.testing import BACKENDS, scratch_url
from models import registry
from underwriting.decision import rerun
from valuation.assets import PATENT_ONLY

ROLES = {
    "bank_a": ("Bank A", "bank"),
    "bank_b": ("Bank B", "bank"),
    "evaluator": ("Ezhou IP Evaluation Centre", "evaluator"),
    "admin": ("Programme Operator", "admin"),
}


@dataclass
class Service:
    client: TestClient
    keys: dict[str, str]

    @property
    def app(self):
        return self.client.app

    def headers(self, who: str) -> dict[str, str]:
        return {"X-API-Key": self.keys[who]}

    def post(self, path: str, who: str = "bank_a", headers: dict | None = None, **kwargs):
        return self.client.post(path, headers={**self.headers(who), **(headers or {})}, **kwargs)

    def get(self, path: str, who: str = "bank_a", **kwargs):
        return self.client.get(path, headers=self.headers(who), **kwargs)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    found = model_store(tmp_path_factory)
    with store_env(found.home):
        yield found


@pytest.fixture(scope="module")
def bodies(store):
    return application_bodies(store, 3)


@pytest.fixture(scope="module", params=BACKENDS)
def service(request, store, tmp_path_factory):
    with scratch_url(request.param, tmp_path_factory.mktemp(f"records-{request.param}")) as url:
        with TestClient(create_app(settings_for(url))) as client:
            yield Service(client, create_keys(client.app.state.sessions, ROLES))


def _applied(service: Service, body: dict, who: str = "bank_a") -> dict:
    response = service.post("/v1/applications", who, json=body)
    assert response.status_code == 201, response.text
    return response.json()


# --------------------------------------------------------------------------- health, models


def test_health_and_ready_need_no_key_and_ready_lists_the_loaded_versions(service):
    assert service.client.get("/health").json() == {"status": "ok"}
    ready = service.client.get("/ready")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    champions = registry.champion_versions()
    for task, model in ready.json()["models"].items():
        assert model["version"] == champions[f"ipcredit-{task}"].version
        assert model["uri"] == f"models:/ipcredit-{task}/{model['version']}"
        assert model["source_uri"] == f"models:/ipcredit-{task}@champion"


def test_models_lists_the_champion_versions_in_use(service):
    response = service.get("/v1/models")
    assert response.status_code == 200
    models = response.json()["models"]
    assert {m["name"]: m["version"] for m in models.values()} == {
        name: champion.version for name, champion in registry.champion_versions().items()
    }
    for model in models.values():  # how each came to serve: the gate's decision, the reason, the review
        assert model["gate"] == "first champion" and model["review"] == "pending"
        assert model["champion_reason"] == "first version: there was no champion"


# --------------------------------------------------------------------------- valuations


def test_valuations_value_every_asset_with_an_interval_scores_and_factors_and_are_stored(service, bodies):
    assets = [a for body in bodies for a in body["assets"]]
    response = service.post("/v1/valuations", json={"assets": assets, "level": 0.8})
    assert response.status_code == 201, response.text
    answer = response.json()
    assert [a["asset_id"] for a in answer["assets"]] == [a["asset_id"] for a in assets]
    for asset in answer["assets"]:
        assert 0 < asset["value_low_cny"] <= asset["value_cny"] <= asset["value_high_cny"]
        product = math.prod(f["factor"] for f in asset["factors"])
        assert product == pytest.approx(asset["value_cny"], rel=1e-9)  # the factors explain the value
        assert asset["factors"][0]["feature"] == "base"
        assert set(asset["scores"]) == {"legal", "technical", "economic", "total", "market"}
        if asset["asset_kind"] == "patent":
            assert asset["scores"]["market"] is None
    assert answer["model_versions"]["valuation"]["name"] == "ipcredit-valuation"
    with transaction(service.app.state.sessions) as session:
        who = authenticate(session, service.keys["bank_a"])
        stored = get_valuation(session, who, answer["id"])
        assert stored.result["assets"] == answer["assets"] and stored.request["level"] == 0.8


def test_bundle_gives_each_value_the_bundle_and_the_pledge_value(service, bodies):
    body = bodies[0]
    response = service.post("/v1/valuations/bundle", json={"assets": body["assets"], "loan_term_months": 24})
    assert response.status_code == 201, response.text
    bundle = response.json()["bundle"]
    assert bundle["pledge_value_cny"] <= bundle["liquidation_value_cny"] <= bundle["bundle_value_cny"]
    assert bundle["bundle_value_cny"] <= bundle["total_value_cny"] + 1e-6
    assert set(bundle["liquidation_by_route"]) == {"licence", "auction_transfer", "pledge_to_equity"}
    assert bundle["total_value_cny"] == pytest.approx(sum(a["value_cny"] for a in response.json()["assets"]))
    assert bundle["loan_term_months"] == 24 and len(bundle["assets"]) == len(body["assets"])


def _a_mark(body: dict, **changes) -> dict:
    """A registered mark in its first term (3 years registered, 7 left), with the owner facts of the body's
    first patent, and `changes`."""
    patent = next(a for a in body["assets"] if a["asset_kind"] == "patent")
    return {
        **patent,
        **dict.fromkeys(PATENT_ONLY),
        "asset_id": "TM-1",
        "asset_kind": "trademark",
        "patent_type": None,
        "status_as_of": None,
        "nice_class": 9,
        "is_registered": 1,
        "years_registered": 3.0,
        "remaining_years": 7.0,
        "renewals": 0,
        **changes,
    }


def test_a_trademark_s_market_score_is_answered_where_a_patent_s_technical_score_is(service, bodies):
    mark = _a_mark(bodies[0], well_known=1)
    response = service.post("/v1/valuations", json={"assets": [mark]})
    assert response.status_code == 201, response.text
    scores = response.json()["assets"][0]["scores"]
    assert scores["technical"] is None and 0 <= scores["market"] <= 100


def test_a_stored_valuation_is_read_back_as_it_was_answered_by_its_own_bank_only(service, bodies):
    assets = service.post("/v1/valuations", json={"assets": bodies[1]["assets"]}).json()
    bundle = service.post(
        "/v1/valuations/bundle", json={"assets": bodies[0]["assets"], "loan_term_months": 24}
    ).json()
    for answer in (assets, bundle):
        again = service.get(f"/v1/valuations/{answer['id']}")
        assert again.status_code == 200, again.text
        assert again.json() == answer
        assert service.get(f"/v1/valuations/{answer['id']}", "evaluator").json() == answer
        assert service.get(f"/v1/valuations/{answer['id']}", "bank_b").status_code == 404  # another bank's
    assert service.get("/v1/valuations/not-a-uuid").status_code == 404


# --------------------------------------------------------------------------- applications


def test_an_application_is_decided_explained_and_stored_pending_review(service, bodies):
    answer = _applied(service, bodies[0])
    assert answer["status"] == "pending_review" and answer["application_id"] == answer["id"]
    assert (
        0 < answer["pd"] < 1
        and answer["grade"]
        and answer["recommendation"] in {"approve", "review", "decline"}
    )
    split = answer["expected_loss_split"]
    assert sum(split.values()) == pytest.approx(answer["expected_loss_cny"])
    assert answer["credit_line_cny"] <= bodies[0]["loan"]["amount_cny"] + 1e-6
    score = answer["explanation"]["score"]
    assert score["base_points"] + sum(score["points"].values()) == pytest.approx(answer["score"], abs=1e-6)
    assert score["values"].keys() == score["points"].keys()  # each feature's points beside its value
    assert score["values"]["overdue_count_24m"] == bodies[0]["enterprise"]["overdue_count_24m"]
    assert answer["request"]["loan"]["amount_cny"] == bodies[0]["loan"]["amount_cny"]  # what was decided
    assert {"commit", "package_version", "code_sha256"} <= answer["code"].keys()  # the code that decided it
    assert answer["code"] == service.client.app.state.models.code
    assert len(answer["explanation"]["assets"]) == len(bodies[0]["assets"])
    bundle = answer["valuation"]["bundle"]
    assert bundle["pledge_value_cny"] <= bundle["liquidation_value_cny"] <= bundle["bundle_value_cny"]
    assert answer["recommendation_label"] in {"批准", "复核", "拒绝"}  # Chinese by default
    for reason in answer["reasons"]:
        assert reason["text"] == reason["zh"] and reason["points"] < 0 and reason["code"]
    assert answer["model_versions"].keys() == {"valuation", "scoring"}

    english = service.get(f"/v1/applications/{answer['id']}", params={"lang": "en"}).json()
    assert english["recommendation_label"] == answer["recommendation"]
    assert [r["text"] for r in english["reasons"]] == [r["en"] for r in answer["reasons"]]
    same = {k: v for k, v in english.items() if k not in ("reasons", "recommendation_label")}
    assert same == {k: v for k, v in answer.items() if k not in ("reasons", "recommendation_label")}


def test_the_bank_s_own_application_id_is_kept(service, bodies):
    answer = _applied(service, {**bodies[1], "application_id": "BOE-2026-0042"})
    assert answer["application_id"] == "BOE-2026-0042" and answer["id"] != "BOE-2026-0042"


def test_an_enterprise_on_the_dishonest_debtor_list_is_declined_whatever_its_pd(service, bodies):
    clean = _applied(service, _set(bodies[0], "enterprise.dishonest_debtor", False))
    listed = _applied(service, _set(bodies[0], "enterprise.dishonest_debtor", True))
    assert clean["declined_by"] == []
    assert listed["recommendation"] == "decline" and listed["recommendation_label"] == "拒绝"
    (rule,) = listed["declined_by"]
    assert (rule["code"], rule["feature"], rule["text"]) == ("R01", "dishonest_debtor", rule["zh"])
    english = service.get(f"/v1/applications/{listed['id']}", params={"lang": "en"}).json()
    assert english["declined_by"][0]["text"] == rule["en"] and "dishonest debtor" in rule["en"]
    approved = service.post(
        f"/v1/applications/{listed['id']}/review", "evaluator", json={"decision": "approve", "reason": "x"}
    )
    assert approved.status_code == 422 and approved.json()["detail"][0]["field"] == "decision"  # a bar


def test_a_repayment_90_days_overdue_declines_whatever_the_pd(service, bodies):
    """The policy's decline limit: 90 or more days overdue in the last 24 months (a default by the
    90-days-past-due rule) declines, with the rule named; 89 days leaves it to the PD."""
    clean = _set(_set(bodies[0], "enterprise.max_overdue_days_24m", 89), "enterprise.dishonest_debtor", False)
    below = _applied(service, _set(clean, "enterprise.overdue_count_24m", 1))
    at = _applied(
        service, _set(_set(clean, "enterprise.max_overdue_days_24m", 90), "enterprise.overdue_count_24m", 1)
    )
    assert below["declined_by"] == []
    assert at["recommendation"] == "decline" and at["recommendation_label"] == "拒绝"
    assert [(r["code"], r["feature"]) for r in at["declined_by"]] == [("R02", "max_overdue_days_24m")]


def test_a_loan_term_beyond_the_pledge_cap_is_held_for_review(service, bodies):
    """The pledge policy caps the term at 36 months: a longer loan that the PD would approve is held for
    review, with the rule named; within the cap nothing is held."""
    clean = _set(bodies[0], "enterprise.dishonest_debtor", False)
    within = _applied(service, _set(clean, "loan.term_months", 36))
    beyond = _applied(service, _set(clean, "loan.term_months", 48))
    assert within["held_by"] == [] and within["valuation"]["bundle"]["term_within_cap"]
    assert not beyond["valuation"]["bundle"]["term_within_cap"]
    (rule,) = beyond["held_by"]
    assert (rule["code"], rule["feature"], rule["text"]) == ("R32", "term_months", rule["zh"])
    assert "48" in rule["zh"] and "36" in rule["zh"] and "beyond the pledge policy's cap" in rule["en"]
    assert within["recommendation"] == "approve"  # the fixture's first application is a good one
    assert beyond["recommendation"] == "review" and beyond["recommendation_label"] == "复核"


def test_a_scoring_model_trained_on_another_table_is_refused_not_read_as_missing(service, bodies):
    """A champion promoted by hand from a bank's own book (HMEQ, say) reads features an application does not
    give: the service answers 503 naming them, and stores nothing, rather than read them all as missing."""
    models = service.app.state.models
    stranger = types.SimpleNamespace(
        spec=types.SimpleNamespace(feature_names=("debtinc", "leverage", "delinq"))
    )
    # (not monkeypatch: it cannot restore an attribute of Starlette's State, which keeps them in a dict)
    service.app.state.models = dataclasses.replace(
        models, scoring=dataclasses.replace(models.scoring, fitted=stranger)
    )
    try:
        before = _total(service)
        response = service.post("/v1/applications", json=bodies[0])
    finally:
        service.app.state.models = models
    assert response.status_code == 503, response.text
    assert "reads features that an application's row" in response.json()["message"]
    assert "debtinc, delinq" in response.json()["message"]
    assert _total(service) == before


def test_a_valuation_model_that_reads_what_no_asset_carries_is_not_served():
    fitted = types.SimpleNamespace(spec=types.SimpleNamespace(feature_names=("claims", "appraiser_grade")))
    with pytest.raises(
        ModelMismatch, match="the valuation model reads features that X does not give: appraiser_grade"
    ):
        require_features("valuation", fitted, AssetIn.model_fields, "X")
    require_features("valuation", fitted, [*AssetIn.model_fields, "appraiser_grade"], "X")  # all given: fine


@pytest.mark.parametrize(
    "change, field",
    [
        (
            {"owner_revenue_cny": "x10"},
            "assets.owner_revenue_cny",
        ),  # a revenue the credit report does not show
        ({"owner_industry": "other"}, "assets.owner_industry"),
        ({"owner_high_tech": "flip"}, "assets.owner_high_tech"),
        ({"as_of": "2099-01-01"}, "assets.as_of"),  # figures dated after the application
    ],
)
def test_the_applicant_s_own_assets_must_agree_with_its_credit_report(service, bodies, change, field):
    body = copy.deepcopy(bodies[0])
    asset, enterprise = body["assets"][1], body["enterprise"]
    value = {
        "x10": enterprise["revenue_cny"] * 10,
        "other": next(i for i in ("software", "biomedicine") if i != enterprise["industry"]),
        "flip": 0.0 if enterprise["high_tech"] else 1.0,
    }.get(next(iter(change.values())), next(iter(change.values())))
    asset[next(iter(change))] = value
    response = service.post("/v1/applications", json=body)
    assert response.status_code == 422, response.text
    (problem,) = response.json()["detail"]
    assert (problem["field"], problem["row"], problem["id"]) == (field, 1, asset["asset_id"])
    assert problem["got"] == value
    # the applicant's own id in another case is still the applicant's: checked, not a third party's
    if field != "assets.as_of":
        asset["enterprise_id"] = body["enterprise"]["enterprise_id"].lower()
        assert service.post("/v1/applications", json=body).status_code == 422
    # a third party pledging for the applicant (第三人出质) keeps its own owner facts (and states them)
    if field != "assets.as_of":
        asset["enterprise_id"] = "E-THIRD-PARTY"
        asset.setdefault("owner_revenue_cny", enterprise["revenue_cny"])
        asset.setdefault("owner_industry", enterprise["industry"])
        assert service.post("/v1/applications", json=body).status_code == 201


def test_an_enterprise_s_subsidy_counts_what_its_approved_loans_of_the_year_were_granted(service, bodies):
    """The cap is per enterprise per year, across applications: a new application's subsidy is decided
    after what the enterprise's approvals of the year were granted, and an approval grants within the cap."""
    body = _set(
        _set(bodies[0], "enterprise.dishonest_debtor", False),
        "enterprise.enterprise_id",
        f"E-{uuid.uuid4().hex[:8]}",
    )
    first = _applied(service, body)
    assert first["subsidy_granted_before_cny"] == 0.0 and first["subsidy_cap_cny"] == 100_000.0
    reviewed = service.post(
        f"/v1/applications/{first['id']}/review", "evaluator", json={"decision": "approve", "reason": "ok"}
    ).json()
    (review,) = reviewed["reviews"]
    year = int(body["loan"]["application_date"][:4])
    assert (
        review["subsidy_year"] == year and review["interest_subsidy_cny"] == first["interest_subsidy_cny"] > 0
    )
    again = _applied(service, body)
    assert again["subsidy_granted_before_cny"] == pytest.approx(first["interest_subsidy_cny"])
    assert again["interest_subsidy_cny"] <= 100_000.0 - first["interest_subsidy_cny"] + 1e-6
    with transaction(service.app.state.sessions) as session:  # and it re-runs exactly, granted-before and all
        record = get_application(session, authenticate(session, service.keys["evaluator"]), again["id"])
        request, result, explanation = record.request, record.result, record.explanation
    models = service.app.state.models
    again = _rerun(models.valuer, models.scorer, request, result, explanation)
    assert json.dumps(again.result, sort_keys=True) == json.dumps(result, sort_keys=True)
    next_year = _applied(service, _set(body, "loan.application_date", f"{year + 1}-01-05"))
    assert next_year["subsidy_granted_before_cny"] == 0.0  # another year, its own cap


def test_a_retried_application_id_is_decided_once(service, bodies):
    body = {**bodies[1], "application_id": f"RETRY-{uuid.uuid4().hex[:8]}"}
    first = _applied(service, body)
    total = service.get("/v1/applications").json()["total"]
    again = service.post("/v1/applications", json=body)
    assert again.status_code == 409, again.text
    assert first["id"] in again.json()["message"]
    assert service.get("/v1/applications").json()["total"] == total  # nothing stored twice
    # the id is the bank's own: another bank may use the same one, and no id means a new application
    assert service.post("/v1/applications", "bank_b", json=body).status_code == 201
    anonymous = {k: v for k, v in body.items() if k != "application_id"}
    assert [service.post("/v1/applications", json=anonymous).status_code for _ in range(2)] == [201, 201]


def _rerun(valuer, scorer, request: dict, result: dict, explanation: dict):
    """A stored decision made again from its request, with the policies and the subsidy granted before it that
    it kept (docs/api.md: re-running a stored request); nothing differs."""
    again = rerun(request, result, explanation, valuer, scorer)
    assert again.differences == []
    return again.decision


def test_a_stored_decision_is_reproduced_exactly_with_its_stored_model_versions(service, bodies):
    answer = _applied(service, bodies[2])
    with transaction(service.app.state.sessions) as session:
        record = get_application(session, authenticate(session, service.keys["evaluator"]), answer["id"])
        request, result = record.request, record.result
        explanation, versions = record.explanation, record.model_versions
    for task in ("valuation", "scoring"):
        assert versions[task]["uri"] == f"models:/{versions[task]['name']}/{versions[task]['version']}"
    valuer = registry.load_fitted(versions["valuation"]["uri"], task="valuation")  # fresh from the registry
    scorer = registry.load_fitted(versions["scoring"]["uri"], task="scoring")
    again = _rerun(valuer, scorer, request, result, explanation)
    assert json.dumps(again.result, sort_keys=True) == json.dumps(result, sort_keys=True)
    assert json.dumps(again.explanation, sort_keys=True) == json.dumps(explanation, sort_keys=True)


def _total(service: Service, who: str = "admin", **params) -> int:
    response = service.get("/v1/applications", who, params=params)
    assert response.status_code == 200, response.text
    return response.json()["total"]


def test_request_result_and_explanation_are_written_in_one_transaction(service, bodies, monkeypatch):
    before = _total(service)

    def fail_after_saving(record, lang):
        raise RuntimeError("the answer could not be built")

    monkeypatch.setattr("api.routes.applications.views.application_response", fail_after_saving)
    with pytest.raises(RuntimeError, match="could not be built"):
        service.post("/v1/applications", json=bodies[0])
    assert _total(service) == before  # saved, then rolled back with the failure: no half record


# --------------------------------------------------------------------------- keys and who sees what


@pytest.mark.parametrize(
    "headers", [{}, {"X-API-Key": ""}, {"X-API-Key": "ipc_00000000_" + "x" * 43}, {"X-API-Key": "nonsense"}]
)
@pytest.mark.parametrize(
    "method, path",
    [
        ("get", "/v1/models"),
        ("get", "/v1/applications"),
        ("get", f"/v1/applications/{uuid.uuid4()}"),
        ("post", "/v1/valuations"),
        ("post", "/v1/valuations/bundle"),
        ("get", f"/v1/valuations/{uuid.uuid4()}"),
        ("post", "/v1/applications"),
        ("post", f"/v1/applications/{uuid.uuid4()}/review"),
    ],
)
def test_every_endpoint_but_health_and_ready_needs_a_valid_key(service, headers, method, path):
    response = getattr(service.client, method)(path, headers=headers)
    assert response.status_code == 401, response.text
    assert "X-API-Key" in response.headers["www-authenticate"]


def test_a_bank_never_sees_another_bank_s_applications(service, bodies):
    mine = _applied(service, bodies[0], who="bank_b")["id"]
    assert service.get(f"/v1/applications/{mine}", "bank_b").status_code == 200
    other = service.get(f"/v1/applications/{mine}", "bank_a")
    nobody = str(uuid.uuid4())
    unknown = service.get(f"/v1/applications/{nobody}", "bank_a")
    assert other.status_code == unknown.status_code == 404  # exactly as an id that does not exist
    assert other.json()["message"].replace(mine, "ID") == unknown.json()["message"].replace(nobody, "ID")
    listed_a = service.get("/v1/applications", "bank_a", params={"page_size": 200}).json()["items"]
    listed_b = service.get("/v1/applications", "bank_b", params={"page_size": 200}).json()["items"]
    assert mine not in {a["id"] for a in listed_a} and mine in {a["id"] for a in listed_b}
    assert {a["institution_id"] for a in listed_a}.isdisjoint({a["institution_id"] for a in listed_b})
    everything = service.get("/v1/applications", "evaluator", params={"page_size": 200}).json()
    assert {a["id"] for a in listed_a + listed_b} <= {a["id"] for a in everything["items"]}


def test_evaluators_review_banks_may_not_and_a_review_decides_once(service, bodies):
    applied = _applied(service, bodies[1])
    path = f"/v1/applications/{applied['id']}/review"
    refused = service.post(path, "bank_a", json={"decision": "approve"})
    assert refused.status_code == 403 and "evaluator or admin" in refused.json()["message"]
    no_reason = service.post(path, "evaluator", json={"decision": "override"})
    assert no_reason.status_code == 422 and no_reason.json()["detail"][0]["field"] == "reason"
    reviewed = service.post(path, "evaluator", json={"decision": "approve", "reason": "pledge registered"})
    assert reviewed.status_code == 200, reviewed.text
    assert reviewed.json()["status"] == "approved"
    assert [r["decision"] for r in reviewed.json()["reviews"]] == ["approve"]
    assert service.post(path, "admin", json={"decision": "decline"}).status_code == 409
    assert service.get(f"/v1/applications/{applied['id']}", "bank_a").json()["status"] == "approved"
    missing = service.post(
        f"/v1/applications/{uuid.uuid4()}/review", "evaluator", json={"decision": "approve"}
    )
    assert missing.status_code == 404


def test_listing_filters_by_status_and_time_and_pages(service, bodies):
    _applied(service, bodies[0])
    everything = _total(service, "bank_a")
    pending = _total(service, "bank_a", status="pending_review")
    approved = _total(service, "bank_a", status="approved")
    assert pending >= 1 and pending + approved <= everything
    assert _total(service, "bank_a", created_from="2999-01-01T00:00:00Z") == 0
    assert _total(service, "bank_a", created_to="2999-01-01T00:00:00+08:00") == everything
    page = service.get("/v1/applications", "bank_a", params={"page": 2, "page_size": 1}).json()
    assert page["total"] == everything and len(page["items"]) == min(1, everything - 1)
    for params, field in [
        ({"status": "lost"}, "status"),
        ({"created_from": "2026-01-01T00:00:00"}, "created_from"),  # no zone: refused, not guessed
        ({"page": 0}, "page"),
        ({"page_size": 201}, "page_size"),
    ]:
        response = service.get("/v1/applications", "bank_a", params=params)
        assert response.status_code == 422 and _fields(response) == [(field, None)]


def test_a_bank_finds_its_applications_by_its_own_id_and_by_applicant(service, bodies):
    reference = f"BOE-FIND-{uuid.uuid4().hex[:8]}"
    mine = _applied(service, {**bodies[2], "application_id": reference})
    found = service.get("/v1/applications", "bank_a", params={"application_id": reference}).json()
    assert [a["id"] for a in found["items"]] == [mine["id"]] and found["total"] == 1
    theirs = service.get("/v1/applications", "bank_b", params={"application_id": reference}).json()
    assert theirs["total"] == 0  # another bank's reference finds nothing
    by_applicant = service.get(
        "/v1/applications", "bank_a", params={"enterprise_id": mine["enterprise_id"], "page_size": 200}
    ).json()["items"]
    assert mine["id"] in {a["id"] for a in by_applicant}
    assert {a["enterprise_id"] for a in by_applicant} == {mine["enterprise_id"]}


def test_a_language_other_than_zh_or_en_is_refused(service):
    response = service.get(f"/v1/applications/{uuid.uuid4()}", params={"lang": "fr"})
    assert response.status_code == 422 and _fields(response) == [("lang", None)]


# --------------------------------------------------------------------------- refused input


def _set(body: dict, path: str, value) -> dict:
    """A copy of `body` with the value at dotted `path` set (DELETE removes it)."""
    out = copy.deepcopy(body)
    *parents, last = path.split(".")
    node = out
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return out


DELETE = object()


def _fields(response) -> list[tuple[str, int | None]]:
    """(field, row) of each problem of an error answer (api.schemas.ErrorResponse)."""
    return [(p["field"], p["row"]) for p in response.json()["detail"]]


@pytest.mark.parametrize(
    "path, value, field, row, expected",
    [
        ("assets.0.remaining_years", "5", "assets.remaining_years", 0, "a valid number"),  # text for a number
        ("assets.0.remaining_years", -1, "assets.remaining_years", 0, ">= 0"),  # the domain's bound
        ("assets.0.colour", "red", "assets.colour", 0, "Extra inputs are not permitted"),
        ("assets.0.asset_kind", "copyright", "assets.asset_kind", 0, "'patent' or 'trademark'"),
        ("assets.0.owner_industry", "mining", "assets.owner_industry", 0, "'electronics', 'biomedicine'"),
        ("assets.0.claims", True, "assets.claims", 0, "a valid number"),  # a boolean is not a count
        # a status neither a patent's nor a mark's: one problem, named by the field alone, both lists said
        (
            "assets.0.status_as_of",
            "sold",
            "assets.status_as_of",
            0,
            "'withdrawn'; or 'pending', 'registered'",
        ),
        ("assets", [], "assets", None, "at least 1 item"),
        ("enterprise.employees", "12", "enterprise.employees", None, "a valid integer"),
        ("enterprise.employees", 12.5, "enterprise.employees", None, "a valid integer"),
        ("enterprise.report_date", "2024/01/01", "enterprise.report_date", None, "an ISO date text"),
        ("enterprise.revenue_cny", 1e300, "enterprise.revenue_cny", None, "a magnitude of at most 1e+15"),
        ("enterprise.motto", "x", "enterprise.motto", None, "Extra inputs are not permitted"),
        ("loan.term_months", 0, "loan.term_months", None, "greater than or equal to 1"),
        ("loan.term_months", 12.0, "loan.term_months", None, "a valid integer"),
        ("loan.annual_rate", 0.5, "loan.annual_rate", None, "less than or equal to 0.36"),
        ("loan.amount_cny", 0, "loan.amount_cny", None, "greater than 0"),
        ("loan.insurance", "yes", "loan.insurance", None, "a valid boolean"),
        ("loan", DELETE, "loan", None, "Field required"),
        ("unexpected", 1, "unexpected", None, "Extra inputs are not permitted"),
    ],
)
def test_a_body_that_does_not_fit_is_refused_field_by_field_in_one_shape(
    service, bodies, path, value, field, row, expected
):
    response = service.post("/v1/applications", json=_set(bodies[0], path, value))
    assert response.status_code == 422, response.text
    found = [p for p in response.json()["detail"] if (p["field"], p["row"]) == (field, row)]
    assert found and expected in found[0]["expected"], response.json()
    assert set(response.json()) == {"message", "detail"}
    assert set(found[0]) == {"field", "row", "id", "expected", "got", "msg"}


def test_an_applicant_s_own_assets_take_the_owner_facts_from_its_credit_report(service, bodies):
    """The owner facts are stated once, in the report: an own asset without them is valued on the report's
    (the same decision as with them repeated); one of a third party must state its own."""
    body = copy.deepcopy(bodies[0])
    stated = _applied(service, body)  # the facts repeated on each asset (test_api_support)
    for asset in body["assets"]:
        for fact in ("owner_revenue_cny", "owner_industry", "owner_high_tech"):
            asset.pop(fact)
    once = _applied(service, body)
    for figure in ("pd", "score", "credit_line_cny", "expected_loss_cny"):
        assert once[figure] == stated[figure], figure
    assert once["valuation"]["assets"] == stated["valuation"]["assets"]
    body["assets"][0]["enterprise_id"] = "E-THIRD-PARTY"
    refused = service.post("/v1/applications", json=body)
    assert refused.status_code == 422, refused.text
    assert ("assets.owner_revenue_cny", 0) in _fields(refused)
    assert "第三人出质" in refused.json()["detail"][0]["expected"]


def test_a_trademark_with_a_patent_type_and_a_patent_without_one_are_refused(service, bodies):
    patent = next(a for a in bodies[0]["assets"] if a["asset_kind"] == "patent")
    mark = {**patent, **dict.fromkeys(PATENT_ONLY), "asset_kind": "trademark", "status_as_of": None}
    patent, mark = {**patent, "patent_type": None}, {**mark, "patent_type": "invention"}
    response = service.post("/v1/valuations", json={"assets": [patent, mark]})
    assert response.status_code == 422
    assert _fields(response) == [("assets.patent_type", 0), ("assets.patent_type", 1)]


@pytest.mark.parametrize(
    "content, expected",
    [(b'{"assets": [', "JSON"), (b"[1, 2]", "a valid dictionary"), (b"", "Field required")],
)
def test_malformed_json_is_a_422_not_a_500(service, content, expected):
    response = service.post("/v1/valuations", content=content, headers={"content-type": "application/json"})
    assert response.status_code == 422 and expected in response.json()["detail"][0]["expected"]


def test_a_body_that_is_not_json_says_where_and_why_it_stops_being_json(service):
    response = service.post(
        "/v1/valuations", content=b'{"assets": 1,, }', headers={"content-type": "application/json"}
    )
    (problem,) = response.json()["detail"]
    assert (problem["field"], problem["row"], problem["expected"]) == ("body", None, "a JSON object")
    assert "double quotes" in problem["got"] and "at character" in problem["got"]


@pytest.mark.parametrize(
    "changes, field, message",
    [
        ({"is_valid": 0.5}, "is_valid", "0 or 1 (a yes/no flag)"),
        ({"claims": 2.5}, "claims", "a whole number from 0 to 1,000,000 (a count)"),
        ({"claims": 3, "independent_claims": 4}, "independent_claims", "at most the number of claims (3)"),
        ({"is_valid": 1, "is_pending": 1}, "is_pending", "not both"),
        ({"nice_class": 9}, "nice_class", "null on a patent: nice_class is a trademark figure"),
        ({"status_as_of": "registered"}, "status_as_of", "a patent's status: one of"),
    ],
)
def test_an_asset_s_figures_must_fit_together(service, bodies, changes, field, message):
    patent = next(a for a in bodies[0]["assets"] if a["asset_kind"] == "patent")
    response = service.post("/v1/valuations", json={"assets": [{**patent, **changes}]})
    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"]
    assert (error["field"], error["row"]) == (f"assets.{field}", 0) and message in error["msg"], error


def test_a_trademark_carries_no_patent_figures(service, bodies):
    patent = next(a for a in bodies[0]["assets"] if a["asset_kind"] == "patent")
    mark = {**patent, "asset_kind": "trademark", "patent_type": None, "status_as_of": None, "nice_class": 9}
    response = service.post("/v1/valuations", json={"assets": [mark]})
    assert response.status_code == 422
    refused = {field.removeprefix("assets.") for field, _ in _fields(response)}
    assert refused == {f for f in PATENT_ONLY if patent.get(f) is not None}


@pytest.mark.parametrize(
    "content_type, status",
    [
        ("text/plain", 415),
        ("application/x-www-form-urlencoded", 415),  # curl -d without a Content-Type header
        ("application/json; charset=gbk", 415),
        ("application/json; charset=UTF-8", 201),
        ("application/problem+json", 201),
    ],
)
def test_a_body_that_is_not_json_in_utf8_is_a_415(service, bodies, content_type, status):
    content = json.dumps({"assets": bodies[0]["assets"]}).encode()
    response = service.post("/v1/valuations", content=content, headers={"content-type": content_type})
    assert response.status_code == status, response.text
    if status == 415:
        answer = response.json()
        assert content_type in answer["message"] and "application/json" in answer["message"]
        assert answer["detail"][0]["field"] == "Content-Type" and answer["detail"][0]["got"] == content_type


@pytest.mark.parametrize("word", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_in_a_body_are_a_422_naming_the_field(service, bodies, word):
    # Python's JSON reader takes these words; echoing the float back used to fail as a 500.
    content = json.dumps(_set(bodies[0], "loan.amount_cny", "<word>")).replace('"<word>"', word)
    response = service.post(
        "/v1/applications", content=content.encode(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 422, response.text
    (error,) = [e for e in response.json()["detail"] if e["field"] == "loan.amount_cny"]
    assert error["got"] == word


def test_a_long_input_is_not_echoed_whole(service, bodies):
    response = service.post("/v1/applications", json={**bodies[0], "application_id": "x" * 100_000})
    assert response.status_code == 422
    assert len(response.content) < 5_000
    (error,) = response.json()["detail"]
    assert error["field"] == "application_id" and "100,000 characters" in error["got"]


@pytest.mark.parametrize("level", [0, 1, 1.5, "0.9", None])
def test_an_interval_level_outside_0_1_is_refused(service, bodies, level):
    response = service.post("/v1/valuations", json={"assets": bodies[0]["assets"], "level": level})
    assert response.status_code == 422 and _fields(response) == [("level", None)]


@pytest.mark.parametrize(
    "path, value, field",
    [
        ("loan.guarantee_share", 0.3, "loan.guarantee_share"),  # no guarantee, yet a guarantor's share
        ("enterprise.report_date", "2099-01-01", "enterprise.report_date"),  # a report from the future
        ("enterprise.rd_staff", 10**6, "enterprise.rd_staff"),  # more R&D staff than employees
    ],
)
def test_rules_across_fields_are_refused_with_the_domain_s_problems(service, bodies, path, value, field):
    body = _set(_set(bodies[0], "loan.guarantee", "none"), path, value)
    response = service.post("/v1/applications", json=body)
    assert response.status_code == 422, response.text
    problems = response.json()["detail"]
    assert {"field", "row", "id", "expected", "got", "msg"} <= problems[0].keys()
    assert field in {p["field"] for p in problems}, problems


def test_a_nice_class_the_model_never_saw_is_valued_and_pledged(service, bodies):
    """Every Nice class 1-45 is valid: one absent from the training sample is valued as a class the model
    has not seen (SpecEncoder), not refused; a class outside 1-45 is refused by name and row."""
    seen = service.client.app.state.models.valuer.model.encoder_.categories_["nice_class"]
    unseen = next(n for n in range(1, 46) if str(n) not in seen)
    body = copy.deepcopy(bodies[0])
    body["application_id"] = None
    body["assets"].append(
        {
            **body["assets"][0],
            **dict.fromkeys(PATENT_ONLY),
            "status_as_of": None,
            "asset_id": "TM-UNSEEN",
            "asset_kind": "trademark",
            "patent_type": None,
            "nice_class": unseen,
        }
    )
    valued = service.post("/v1/valuations", json={"assets": body["assets"]})
    assert valued.status_code == 201, valued.text
    assert valued.json()["assets"][-1]["value_cny"] > 0
    decided = service.post("/v1/applications", json=body)
    assert decided.status_code == 201, decided.text
    assert decided.json()["valuation"]["assets"][-1]["asset_id"] == "TM-UNSEEN"
    body["assets"][-1]["nice_class"] = 46
    refused = service.post("/v1/valuations", json={"assets": body["assets"]})
    assert refused.status_code == 422
    [problem] = refused.json()["detail"]  # the domain's refusal: every valid class, by row
    assert (problem["field"], problem["row"]) == ("assets.nice_class", len(body["assets"]) - 1)
    assert problem["expected"].startswith("one of 1-45")


def test_a_patent_without_its_owners_patent_count_is_valued_without_an_income_value(service, bodies):
    """owner_patents_in_force is optional: without it the income approach (which splits the owner's
    revenue over its patents) has nothing to say, and the asset is still valued and pledged."""
    body = copy.deepcopy(bodies[0])
    body["application_id"] = None
    at = next(i for i, a in enumerate(body["assets"]) if a["asset_kind"] == "patent")
    body["assets"][at]["owner_patents_in_force"] = None
    valued = service.post("/v1/valuations", json={"assets": body["assets"]})
    assert valued.status_code == 201, valued.text
    asset = valued.json()["assets"][at]
    assert asset["value_cny"] > 0 and asset["income_value_cny"] is None and asset["income_ratio"] is None
    assert service.post("/v1/applications", json=body).status_code == 201


def test_an_asset_without_a_remaining_term_is_valued_but_cannot_be_pledged(service, bodies):
    assets = [dict(a) for a in bodies[0]["assets"]]
    assets[-1]["remaining_years"] = None
    assert service.post("/v1/valuations", json={"assets": assets}).status_code == 201
    response = service.post("/v1/valuations/bundle", json={"assets": assets, "loan_term_months": 12})
    assert response.status_code == 422, response.text
    problem = response.json()["detail"][0]
    assert (problem["field"], problem["row"]) == ("assets.remaining_years", len(assets) - 1)


def test_an_asset_pledged_twice_is_refused_and_nothing_is_stored(service, bodies):
    before = service.get("/v1/applications").json()["total"]
    body = {**bodies[0], "assets": [*bodies[0]["assets"], bodies[0]["assets"][0]]}
    for path, sent in (("/v1/applications", body), ("/v1/valuations/bundle", None)):
        if sent is None:
            sent = {"assets": body["assets"], "loan_term_months": 12}
        response = service.post(path, json=sent)
        assert response.status_code == 422, response.text
        (problem,) = response.json()["detail"]
        assert (problem["field"], problem["row"]) == ("assets.asset_id", len(body["assets"]) - 1)
    assert service.get("/v1/applications").json()["total"] == before


def test_a_patent_s_remaining_term_is_at_most_the_legal_term_of_its_type(service, bodies):
    assets = [dict(a) for a in bodies[0]["assets"]]
    patent = next(i for i, a in enumerate(assets) if a["asset_kind"] == "patent")
    assets[patent].update(patent_type="utility_model", remaining_years=50.0)
    response = service.post("/v1/valuations", json={"assets": assets})
    assert response.status_code == 422, response.text
    (problem,) = response.json()["detail"]
    assert (problem["field"], problem["row"], problem["id"]) == (
        "assets.remaining_years",
        patent,
        assets[patent]["asset_id"],
    )
    assert problem["expected"] == "at most the legal term of a utility_model patent (10 years)"


@pytest.mark.parametrize(
    "kind, changes, expected",
    [  # facts that contradict each other: the value would take the remaining term at its word
        (
            "patent",
            {"patent_type": "utility_model", "age_years": 14.82, "remaining_years": 5.18},
            "age_years + ",
        ),
        (
            "patent",
            {"patent_type": "invention", "age_years": 10.0, "remaining_years": 16.0},
            "5 more by term",
        ),
        ("trademark", {"remaining_years": 15.0}, "at most a registration's 10 years"),
        (
            "trademark",
            {"years_registered": 0.5, "remaining_years": 2.57, "renewals": 0},
            "years_registered + ",
        ),
        ("trademark", {"years_registered": 7.43, "remaining_years": 2.57, "renewals": 1}, "of 20 years"),
    ],
)
def test_terms_that_contradict_each_other_are_refused(service, bodies, kind, changes, expected):
    patent = dict(next(a for a in bodies[0]["assets"] if a["asset_kind"] == "patent"))
    mark = _a_mark(bodies[0])
    assets, at = [patent, mark], 0 if kind == "patent" else 1
    first = service.post("/v1/valuations", json={"assets": assets})
    assert first.status_code == 201, first.text  # as they came
    assets[at].update(changes)
    response = service.post("/v1/valuations", json={"assets": assets})
    assert response.status_code == 422, response.text
    (problem,) = response.json()["detail"]
    assert (problem["field"], problem["row"], problem["id"]) == (
        "assets.remaining_years",
        at,
        assets[at]["asset_id"],
    )
    assert expected in problem["expected"]


def test_an_application_s_asset_problems_are_listed_at_once(service, bodies):
    """The applicant's, the pledge's and the values' problems of the pledged assets come in one answer, in
    row order: a user fixes them in one pass, not three."""
    body = copy.deepcopy(bodies[0])
    first, second = body["assets"][0], body["assets"][1]
    assert first["asset_kind"] == "patent"
    first.update(is_valid=0, is_pending=1, status_as_of="pending")  # not granted: no collateral
    first.update(age_years=15.0, remaining_years=15.0, patent_type="utility_model")  # past its term
    second["owner_revenue_cny"] = body["enterprise"]["revenue_cny"] * 10  # not the report's revenue
    response = service.post("/v1/applications", json=body)
    assert response.status_code == 422, response.text
    found = [(p["field"], p["row"]) for p in response.json()["detail"]]
    assert {
        ("assets.status_as_of", 0),
        ("assets.remaining_years", 0),
        ("assets.owner_revenue_cny", 1),
    } <= set(found)
    assert [row for _, row in found] == sorted(row for _, row in found)


def test_terms_counted_in_days_over_365_are_not_refused(service, bodies):
    """A utility model filed 2015-01-10, expiring 2025-01-09, valued 2024-09-30, its age and remaining term
    counted as days/365 (Excel's actual/365): 9.7205 + 0.2849 is 10.0054 years, within the week of slack."""
    patent = dict(next(a for a in bodies[0]["assets"] if a["asset_kind"] == "patent"))
    patent.update(patent_type="utility_model", age_years=9.7205, remaining_years=0.2849)
    response = service.post("/v1/valuations", json={"assets": [patent]})
    assert response.status_code == 201, response.text


@pytest.mark.parametrize("bad", ["E0000001 ", " E0000001", "E00\x000001", "E0000001\t"])
def test_an_id_with_spaces_at_its_ends_or_control_characters_is_refused(service, bodies, bad):
    """'E1 ' and 'E1' would be two enterprises to an exact comparison (a second subsidy cap): refused."""
    body = _set(bodies[0], "enterprise.enterprise_id", bad)
    response = service.post("/v1/applications", json=body)
    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"]
    assert error["field"] == "enterprise.enterprise_id" and "an id without" in error["msg"]


@pytest.mark.parametrize(
    "kind, changes, field",
    [
        ("patent", {"status_as_of": "valid", "is_valid": 0, "is_pending": 0}, "is_valid"),
        ("patent", {"status_as_of": "pending", "is_valid": 1, "is_pending": 0}, "is_valid"),
        ("patent", {"status_as_of": "lapsed", "is_valid": 1, "is_pending": 0}, "is_valid"),
        ("trademark", {"status_as_of": "pending", "is_registered": 1}, "is_registered"),
        ("trademark", {"status_as_of": "registered", "is_registered": 0}, "is_registered"),
    ],
)
def test_a_flag_that_contradicts_the_legal_status_is_refused(service, bodies, kind, changes, field):
    asset = dict(next(a for a in bodies[0]["assets"] if a["asset_kind"] == "patent"))
    asset = {**(asset if kind == "patent" else _a_mark(bodies[0])), **changes}
    response = service.post("/v1/valuations", json={"assets": [asset]})
    assert response.status_code == 422, response.text
    errors = response.json()["detail"]
    assert (f"assets.{field}", 0) in _fields(response)
    assert all("the status and the flag disagree" in e["msg"] for e in errors)


def test_an_invention_with_its_term_compensated_is_valued(service, bodies):
    """Patent Law art. 42 compensates an invention's term for delays (a new drug's up to 5 years): 10 years
    old with 13 left is a compensated term, not a contradiction."""
    patent = dict(next(a for a in bodies[0]["assets"] if a["asset_kind"] == "patent"))
    patent.update(patent_type="invention", age_years=10.0, remaining_years=13.0)
    response = service.post("/v1/valuations", json={"assets": [patent]})
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    "ended, field",
    [
        ({"status_as_of": "lapsed", "is_valid": 0}, "assets.status_as_of"),
        ({"status_as_of": None, "is_valid": 0, "is_pending": 0}, "assets.is_valid"),
        ({"remaining_years": 0.0}, "assets.remaining_years"),
        ({"is_valid": 0, "is_pending": 1, "status_as_of": "pending"}, "assets.status_as_of"),  # not granted
    ],
)
def test_a_patent_that_has_lapsed_or_is_not_granted_cannot_be_pledged(service, bodies, ended, field):
    assets = [dict(a) for a in bodies[0]["assets"]]
    patent = next(i for i, a in enumerate(assets) if a["asset_kind"] == "patent")
    assets[patent].update(ended)
    assert service.post("/v1/valuations", json={"assets": assets}).status_code == 201  # valued, not pledged
    response = service.post("/v1/applications", json={**bodies[0], "assets": assets})
    assert response.status_code == 422, response.text
    (problem,) = response.json()["detail"]
    assert (problem["field"], problem["row"]) == (field, patent)


# --------------------------------------------------------------------------- the registry


def test_the_loaded_versions_keep_serving_when_the_registry_is_gone(service, bodies, monkeypatch, tmp_path):
    versions = service.get("/v1/models").json()["models"]
    blocker = tmp_path / "a-file-not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{blocker / 'mlflow.db'}")  # no registry there
    assert _applied(service, bodies[1])["model_versions"] == versions
    assert service.get("/v1/models").json()["models"] == versions
    assert service.client.get("/ready").status_code == 200
    # a service started now would not find its models, and says so
    with TestClient(create_app(settings_for(f"sqlite:///{tmp_path / 'records.db'}"))) as late:
        ready = late.get("/ready")
        assert ready.status_code == 503 and ready.json()["status"] == "not_ready" and ready.json()["reason"]
        assert late.get("/health").status_code == 200


def test_a_service_without_its_models_is_up_but_not_ready(store, tmp_path):
    settings = settings_for(
        f"sqlite:///{tmp_path / 'records.db'}", IPCREDIT_SCORING_URI="models:/nope@champion"
    )
    with TestClient(create_app(settings)) as client:
        key = create_keys(client.app.state.sessions, {"bank": ("Bank C", "bank")})["bank"]
        assert client.get("/health").status_code == 200
        ready = client.get("/ready")
        assert ready.status_code == 503 and "nope" in ready.json()["reason"]
        response = client.get("/v1/models", headers={"X-API-Key": key})
        assert response.status_code == 503 and "not loaded" in response.json()["message"]


def test_a_valuation_champion_that_reads_what_no_asset_carries_leaves_the_service_not_ready(
    store, tmp_path, monkeypatch
):
    """Loaded, the valuation model is checked against what a request's asset carries: a mismatch is not
    served, and /ready says which features."""
    from api import serving

    real = serving.load_model

    def stranger(uri: str, task: str):
        served = real(uri, task)
        if task != "valuation":
            return served
        spec = types.SimpleNamespace(feature_names=("claims", "appraiser_grade"))
        return dataclasses.replace(served, fitted=types.SimpleNamespace(spec=spec))

    monkeypatch.setattr(serving, "load_model", stranger)
    with TestClient(create_app(settings_for(f"sqlite:///{tmp_path / 'records.db'}"))) as client:
        ready = client.get("/ready")
        assert ready.status_code == 503
        assert ready.json()["reason"].startswith("ModelMismatch: the valuation model reads features")
        assert "appraiser_grade" in ready.json()["reason"]
