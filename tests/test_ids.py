"""Identifiers are one thing, one way (issue 18 items 3, 5 and 6): every id in NFKC, case-blind ids compared
by their key (features.schema.id_key), invisible and control characters refused with the character and its
position named, one right pledged under two spellings refused as pledged twice, and a key that grows with its
case (``"ß" * 33``) stored on both databases, not a 500."""

from __future__ import annotations

import copy
import json
import sys
import unicodedata

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import text
from test_api_support import application_bodies, create_keys, model_store, settings_for, store_env
from typer.testing import CliRunner

from api.main import create_app
from cli.main import app as cli
from features.errors import InvalidData
from features.schema import (
    ID_KEY_MAX_LENGTH,
    ID_MAX_LENGTH,
    KEY_GROWTH,
    Patent,
    PledgedAsset,
    id_key,
    id_problem,
    records_to_table,
    validate_table,
)
from lending.db import alembic_config, make_engine, migrate
from lending.records import is_uscc
from lending.testing import BACKENDS, scratch_url
from valuation.pledge import bundle_value

runner = CliRunner()
USCC = "91350100M000100Y43"  # a unified social credit code, its check character right

# (character, what id_problem calls it): one of each kind refused, the among them
REFUSED = [
    ("\u200b", "U+200B ZERO WIDTH SPACE, a format character"),
    ("\ufeff", "U+FEFF ZERO WIDTH NO-BREAK SPACE, a format character"),
    ("\u202e", "U+202E RIGHT-TO-LEFT OVERRIDE, a format character"),
    ("\u00ad", "U+00AD SOFT HYPHEN, a format character"),
    ("\u0085", "U+0085, a control character"),
    ("\x00", "U+0000, a control character"),
    ("\t", "U+0009, a control character"),
    ("\u2028", "U+2028 LINE SEPARATOR, a line separator"),
    ("\u2029", "U+2029 PARAGRAPH SEPARATOR, a paragraph separator"),
    ("\uffff", "U+FFFF, an unassigned character"),
    ("\U000e0001", "U+E0001 LANGUAGE TAG, a format character"),
    ("\ue000", "U+E000, a private-use character"),
    ("\udfff", "U+DFFF, a surrogate"),
]


def _asset(asset_id: str) -> dict:
    return {"asset_kind": "patent", "asset_id": asset_id}


def _refusal(model, record: dict) -> str:
    with pytest.raises(ValidationError) as refused:
        model.model_validate(record)
    (error,) = refused.value.errors()
    return error["msg"]


# --------------------------------------------------------------------------- the rule


@pytest.mark.parametrize(("character", "named"), REFUSED)
def test_an_id_with_an_invisible_or_control_character_is_refused_naming_it_and_its_position(character, named):
    message = _refusal(PledgedAsset, _asset(f"CNP{character}00000001"))
    assert f"({named}, at position 4)" in message, message
    assert "control, format, surrogate, private-use or unassigned" in message
    assert id_problem(f"{character}CNP1").endswith("at position 1)")


@pytest.mark.parametrize("spaced", [" CNP1", "CNP1 ", "\u3000CNP1", "CNP1\u00a0", "\u00a8CNP1"])
def test_an_id_with_a_space_at_either_end_is_refused_once_in_nfkc(spaced):
    # U+3000 and U+00A0 are spaces in NFKC; U+00A8 (diaeresis) is a space and a combining mark
    message = _refusal(PledgedAsset, _asset(spaced))
    assert message.startswith("Value error, an id without spaces at either end (U+0020 SPACE at position")


def test_an_id_is_kept_in_nfkc_with_its_case_and_spaces_within_it_kept():
    assert PledgedAsset(**_asset("ＣＮＰ００００１")).asset_id == "CNP00001"  # full width
    assert PledgedAsset(**_asset("e\u0301-ﬁ")).asset_id == "\u00e9-fi"  # composed; a ligature
    assert PledgedAsset(**_asset("cnp 1\u00a02")).asset_id == "cnp 1 2"
    assert PledgedAsset(**_asset("CNP00000001")).asset_id == "CNP00000001"


def test_an_id_is_at_most_64_characters_in_nfkc():
    assert PledgedAsset(**_asset("A" * ID_MAX_LENGTH)).asset_id == "A" * ID_MAX_LENGTH
    message = _refusal(PledgedAsset, _asset("\ufdfa" * 4))  # one character, 18 in NFKC
    assert message == "Value error, an id of at most 64 characters in Unicode NFKC (got 72)"
    assert "at most 64 characters" in _refusal(PledgedAsset, _asset("A" * 65))


def test_case_blind_ids_compare_by_their_key_in_nfkc_and_upper_case():
    assert id_key("cnp00000001") == id_key("CNP00000001") == "CNP00000001"
    assert id_key("ｃｎｐ1") == "CNP1" and id_key("ß" * 33) == "SS" * 33 and id_key("ẞ") == "SS"
    assert id_key("e0000001") == "E0000001"  # as revision 0004 upper-cased the stored ids


def _allowed_characters():
    return (chr(cp) for cp in range(sys.maxunicode + 1) if id_problem(f"A{chr(cp)}A") is None)


def test_every_character_s_key_is_its_own_key_and_at_most_key_growth_characters_long():
    """Over every code point an id may hold: the key is idempotent and grows at most KEY_GROWTH-fold on the
    id in NFKC, so that ID_KEY_MAX_LENGTH holds the key of any accepted id."""
    worst = 0
    for c in _allowed_characters():
        for piece in unicodedata.normalize("NFKC", c):
            key = id_key(piece)
            assert id_key(key) == key, hex(ord(c))
            worst = max(worst, len(key))
    assert worst == KEY_GROWTH and ID_KEY_MAX_LENGTH == KEY_GROWTH * ID_MAX_LENGTH


def test_random_ids_keys_fit_the_key_column(seed=7):
    allowed = np.array([c for c in _allowed_characters()], dtype=object)
    rng = np.random.default_rng(seed)
    for _ in range(2000):
        drawn = "A" + "".join(rng.choice(allowed, size=int(rng.integers(1, 62)))) + "A"
        if id_problem(drawn) is None:
            value = PledgedAsset(**_asset(drawn)).asset_id
            assert len(id_key(value)) <= ID_KEY_MAX_LENGTH and id_key(id_key(value)) == id_key(value)


def test_a_unified_social_credit_code_is_recognised_in_full_width_and_lower_case_and_refused_with_a_zwsp():
    assert is_uscc(USCC) and is_uscc(USCC.lower())
    full_width = "".join(chr(ord(c) + 0xFEE0) for c in USCC)
    assert is_uscc(PledgedAsset(asset_kind="patent", asset_id=full_width).asset_id)
    assert "U+200B" in _refusal(PledgedAsset, _asset(USCC + "\u200b"))


def test_a_table_s_ids_are_held_to_the_same_rule():
    good = Patent.model_validate(
        {
            "patent_id": "CN1",
            "enterprise_id": "E1",
            "patent_type": "invention",
            "filing_date": "2020-01-01",
            "expiry_date": "2040-01-01",
            "legal_status": "pending",
            "ipc_main": "H01M",
            "ipc_count": 1,
            "n_claims": 1,
            "n_independent_claims": 1,
            "backward_citations": 0,
            "family_size": 1,
            "family_countries": 1,
            "n_inventors": 1,
            "in_use": False,
        }
    )
    table = records_to_table([good, good.model_copy(update={"patent_id": "CN2"})], Patent)
    validate_table(table, Patent)
    table.loc[1, "enterprise_id"] = "E1\u200b"
    with pytest.raises(InvalidData) as refused:
        validate_table(table, Patent)
    (problem,) = refused.value.problems
    assert (problem.field, problem.row) == ("enterprise_id", 1)
    assert "U+200B ZERO WIDTH SPACE, a format character, at position 3" in problem.expected


# --------------------------------------------------------------------------- one right, one pledge


def _variants(asset_id: str) -> list[str]:
    """The issue's four spellings of one right."""
    return [asset_id, asset_id.lower(), f"{asset_id}\u200b", f"\ufeff{asset_id}"]


def test_one_right_under_two_cases_is_pledged_twice_in_a_bundle():
    values = {
        "asset_id": ["CNP00000001", "cnp00000001"],
        "asset_kind": ["patent", "patent"],
        "patent_type": ["invention", "invention"],
        "value_cny": [1e6, 1e6],
        "remaining_years": [10.0, 10.0],
    }
    with pytest.raises(InvalidData) as refused:
        bundle_value(values, 12)
    (problem,) = refused.value.problems
    assert (problem.field, problem.row, problem.got) == ("asset_id", 1, "cnp00000001")
    assert "patent cnp00000001 is also row 0, as CNP00000001: ids are case-blind" in problem.expected


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    found = model_store(tmp_path_factory)
    with store_env(found.home):
        yield found


@pytest.fixture(scope="module")
def bodies(store):
    return application_bodies(store, 1)


@pytest.fixture(scope="module", params=BACKENDS)
def service(request, store, tmp_path_factory):
    with scratch_url(request.param, tmp_path_factory.mktemp(f"ids-{request.param}")) as url:
        with TestClient(create_app(settings_for(url))) as client:
            keys = create_keys(client.app.state.sessions, {"bank": ("Bank A", "bank")})
            yield client, {"X-API-Key": keys["bank"]}, request.param


def _four_spellings(body: dict) -> dict:
    first = body["assets"][0]
    assets = [{**first, "asset_id": spelled} for spelled in _variants(first["asset_id"])]
    return {**copy.deepcopy(body), "application_id": None, "assets": assets}


def _problems(response) -> list[tuple[str, int, str]]:
    assert response.status_code == 422, response.text
    return [(p["field"], p["row"], p["expected"]) for p in response.json()["detail"]]


def test_four_spellings_of_one_right_are_refused_in_an_application_and_a_bundle(service, bodies):
    client, headers, _ = service
    body = _four_spellings(bodies[0])
    asset_id = body["assets"][0]["asset_id"]
    before = client.get("/v1/applications", headers=headers).json()["total"]
    for path, sent in (
        ("/v1/applications", body),
        ("/v1/valuations/bundle", {"assets": body["assets"], "loan_term_months": 12}),
    ):
        problems = _problems(client.post(path, json=sent, headers=headers))
        assert [(field, row) for field, row, _ in problems] == [("assets.asset_id", r) for r in (2, 3)]
        zwsp_at = len(asset_id) + 1
        assert f"U+200B ZERO WIDTH SPACE, a format character, at position {zwsp_at}" in problems[0][2]
        assert "U+FEFF ZERO WIDTH NO-BREAK SPACE, a format character, at position 1" in problems[1][2]
        # the two spellings left are one right: pledged twice
        twice = {**sent, "assets": sent["assets"][:2]}
        ((field, row, expected),) = _problems(client.post(path, json=twice, headers=headers))
        assert (field, row) == ("assets.asset_id", 1)
        assert f"is also row 0, as {asset_id}: ids are case-blind" in expected
    assert client.get("/v1/applications", headers=headers).json()["total"] == before


def test_an_id_with_a_zwsp_gets_no_second_subsidy_cap(service, bodies):
    client, headers, _ = service
    body = copy.deepcopy(bodies[0])
    body["enterprise"]["enterprise_id"] += "\u200b"
    problems = _problems(client.post("/v1/applications", json=body, headers=headers))
    assert [(f, r) for f, r, _ in problems] == [("enterprise.enterprise_id", None)]


def test_an_enterprise_id_whose_key_is_longer_than_it_is_stored_and_found_on_both_databases(service, bodies):
    client, headers, backend = service
    body = copy.deepcopy(bodies[0])
    body["enterprise"]["enterprise_id"] = "ß" * 33  # its key, "SS" * 33, is 66 characters
    for asset in body["assets"]:
        asset.pop("enterprise_id", None)  # the applicant's own
    answer = client.post("/v1/applications", json=body, headers=headers)
    assert answer.status_code == 201, (backend, answer.text)
    stored = answer.json()
    assert stored["request"]["enterprise"]["enterprise_id"] == "ß" * 33  # as the bank sent it
    for spelled in ("ß" * 33, "ẞ" * 33):  # the capital sharp s: the same key
        found = client.get("/v1/applications", params={"enterprise_id": spelled}, headers=headers).json()
        assert [item["id"] for item in found["items"]] == [stored["id"]]
    body["enterprise"]["enterprise_id"] = "\ufdfa" * 4  # 72 characters in NFKC
    ((field, _, expected),) = _problems(client.post("/v1/applications", json=body, headers=headers))
    assert field == "enterprise.enterprise_id" and "at most 64 characters in Unicode NFKC" in expected


# --------------------------------------------------------------------------- the command line


def test_ipcredit_value_refuses_the_invisible_spellings_as_the_api_does(service, bodies, tmp_path):
    client, headers, _ = service
    report = bodies[0]["enterprise"]
    first = {**bodies[0]["assets"][0], "owner_revenue_cny": report["revenue_cny"]}
    assets = [{**first, "asset_id": spelled} for spelled in _variants(first["asset_id"])]
    answer = client.post("/v1/valuations", json={"assets": assets}, headers=headers)
    said = {p["row"]: p for p in answer.json()["detail"]}
    assert sorted(said) == [2, 3]
    pd.DataFrame(assets).to_parquet(tmp_path / "assets.parquet")
    result = runner.invoke(
        cli, ["value", "--input", str(tmp_path / "assets.parquet"), "--output", str(tmp_path / "out.csv")]
    )
    assert result.exit_code == 3, result.output
    errors = pd.read_csv(tmp_path / "out.csv", keep_default_na=False)["error"].tolist()
    assert errors[:2] == ["", ""]  # valued one by one: no bundle counts them
    for row in (2, 3):
        assert errors[row] == f"asset_id: expected {said[row]['expected']}; got {said[row]['got']!r}"


def test_ipcredit_decide_refuses_one_right_under_four_spellings_as_the_api_does(service, bodies, tmp_path):
    client, headers, _ = service
    body = {**_four_spellings(bodies[0]), "application_id": "IDS-1"}
    said = client.post("/v1/applications", json=body, headers=headers).json()["detail"]
    lines = tmp_path / "book.jsonl"
    lines.write_text(json.dumps(body) + "\n", encoding="utf-8")
    result = runner.invoke(cli, ["decide", "--input", str(lines), "--output", str(tmp_path / "out.csv")])
    assert result.exit_code == 3, result.output
    error = pd.read_csv(tmp_path / "out.csv")["error"].iloc[0]
    assert error == "; ".join(
        f"assets[{p['row']}].asset_id: expected {p['expected']}; got {p['got']!r}" for p in said
    )


# --------------------------------------------------------------------------- the records


@pytest.mark.parametrize("backend", BACKENDS)
def test_revision_0005_rekeys_the_enterprise_ids_stored_before_it(backend, tmp_path):
    from alembic import command

    with scratch_url(backend, tmp_path) as url:
        engine = make_engine(url)
        with engine.begin() as connection:
            command.upgrade(alembic_config(connection), "0004")
            connection.execute(
                text("INSERT INTO institutions (id, name, created_at) VALUES (1, 'B', '2026-01-01')")
            )
            for i, enterprise in enumerate(["Ｅ1", "e2", "straße"]):
                connection.execute(
                    text(
                        "INSERT INTO applications (id, institution_id, status, created_at, request, result, "
                        "explanation, model_versions, enterprise_id) VALUES (:id, 1, 'pending_review', "
                        "'2026-03-01', '{}', '{}', '{}', '{}', :enterprise)"
                    ),
                    {"id": f"a{i}", "enterprise": enterprise},
                )
        migrate(engine)
        with engine.connect() as connection:
            keys = connection.execute(text("SELECT enterprise_id FROM applications ORDER BY id")).scalars()
            assert list(keys) == ["E1", "E2", "STRASSE"]
        engine.dispose()


def test_revision_0005_keys_and_lengths_are_the_schema_s():
    """The revision is self-contained (a frozen copy of the key and the lengths): they agree with the schema's
    today."""
    import importlib.util
    from pathlib import Path

    import lending

    path = Path(lending.__file__).parent / "migrations" / "versions" / "0005_id_lengths.py"
    spec = importlib.util.spec_from_file_location("revision_0005", path)
    revision = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(revision)
    assert (revision.ID_LENGTH, revision.KEY_LENGTH) == (ID_MAX_LENGTH, ID_KEY_MAX_LENGTH)
    for value in ["e1", "ｅ1", "straße", "ﬁ", "İstanbul", "ΐ", "CNP00000001"]:
        assert revision._key(value) == id_key(value)
