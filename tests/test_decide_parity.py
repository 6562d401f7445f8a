"""The service and the command line decide alike: 1,000 applications decided by `ipcredit decide` and by
`POST /v1/applications` give equal figures, float for float, and the API and the CLI refuse the same asset,
and the same application, with the same message (the domain's rules: valuation.assets, underwriting)."""

from __future__ import annotations

import copy
import json
import math

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from test_api_support import create_keys, model_store, settings_for, store_env
from typer.testing import CliRunner

from api.main import create_app
from cli.main import app as cli
from lending.db import transaction
from lending.keys import authenticate
from lending.records import get_application
from lending.testing import scratch_url
from underwriting.documents import decision_row
from underwriting.examples import application_bodies
from valuation.assets import PATENT_ONLY

APPLICATIONS = 1000
BANK = "Bank A"
runner = CliRunner()


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    found = model_store(tmp_path_factory)
    with store_env(found.home):
        yield found


@pytest.fixture(scope="module")
def service(store, tmp_path_factory):
    with scratch_url("sqlite", tmp_path_factory.mktemp("parity-records")) as url:
        with TestClient(create_app(settings_for(url))) as client:
            keys = create_keys(
                client.app.state.sessions, {"bank": (BANK, "bank"), "evaluator": ("E", "evaluator")}
            )
            yield client, keys


@pytest.fixture(scope="module")
def book(store):
    """1,000 applications: the portfolio's, and as many again at 90% of the amount asked, each its own id."""
    made = list(application_bodies(store.portfolio, with_ids=True))
    more = []
    for body in made:
        again = copy.deepcopy(body)
        again["application_id"] = f"{body['application_id']}-B"
        again["loan"]["amount_cny"] = body["loan"]["amount_cny"] * 0.9
        more.append(again)
    chosen = (made + more)[:APPLICATIONS]
    assert len(chosen) == APPLICATIONS
    return chosen


def _same(a, b) -> bool:
    """Equal, float for float (NaN equal to NaN, missing equal to None)."""
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    missing = (None, float("nan"))
    if (a is None or (isinstance(a, float) and math.isnan(a))) and b in missing:
        return True
    return a == b


@pytest.mark.heavy
def test_a_thousand_applications_decided_by_ipcredit_decide_equal_the_service_s(service, book, tmp_path):
    client, keys = service
    ids = []
    for body in book:
        answer = client.post("/v1/applications", json=body, headers={"X-API-Key": keys["bank"]})
        assert answer.status_code == 201, answer.text
        ids.append(answer.json()["id"])
    lines = tmp_path / "book.jsonl"
    lines.write_text("".join(json.dumps(b, ensure_ascii=False) + "\n" for b in book), encoding="utf-8")
    result = runner.invoke(
        cli, ["decide", "--input", str(lines), "--output", str(tmp_path / "out.parquet"), "--bank-id", BANK]
    )
    assert result.exit_code == 0, result.output
    assert f"decided {APPLICATIONS} of {APPLICATIONS} rows" in result.output
    decided = pd.read_parquet(tmp_path / "out.parquet")
    assert list(decided["application_id"]) == [b["application_id"] for b in book]  # input order
    with transaction(client.app.state.sessions) as session:
        who = authenticate(session, keys["evaluator"])
        stored = [get_application(session, who, i) for i in ids]
        expected = [decision_row(r.result, r.explanation, "zh") for r in stored]
    columns = list(expected[0])
    assert list(decided.columns) == [*columns, "error"]
    for row, want in zip(decided.to_dict(orient="records"), expected, strict=True):
        differ = [c for c in columns if not _same(row[c], want[c])]
        assert not differ and row["error"] == "", (row["application_id"], differ)


# --------------------------------------------------------------------------- the same refusals


@pytest.fixture(scope="module")
def patent(store):
    body = next(application_bodies(store.portfolio, limit=1))
    found = next(a for a in body["assets"] if a["asset_kind"] == "patent")
    report = body["enterprise"]
    return {**found, "owner_revenue_cny": report["revenue_cny"], "owner_industry": report["industry"]}


ASSET_RULES = [
    {"is_valid": 1, "is_pending": 1},  # in force and pending
    {"claims": 3, "independent_claims": 4},  # independent claims above the claims
    {"is_valid": 2},  # a flag other than 0 or 1
    {"claims": 2.5},  # a count that is not whole
    {"remaining_share": 1.5},  # a share above 1
    {"status_as_of": "lapsed", "is_valid": 1},  # a flag the status contradicts
]


@pytest.mark.parametrize("change", ASSET_RULES)
def test_the_api_and_ipcredit_value_refuse_an_asset_with_the_same_message(service, patent, change, tmp_path):
    client, keys = service
    asset = {**patent, **change}
    answer = client.post("/v1/valuations", json={"assets": [asset]}, headers={"X-API-Key": keys["bank"]})
    assert answer.status_code == 422, answer.text
    pd.DataFrame([asset]).to_parquet(tmp_path / "asset.parquet")
    result = runner.invoke(
        cli, ["value", "--input", str(tmp_path / "asset.parquet"), "--output", str(tmp_path / "out.csv")]
    )
    assert result.exit_code == 3, result.output
    error = pd.read_csv(tmp_path / "out.csv")["error"].iloc[0]
    said = [
        f"{p['field'].removeprefix('assets.')}: expected {p['expected']}; got {p['got']!r}"
        for p in answer.json()["detail"]
    ]
    assert error == "; ".join(said)


def test_a_trademark_with_a_patent_figure_is_refused_alike(service, patent, tmp_path):
    client, keys = service
    mark = {**patent, **dict.fromkeys(PATENT_ONLY), "asset_kind": "trademark", "patent_type": None}
    mark |= {"status_as_of": None, "claims": 12.0}
    answer = client.post("/v1/valuations", json={"assets": [mark]}, headers={"X-API-Key": keys["bank"]})
    (problem,) = answer.json()["detail"]
    assert (
        problem["field"] == "assets.claims"
        and problem["expected"] == "null on a trademark: claims is a patent figure"
    )
    pd.DataFrame([mark]).to_parquet(tmp_path / "mark.parquet")
    runner.invoke(
        cli, ["value", "--input", str(tmp_path / "mark.parquet"), "--output", str(tmp_path / "o.csv")]
    )
    assert (
        pd.read_csv(tmp_path / "o.csv")["error"].iloc[0]
        == f"claims: expected {problem['expected']}; got 12.0"
    )


@pytest.mark.parametrize(
    "change",
    [
        lambda b: b["assets"][0].update(claims=3.0, independent_claims=4.0),  # an asset's rule
        lambda b: b["enterprise"].update(report_date="2099-01-01"),  # the application's
        lambda b: b["assets"][0].update(owner_revenue_cny=b["enterprise"]["revenue_cny"] * 10),  # owner facts
        lambda b: b["loan"].update(term_months=0),  # a type's bound
        lambda b: b["assets"].append(copy.deepcopy(b["assets"][0])),  # one right pledged twice
    ],
)
def test_the_api_and_ipcredit_decide_refuse_an_application_with_the_same_message(
    service, book, change, tmp_path
):
    client, keys = service
    body = copy.deepcopy(book[0])
    body["application_id"] = "REFUSED-1"
    change(body)
    answer = client.post("/v1/applications", json=body, headers={"X-API-Key": keys["bank"]})
    assert answer.status_code == 422, answer.text
    lines = tmp_path / "one.jsonl"
    lines.write_text(json.dumps(body) + "\n", encoding="utf-8")
    result = runner.invoke(cli, ["decide", "--input", str(lines), "--output", str(tmp_path / "out.csv")])
    assert result.exit_code == 3, result.output
    error = pd.read_csv(tmp_path / "out.csv")["error"].iloc[0]

    def named(p: dict) -> str:
        field = p["field"]
        if p["row"] is not None:
            field = f"assets[{p['row']}].{field.removeprefix('assets.')}"
        return f"{field}: expected {p['expected']}; got {p['got']!r}"

    assert error == "; ".join(named(p) for p in answer.json()["detail"])
