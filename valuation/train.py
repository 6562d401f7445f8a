"""Training the value model with held-out metrics, and valuing a batch with every bad row reported.

Held-out figures come from a split the model never saw: the stored model is the one measured.
A plain LightGBM regressor with default settings on the same features and split is measured
beside it, so a bank can see that the model is at least as accurate on its own data.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from lightgbm import LGBMRegressor
from scipy.stats import spearmanr
from sklearn.model_selection import GroupShuffleSplit, train_test_split

from features.encoder import training_encoder
from features.spec import FeatureSpec
from valuation.data import INCOME_COLUMNS
from valuation.model import ValueModel
from valuation.valuer import Valuer

log = logging.getLogger(__name__)


@dataclass
class TrainedValuation:
    valuer: Valuer
    metrics: dict
    test: pd.DataFrame  # held-out rows with predictions, for reports


def _accuracy(y: np.ndarray, value: np.ndarray) -> dict:
    return {
        "n": int(y.size),
        "median_ape": float(np.median(np.abs(value / y - 1))),
        "spearman": float(spearmanr(value, y)[0]) if y.size > 2 else float("nan"),
        "rmse_log": float(np.sqrt(np.mean((np.log(value) - np.log(y)) ** 2))),
    }


def split_by_asset(
    table: pd.DataFrame, spec: FeatureSpec, test_size: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, test) at random, every row of one asset (the spec's id) on the same side."""
    if not spec.id or spec.id not in table:
        return train_test_split(table, test_size=test_size, random_state=seed)
    splitter = GroupShuffleSplit(n_splits=1, test_size=test_size, random_state=seed)
    train_rows, test_rows = next(splitter.split(table, groups=table[spec.id].astype(str).to_numpy()))
    return table.iloc[train_rows], table.iloc[test_rows]


def train_valuation(
    table: pd.DataFrame,
    spec: FeatureSpec,
    *,
    test_size: float = 0.2,
    seed: int = 0,
    level: float = 0.9,
    params: dict | None = None,
) -> TrainedValuation:
    """Fit on a random split, measure on the rest (overall and per asset kind). An asset appraised more than
    once (pledged again, on a later loan) is held out whole or not at all: its other appraisals would tell
    the model its value."""
    # every problem, at the table's own rows, before they are split
    training_encoder(spec, table, "valuation")
    train, test = split_by_asset(table, spec, test_size, seed)
    model = ValueModel(spec, level=level, params=params, random_state=seed).fit(train)
    interval = model.predict_interval(test)
    y = test[spec.target].to_numpy(dtype="float64")
    metrics = {
        "level": level,
        "rows_train": len(train),
        "rows_test": len(test),
        "model": {},
        "plain_lightgbm": {},
    }
    groups = model._groups(test)
    for name, mask in [("all", np.ones(len(test), dtype=bool))] + [
        (g, groups == g) for g in np.unique(groups)
    ]:
        if name != "all" and (groups == "all").all():
            continue
        if mask.sum() == 0:
            continue
        low, high = interval["value_low_cny"].to_numpy()[mask], interval["value_high_cny"].to_numpy()[mask]
        m = _accuracy(y[mask], interval["value_cny"].to_numpy()[mask])
        m["coverage"] = float(np.mean((y[mask] >= low) & (y[mask] <= high)))
        m["mean_width_ratio"] = float(np.mean(high / low))  # the interval spans this factor on average
        metrics["model"][name] = m
    # The plain reference: LightGBM defaults, raw target, same features and split.
    encoder = model.encoder_
    plain = LGBMRegressor(verbose=-1, random_state=seed, n_jobs=2).fit(
        encoder.transform(train), train[spec.target].to_numpy(dtype="float64")
    )
    plain_value = np.maximum(plain.predict(encoder.transform(test)), 1.0)  # a value is positive
    metrics["plain_lightgbm"]["all"] = _accuracy(y, plain_value)
    log.info("valuation held-out: %s", metrics["model"].get("all"))
    valuer = Valuer.fit(train, spec, model=model)
    _cross_check_shares(valuer, test, groups, metrics)
    # predictions beside the observed target, never over it
    test = test.assign(**{f"predicted_{c}": interval[c].to_numpy() for c in interval.columns})
    return TrainedValuation(valuer, metrics, test)


def _cross_check_shares(valuer: Valuer, test: pd.DataFrame, groups: np.ndarray, metrics: dict) -> None:
    """The share of held-out assets of each kind whose value and income-approach value differ by more than
    the cross-check's factor (a flag an evaluator sees), where the income inputs are given."""
    if not set(INCOME_COLUMNS) <= set(test.columns):
        return
    values, _ = valuer.value(test)
    flag = values["cross_check_flag"]
    checked = flag.notna().to_numpy()
    for name in metrics["model"]:
        mask = checked & (np.ones(len(test), dtype=bool) if name == "all" else groups == name)
        if mask.any():
            metrics["model"][name]["cross_check_flagged"] = float(
                flag.to_numpy(dtype=bool, na_value=False)[mask].mean()
            )
