"""A loan decision: the score of each application and, where the table carries the loan's terms and
its pledge, the credit line, expected loss and its split, and the interest subsidy.

`decide_loans` is what `ipcredit score` writes and what the service stores: scoring.model for the
PD, score, grade and reasons, scoring.policy for the lending rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from features.errors import Problem
from features.schema import Table
from scoring.model import PDModelMixin, score_batch
from scoring.policy import (
    LendingPolicy,
    credit_line,
    expected_loss_columns,
    exposure_at_default,
    interest_subsidy,
    loss_split_columns,
)
from scoring.scale import DecisionPolicy

#: Columns a table needs for the lending figures (the scoring table of a portfolio has them all).
LOAN_COLUMNS = [
    "amount_cny",
    "pledge_value_cny",
    "liquidation_value_cny",
    "guarantee_share",
    "insurance_share",
    "annual_rate",
    "term_months",
]


def loan_terms(
    table: pd.DataFrame, pd_: np.ndarray, grades: np.ndarray, policy: LendingPolicy | None = None
) -> pd.DataFrame:
    """Credit line, EAD, LGD, expected loss and who bears it, and the first-year interest subsidy."""
    return pd.DataFrame(loan_term_columns(table, pd_, grades, policy), index=table.index)


def loan_term_columns(
    table: Table,
    pd_: np.ndarray,
    grades: np.ndarray,
    policy: LendingPolicy | None = None,
    already_granted: Mapping[Any, float] | None = None,
) -> dict[str, np.ndarray]:
    """loan_terms' columns as arrays, from a table or a mapping of column to values (one application's
    row: pandas costs one application more than the lending rules themselves). `already_granted`
    (enterprise -> CNY of subsidy granted this year; the table needs `enterprise_id`) uses up the subsidy
    cap first (scoring.policy.interest_subsidy)."""
    policy = policy or LendingPolicy()
    column = {c: np.asarray(table[c]).reshape(-1) for c in LOAN_COLUMNS}
    line = credit_line(column["amount_cny"], column["pledge_value_cny"], grades, policy=policy)
    loss, _ = expected_loss_columns(
        pd_, exposure_at_default(line, policy), column["liquidation_value_cny"], policy
    )
    split, _ = loss_split_columns(loss["el"], column["guarantee_share"], column["insurance_share"], policy)
    enterprise = np.asarray(table["enterprise_id"]).reshape(-1) if "enterprise_id" in table else None
    subsidy = interest_subsidy(
        line, column["annual_rate"], column["term_months"], enterprise, already_granted, policy=policy
    )
    return {
        "credit_line_cny": line,
        "ead_cny": loss["ead"],
        "lgd": loss["lgd"],
        "expected_loss_cny": loss["el"],
        **split,
        "interest_subsidy_cny": subsidy,
    }


def decide_loans(
    model: PDModelMixin,
    table: pd.DataFrame,
    *,
    decision: DecisionPolicy | None = None,
    lending: LendingPolicy | None = None,
    language: str = "zh",
) -> tuple[pd.DataFrame, list[Problem]]:
    """One row per input row, in input order: id, pd, score, grade, reason_codes, recommendation,
    reasons, the lending figures when the table has LOAN_COLUMNS, `error` for refused rows, and last the
    recommendation in `language` (批准 / 复核 / 拒绝; added after the others, which keep their places)."""
    table = table.reset_index(drop=True)
    out, problems = score_batch(model, table, policy=decision or DecisionPolicy(), language=language)
    if all(c in table.columns for c in LOAN_COLUMNS):
        scored = out["pd"].notna().to_numpy()
        terms = loan_terms(
            table[scored],
            out.loc[scored, "pd"].to_numpy(dtype="float64"),
            out.loc[scored, "grade"].to_numpy(),
            lending,
        )
        error = out.pop("error")
        out = out.join(terms)
        out["error"] = error
    out["recommendation_label"] = pd.Series(  # object, as `recommendation`: a refused row's is None
        [None if pd.isna(r) else DecisionPolicy.label(r, language) for r in out["recommendation"]],
        index=out.index,
        dtype=object,
    )
    return out, problems
