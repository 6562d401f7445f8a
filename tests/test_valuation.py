"""The value model: intervals, exact multiplicative explanations, bad rows, the train and value CLI."""

from __future__ import annotations

import dataclasses
import pickle

import mlflow
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from cli.main import app
from features.encoder import SpecEncoder
from features.errors import InvalidData
from features.spec import FeatureColumn, FeatureSpec, category_text
from features.synth import synthesize
from valuation.data import default_spec, in_force, training_table
from valuation.model import ValueModel
from valuation.train import train_valuation


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    t = training_table(synthesize(2500, seed=4))
    return t[in_force(t)].reset_index(drop=True)


@pytest.fixture(scope="module")
def trained(table):
    return train_valuation(table, default_spec(table), seed=1, params={"n_estimators": 120})


def test_held_out_coverage_is_near_nominal_per_asset_kind(trained):
    for kind in ("patent", "trademark"):
        m = trained.metrics["model"][kind]
        # within three binomial standard errors of the nominal level for this many held-out rows
        assert abs(m["coverage"] - 0.9) < 3 * np.sqrt(0.9 * 0.1 / m["n"]), (kind, m)


def test_model_beats_the_median_and_plain_lightgbm_on_held_out_rows(trained):
    model, plain = trained.metrics["model"]["all"], trained.metrics["plain_lightgbm"]["all"]
    assert model["spearman"] > 0.7
    assert model["rmse_log"] <= plain["rmse_log"]
    y = trained.test["value_cny"].to_numpy()
    median_ape = np.median(np.abs(np.median(y) / y - 1))  # the plainest baseline
    assert model["median_ape"] < median_ape


def test_wider_level_gives_wider_interval(trained):
    rows = trained.test.head(50)
    narrow = trained.valuer.model.predict_interval(rows, level=0.5)
    wide = trained.valuer.model.predict_interval(rows, level=0.95)
    assert (wide["value_low_cny"] <= narrow["value_low_cny"]).all()
    assert (wide["value_high_cny"] >= narrow["value_high_cny"]).all()
    assert np.allclose(wide["value_cny"], narrow["value_cny"])
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        trained.valuer.model.predict_interval(rows, level=1.0)


def test_a_group_unseen_in_training_takes_the_quantile_of_all_scores(trained):
    """A patent takes the quantile of its own bin (patents, its band of value; constant widths: patents);
    a kind training never saw takes the quantile of every training row's score, on both rules."""
    model = trained.valuer.model
    groups = np.array(["patent", "no such kind"], dtype=object)
    log_values = np.full(2, np.median(model.value_bands_["patent"]))
    band = int(model._bands("patent", log_values[:1])[0])
    for scores, own, widths in (
        (model.scores_, "patent", model.constant_half_width(groups, level=0.9)),
        (model.normalised_scores_, ("patent", band), model.half_width(groups, 0.9, np.ones(2), log_values)),
    ):
        pooled = np.sort(np.concatenate(list(scores.values())))
        assert widths[0] == scores[own][int(np.ceil((scores[own].size + 1) * 0.9)) - 1]
        assert widths[1] == pooled[int(np.ceil((pooled.size + 1) * 0.9)) - 1] and widths[1] != widths[0]
    # a level the calibration rows cannot support takes the largest score (an answer, not an infinity)
    largest = model.normalised_scores_["patent", band][-1]
    assert model.half_width(groups[:1], 1 - 1e-9, np.array([0.7]), log_values[:1])[0] == largest * 0.7
    with pytest.raises(ValueError, match="expected each row's difficulty sigma, shape \\(2,\\); got none"):
        model.half_width(groups, 0.9)


# --- intervals that adapt: a table whose noise grows with the value's driver -------------------------------

NOISY_SPEC = FeatureSpec(
    target="value_cny",
    id="asset_id",
    task="valuation",
    features=(
        FeatureColumn("asset_kind", "categorical"),
        FeatureColumn("quality", "numeric"),
        FeatureColumn("age", "numeric"),
    ),
)


def _noisy_table(n: int, seed: int) -> pd.DataFrame:
    """Log value rises with quality, and so does its noise (sd 0.1 to 1.0): the better assets are the
    harder to value. Trademarks are a quarter of the rows and a little noisier."""
    rng = np.random.default_rng(seed)
    kind = np.where(rng.random(n) < 0.25, "trademark", "patent")
    quality, age = rng.random(n), rng.uniform(0, 15, n)
    sd = 0.1 + 0.9 * quality + 0.2 * (kind == "trademark")
    log_value = 11 + 2 * quality - 0.05 * age + 0.5 * (kind == "trademark") + sd * rng.standard_normal(n)
    return pd.DataFrame(
        {
            "asset_id": [f"A{seed}-{i}" for i in range(n)],
            "asset_kind": kind,
            "quality": quality,
            "age": age,
            "value_cny": np.exp(log_value),
        }
    )


@pytest.fixture(scope="module")
def noisy():
    """A model fitted on one draw of the noisy table, and a held-out draw it never saw, with each held-out
    row's absolute log error, predicted log value, adaptive and constant half widths at 90%."""
    model = ValueModel(NOISY_SPEC, params={"n_estimators": 100}, random_state=2).fit(
        _noisy_table(6000, seed=1)
    )
    held_out = _noisy_table(6000, seed=2)
    X = model.encoder_.transform(held_out).to_numpy(dtype="float64")
    groups = model._groups(held_out)
    log_value = model._predict(X)
    return {
        "model": model,
        "held_out": held_out,
        "groups": groups,
        "log_value": log_value,
        "error": np.abs(np.log(held_out["value_cny"].to_numpy()) - log_value),
        "sigmas": model.difficulty(X),
        "adaptive": model.half_width(groups, 0.9, model.difficulty(X), log_value),
        "constant": model.constant_half_width(groups, 0.9),
    }


def _segments(noisy) -> dict[str, np.ndarray]:
    """Each asset kind, and each decile of the predicted value."""
    decile = pd.qcut(noisy["log_value"], 10, labels=False)
    kinds = {kind: noisy["groups"] == kind for kind in ("patent", "trademark")}
    return kinds | {f"decile {d + 1}": decile == d for d in range(10)}


def test_adaptive_intervals_cover_90_percent_of_each_kind_and_value_decile_on_held_out_rows(noisy):
    covered = noisy["error"] <= noisy["adaptive"]
    coverage = {name: covered[rows].mean() for name, rows in _segments(noisy).items()}
    assert all(0.85 <= c <= 0.95 for c in coverage.values()), coverage
    # the constant-width interval, calibrated on the same residuals, does not: too wide on the precise
    # (low) values, too narrow on the noisy (high) ones
    constant = noisy["error"] <= noisy["constant"]
    misses = [name for name, rows in _segments(noisy).items() if not 0.85 <= constant[rows].mean() <= 0.95]
    assert {"decile 1", "decile 10"} <= set(misses), misses


def test_adaptive_intervals_are_narrower_than_constant_ones_at_equal_coverage(noisy):
    """Each interval scaled, per kind, to cover exactly 90% of the held-out rows: the adaptive one is the
    narrower on average (log scale) by more than 5%; and it was the narrower before scaling too, as
    calibrated, while covering no fewer rows."""

    def mean_log_width_at_90(half: np.ndarray) -> float:
        scaled = half.copy()
        for kind in np.unique(noisy["groups"]):
            rows = noisy["groups"] == kind
            scaled[rows] *= np.quantile(noisy["error"][rows] / half[rows], 0.9)
        return float(np.mean(2 * scaled))

    adaptive, constant = mean_log_width_at_90(noisy["adaptive"]), mean_log_width_at_90(noisy["constant"])
    assert adaptive < 0.95 * constant, (adaptive, constant)
    assert np.mean(noisy["adaptive"]) < np.mean(noisy["constant"])
    assert np.mean(noisy["error"] <= noisy["adaptive"]) >= np.mean(noisy["error"] <= noisy["constant"])


def test_intervals_differ_between_assets_of_a_kind_and_follow_the_noise(noisy):
    patents = noisy["groups"] == "patent"
    half = noisy["adaptive"][patents]
    assert np.unique(half).size > 20 and half.max() > 2 * half.min()
    assert np.unique(noisy["constant"][patents]).size == 1
    quality = noisy["held_out"]["quality"].to_numpy()[patents]
    assert np.corrcoef(quality, half)[0, 1] > 0.8  # the noise sd rises with quality


def test_the_interval_is_crepes_normalised_mondrian_conformal_regressor_on_the_same_scores(noisy):
    """The model's rule, checked against crepes (the reference implementation): calibrated on the model's
    normalised scores per bin (kind and value band), crepes gives each held-out row the same half width at
    any level its calibration rows support."""
    from crepes import ConformalRegressor

    model, groups, sigmas = noisy["model"], noisy["groups"], noisy["sigmas"]
    scores = model.normalised_scores_
    calibration = np.concatenate(list(scores.values()))
    bins = np.concatenate(
        [np.full(v.size, f"{kind} {band}", dtype=object) for (kind, band), v in scores.items()]
    )
    reference = ConformalRegressor().fit(calibration, sigmas=np.ones(calibration.size), bins=bins)
    bands = np.empty(groups.size, dtype=int)
    for kind in ("patent", "trademark"):
        bands[groups == kind] = model._bands(kind, noisy["log_value"][groups == kind])
    held_out_bins = np.array(
        [f"{kind} {band}" for kind, band in zip(groups, bands, strict=True)], dtype=object
    )
    assert set(held_out_bins) == set(bins) and len(scores) == 10
    for level in (0.8, 0.9, 0.95):
        expected = reference.predict_int(np.zeros(groups.size), sigmas, held_out_bins, confidence=level)
        # crepes reads 1 - level in floating point (1 - 0.9 = 0.0999...98): where (n + 1)(1 - level) is a
        # whole number it takes the next score up; the rows of such bins are left out
        whole = [
            f"{kind} {band}"
            for (kind, band), v in scores.items()
            if abs((v.size + 1) * (1 - level) - round((v.size + 1) * (1 - level))) < 1e-6
        ]
        rows = ~np.isin(held_out_bins, whole)
        assert rows.mean() > 0.5
        got = model.half_width(groups, level, sigmas, noisy["log_value"])
        np.testing.assert_allclose(got[rows], expected[rows, 1], rtol=1e-12)


def test_every_appraisal_of_an_asset_falls_in_one_calibration_fold():
    """An asset appraised twice must not calibrate its own interval: its rows share a fold."""
    table = _noisy_table(300, seed=5)
    twice = pd.concat([table, table.head(100)], ignore_index=True)
    folds = ValueModel(NOISY_SPEC, random_state=3)._folds(twice)
    assert np.array_equal(np.sort(np.concatenate([held for _, held in folds])), np.arange(len(twice)))
    for fitted, held in folds:
        assert not set(twice["asset_id"].iloc[fitted]) & set(twice["asset_id"].iloc[held])


def test_a_model_pickled_before_adaptive_intervals_keeps_its_constant_widths(noisy):
    """A model fitted before this change has `scores_` only: it loads and values as it did, one width per
    kind, on the table and the record paths alike."""
    state = dict(noisy["model"].__dict__)
    for name in ("difficulty_model_", "difficulty_slope_", "normalised_scores_"):
        del state[name]
    old = ValueModel.__new__(ValueModel)
    old.__dict__.update(state)
    old = pickle.loads(pickle.dumps(old))
    rows = noisy["held_out"].head(40)
    out = old.predict_interval(rows)
    half = np.log(out["value_high_cny"] / out["value_cny"]).to_numpy()
    np.testing.assert_allclose(half, old.constant_half_width(old._groups(rows)), rtol=1e-12)
    assert np.unique(np.round(half, 12)).size == 2  # patents' width and trademarks'
    one = old.value_one(rows.iloc[0].to_dict(), explain=False)
    assert one["value_high_cny"] == pytest.approx(out["value_high_cny"].iat[0], rel=1e-12)


def test_explanation_factors_multiply_exactly_to_the_value(trained):
    rows = trained.test.head(20)
    values = trained.valuer.model.predict(rows)
    for value, factors in zip(values, trained.valuer.model.explain(rows), strict=True):
        product = np.prod([f["factor"] for f in factors])
        assert product == pytest.approx(value, rel=1e-9)
        assert factors[0]["feature"] == "base"


def test_bad_rows_are_reported_by_id_and_good_rows_still_valued(trained):
    rows = trained.test.head(6).reset_index(drop=True).copy()
    rows["claims"] = rows["claims"].astype(object)
    rows.loc[1, "claims"] = "many"
    rows.loc[3, "remaining_years"] = -2.0
    out, problems = trained.valuer.value(rows)
    assert len(out) == 6 and list(out["asset_id"]) == list(rows["asset_id"])
    assert {(p.row, p.field) for p in problems} == {(1, "claims"), (3, "remaining_years")}
    assert all(p.record_id == rows.loc[p.row, "asset_id"] for p in problems)
    assert out.loc[[1, 3], "value_cny"].isna().all() and out.loc[[0, 2, 4, 5], "value_cny"].notna().all()
    assert "expected a number" in out.loc[1, "error"]


def test_a_missing_required_column_is_refused_and_an_optional_one_is_missing(trained):
    with pytest.raises(InvalidData, match="owner_revenue_cny: expected a column"):
        trained.valuer.value(trained.test.drop(columns=["owner_revenue_cny"]))
    out, problems = trained.valuer.value(trained.test.head(3).drop(columns=["claims"]))
    assert not problems and out["value_cny"].notna().all()  # LightGBM routes a missing claim count


def test_a_missing_required_value_is_refused_by_row(trained):
    rows = trained.test.head(3).reset_index(drop=True).copy()
    rows.loc[1, "owner_industry"] = None
    out, problems = trained.valuer.value(rows)
    assert [(p.row, p.field) for p in problems] == [(1, "owner_industry")]
    assert "required by the feature spec" in out.loc[1, "error"]


def test_training_table_with_a_non_positive_target_is_refused(table):
    bad = table.head(200).copy()
    bad.loc[bad.index[5], "value_cny"] = 0.0
    with pytest.raises(InvalidData, match="value_cny"):
        ValueModel(default_spec(bad)).fit(bad)


def test_training_problems_name_the_table_s_own_rows_not_the_split_s(table):
    """Values are checked on the whole table before it is split: row 7 is the user's row 7."""
    bad = table.head(300).reset_index(drop=True)
    bad.loc[7, "value_cny"] = -1.0
    spec = default_spec(bad)
    with pytest.raises(InvalidData) as caught:
        train_valuation(bad, spec, seed=1, params={"n_estimators": 5})
    assert [(p.field, p.row) for p in caught.value.problems] == [("value_cny", 7)]


def test_categories_read_back_from_csv_match():
    assert list(category_text(pd.Series([9.0, 35.0, None]))) == ["9", "35", pd.NA]
    assert list(category_text(pd.Series(["9", "x"]))) == ["9", "x"]


def test_train_and_value_cli_on_a_users_flat_table(tmp_path, monkeypatch, table):
    monkeypatch.setenv("IPCREDIT_HOME", str(tmp_path / "home"))
    flat = table.head(600).copy()
    flat.to_csv(tmp_path / "assets.csv", index=False)
    default_spec(flat).to_yaml(tmp_path / "spec.yaml")
    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            "train",
            "valuation",
            "--data",
            str(tmp_path / "assets.csv"),
            "--spec",
            str(tmp_path / "spec.yaml"),
            "--name",
            "bank-a",
            "--promote",
        ],
    )
    assert result.exit_code == 0, result.output
    assert '"coverage"' in result.output and "first champion" in result.output
    result = runner.invoke(
        app,
        [
            "value",
            "--input",
            str(tmp_path / "assets.csv"),
            "--output",
            str(tmp_path / "values.parquet"),
            "--model",
            "models:/bank-a@champion",
        ],
    )
    assert result.exit_code == 0, result.output
    out = pd.read_parquet(tmp_path / "values.parquet")
    assert list(out.columns[:5]) == [
        "asset_id",
        "value_cny",
        "value_low_cny",
        "value_high_cny",
        "income_value_cny",
    ]
    assert "error" in out.columns
    assert list(out["asset_id"]) == list(flat["asset_id"])
    assert (out["value_low_cny"] <= out["value_cny"]).all() and (
        out["value_cny"] <= out["value_high_cny"]
    ).all()


def test_value_cli_with_an_unknown_model_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("IPCREDIT_HOME", str(tmp_path))
    (tmp_path / "in.csv").write_text("asset_id\nX\n")
    args = ["value", "--input", str(tmp_path / "in.csv"), "--output", str(tmp_path / "out.csv")]
    args += ["--model", "models:/nope@champion"]
    result = CliRunner().invoke(app, args)
    # no store at all: the registry is not there (exit 4), and reading it creates nothing
    assert result.exit_code == 4, result.output
    assert "is not there" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "mlflow.db").exists()
    # a store without that model: the model is not there (exit 2), named
    mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}").search_registered_models()
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "models:/nope@champion" in result.output and "Traceback" not in result.output


def test_fast_single_asset_path_agrees_with_the_batch(trained):
    rows = trained.test.head(5).reset_index(drop=True)
    batch = trained.valuer.model.predict_interval(rows)
    for i, record in enumerate(rows.to_dict("records")):
        one = trained.valuer.model.value_one(record)
        assert one["value_cny"] == pytest.approx(batch["value_cny"].iat[i], rel=1e-12)
        assert one["value_low_cny"] == pytest.approx(batch["value_low_cny"].iat[i], rel=1e-12)
        assert one["value_high_cny"] == pytest.approx(batch["value_high_cny"].iat[i], rel=1e-12)
        assert np.prod([f["factor"] for f in one["factors"]]) == pytest.approx(one["value_cny"], rel=1e-9)


@pytest.mark.parametrize(
    "change, field",
    [
        ({"claims": "many"}, "claims"),
        ({"remaining_years": -1.0}, "remaining_years"),
        ({"remaining_years": float("inf")}, "remaining_years"),
        ({"owner_industry": "shipbuilding"}, "owner_industry"),
        ({"asset_kind": "domain_name"}, "asset_kind"),
    ],
)
def test_record_and_table_checks_refuse_the_same_values(trained, change, field):
    record = {**trained.test.iloc[0].to_dict(), **change}
    _, record_problems = trained.valuer.model.encoder_.record_row(record)
    table_problems = trained.valuer.model.encoder_.row_problems(pd.DataFrame([record]))
    assert [p.field for p in record_problems] == [p.field for p in table_problems] == [field]
    with pytest.raises(InvalidData, match=field):
        trained.valuer.model.value_one(record)


def test_a_number_written_as_text_is_read_alike_by_records_and_tables(trained):
    """A CSV column with one word in it is read as text: its numbers are numbers on both paths, the word is
    refused on both."""
    encoder = trained.valuer.model.encoder_
    rows = trained.test.head(3).reset_index(drop=True).astype({"claims": object})
    rows["claims"] = [str(v) for v in rows["claims"]]
    rows.loc[1, "claims"] = "many"
    by_record = [encoder.record_row(r, i) for i, r in enumerate(rows.to_dict("records"))]
    table_problems = encoder.row_problems(rows)
    assert [(p.field, p.row, p.got) for _, found in by_record for p in found] == [("claims", 1, "many")]
    assert [(p.field, p.row, p.got) for p in table_problems] == [("claims", 1, "many")]
    np.testing.assert_array_equal(by_record[0][0], encoder.transform(rows.iloc[[0]]).to_numpy()[0])


def test_few_rows_are_encoded_and_refused_as_a_table_is(trained, monkeypatch):
    """SpecEncoder.encode takes record_row for a request's few assets and the column path for tables:
    both give the same matrix and the same problems, in the same order, ids included."""
    import features.encoder

    rows = trained.test.head(12).reset_index(drop=True).copy()
    rows["remaining_years"] = rows["remaining_years"].astype("float64")
    rows.loc[2, "remaining_years"] = -1.0
    rows.loc[5, "owner_industry"] = "shipbuilding"
    rows.loc[7, "owner_revenue_cny"] = np.nan  # required
    encoder = trained.valuer.model.encoder_
    assert len(rows) <= features.encoder.RECORD_ROWS
    X_records, problems_records = encoder.encode(rows)
    monkeypatch.setattr(features.encoder, "RECORD_ROWS", 0)
    X_table, problems_table = encoder.encode(rows)
    good = np.setdiff1d(np.arange(len(rows)), [2, 5, 7])
    np.testing.assert_array_equal(X_records[good], X_table[good])

    def described(p):  # NaN != NaN: compare a missing value by its text
        return p.field, p.row, p.record_id, p.expected, "NaN" if pd.isna(p.got) else p.got

    assert [described(p) for p in problems_records] == [described(p) for p in problems_table]
    assert {(p.field, p.row) for p in problems_table} == {
        ("remaining_years", 2),
        ("owner_industry", 5),
        ("owner_revenue_cny", 7),
    }
    # and Valuer.value gives the same figures either way
    monkeypatch.setattr(features.encoder, "RECORD_ROWS", 16)
    small, _ = trained.valuer.value(rows)
    monkeypatch.setattr(features.encoder, "RECORD_ROWS", 0)
    large, _ = trained.valuer.value(rows)
    pd.testing.assert_frame_equal(small, large)


def test_a_valid_category_training_did_not_see_is_valued_as_unseen(trained, table):
    """The spec lists every Nice class: a trademark of a class absent from the training sample is valued
    (as a category no split saw, the value of a missing class), on the record and the table paths alike;
    a value outside the levels is still refused, and without levels an unseen one is too."""
    encoder = trained.valuer.model.encoder_
    in_table = set(category_text(table["nice_class"]).dropna())  # the training rows are among them
    unseen = next(str(n) for n in range(1, 46) if str(n) not in in_table)
    mark = trained.test[trained.test["asset_kind"] == "trademark"].iloc[0].to_dict()
    values = {
        got: trained.valuer.model.value_one({**mark, "nice_class": got}, explain=False)["value_cny"]
        for got in (int(unseen), None)
    }
    assert values[int(unseen)] == values[None]
    rows = pd.DataFrame([{**mark, "nice_class": int(unseen)}] * 2 + [{**mark, "nice_class": 46}])
    for_records, problems_records = encoder.encode(rows)
    for_table, problems_table = encoder.encode(pd.concat([rows] * 10, ignore_index=True))  # the table path
    np.testing.assert_array_equal(for_records[:2], for_table[:2])
    assert [(p.field, p.row) for p in problems_records] == [("nice_class", 2)]
    assert problems_records[0].expected == "one of 1-45"  # every class, in order
    assert {p.row % 3 for p in problems_table} == {2}

    without_levels = dataclasses.replace(
        trained.valuer.spec,
        features=tuple(dataclasses.replace(f, levels=None) for f in trained.valuer.spec.features),
    )
    _, problems = SpecEncoder(without_levels).fit(table).record_row({**mark, "nice_class": int(unseen)})
    assert [p.field for p in problems] == ["nice_class"]
    assert "the values this model saw in training" in problems[0].expected  # retraining values the others


def test_a_trademark_is_not_explained_by_patent_facts(trained):
    """Features no training trademark has (claims, citations) are folded into asset_kind's factor; the
    factors still multiply to the value, and the table and one-record paths agree."""
    model = trained.valuer.model
    assert {"claims", "forward_citations"} <= set(model.inapplicable_["trademark"])
    assert "claims" not in model.inapplicable_["patent"]
    marks = trained.test[trained.test["asset_kind"] == "trademark"].head(3)
    for (_, row), factors in zip(marks.iterrows(), model.explain(marks), strict=True):
        one = model.value_one(row.to_dict())
        names = [f["feature"] for f in factors]
        assert not set(names) & set(model.inapplicable_["trademark"])
        assert "asset_kind" in names and names[0] == "base"
        assert np.prod([f["factor"] for f in factors]) == pytest.approx(one["value_cny"], rel=1e-9)
        assert [f["feature"] for f in one["factors"]] == names
        assert [f["factor"] for f in one["factors"]] == pytest.approx(
            [f["factor"] for f in factors], rel=1e-12
        )


def test_a_bank_spec_without_the_methods_columns_values_without_them(table):
    """A bank's spec that leaves out the columns of the GB/T scores and of the income approach trains
    (the table may have them: they are not the valuer's inputs once it is served) and values the rows it
    is given with those figures missing, not refused."""
    from valuation.data import EXTRA_INPUTS
    from valuation.valuer import Valuer

    full = default_spec(table)
    kept = ("asset_kind", "patent_type", "remaining_years", "claims", "nice_class", "owner_revenue_cny")
    spec = dataclasses.replace(full, features=tuple(f for f in full.features if f.name in kept))
    sample = table.head(600)
    valuer = Valuer.fit(sample, spec, model=ValueModel(spec, params={"n_estimators": 20}).fit(sample))
    assert valuer.patent_scorer is None and valuer.trademark_scorer is None
    served = sample[[c for c in sample.columns if c in {spec.id, *spec.feature_names, *EXTRA_INPUTS}]]
    out, problems = valuer.value(served.head(50))
    assert problems == [] and out["value_cny"].gt(0).all()
    assert out["total_score"].isna().all() and out["income_value_cny"].isna().all()
    assert out["cross_check_flag"].isna().all()  # nothing to compare: missing, not false
    # given every column (as the service's requests carry them), it reads only its own inputs: the same answer
    everything, _ = valuer.value(sample.head(50))
    pd.testing.assert_frame_equal(everything.drop(columns="asset_id"), out.drop(columns="asset_id"))
