"""What differs between the valuation and the scoring model in the lifecycle: small, and all here.

A `Task` says which registered model a task's versions go to, which pyfunc wrapper it uses, which columns
besides the spec's id and features its fitted object reads, which output column is monitored for drift,
how to get the fitted object, its parameters and its SHAP values, and which gate decides promotion.

The gates compare a challenger with the champion on the same held-out rows (both re-scored through their
logged pyfunc models):

- `ValuationGate`: the challenger's median absolute percentage error may exceed the champion's by at most
  ``ape_margin``; its interval coverage must lie within ``coverage_tolerance`` of the nominal level for every
  asset kind (and overall), or within the coverage's sampling error where that is wider (``confidence``
  two-sided: z x sqrt(level x (1 - level) / n) for the kind's n held-out assets): on 100 trademarks a right
  90% interval covers 84-96% of them by chance, and refusing it there would be a coin flip.
- `ScoringGate`: the challenger's AUC may be lower than the champion's by at most ``auc_margin``, shown by
  the rows: the one-sided ``confidence`` lower bound of the paired AUC difference (DeLong's test, both
  models scoring the same rows) must be above ``-auc_margin``, so a small comparison set, which cannot tell
  two models apart, promotes nothing (a person may, with a reason); its expected
  calibration must meet the engine's criterion (scoring.validation.calibration_refused): where the rows can
  show a miscalibration (PDs exactly right would show an ECE below ``ece_visible``, 0.01), an ECE at most
  ``max(ece_bound, champion's ECE + ece_margin)``; elsewhere an ECE not distinguishable from exactly right
  PDs (p >= ``ece_alpha``; scoring.validation.chance_eces). On a small held-out book, PDs exactly right
  show an ECE above 0.02 by chance alone; refusing them would be a coin flip.

>>> ValuationGate().decide({"median_ape": 0.30, "coverage": {"patent": 0.91}, "level": 0.9},
...                        {"median_ape": 0.31, "coverage": {"patent": 0.90}, "level": 0.9}).passed
True
>>> ScoringGate().decide({"auc": 0.70, "ece": 0.01}, {"auc": 0.72, "ece": 0.01}).reasons
("AUC 0.7000 is lower than the champion's 0.7200 by more than 0.005",)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from core.settings import REGISTERED_MODELS
from features.spec import FeatureSpec
from scoring.validation import auc_difference, calibration_refused, metrics
from valuation.data import EXTRA_INPUTS

# ---------------------------------------------------------------- gates


@dataclass(frozen=True)
class Verdict:
    """A gate's answer. `decision`: "first champion", "promoted", "refused", "undecided" (the registry could
    not say who the champion is: nothing was promoted), or "not requested" (promote was False: the figures
    are logged, the aliases are not touched). `passed` is the gate's own answer."""

    decision: str
    passed: bool
    reasons: tuple[str, ...]
    challenger: dict[str, Any]
    champion: dict[str, Any] | None = None
    champion_version: str | None = None

    def summary(self) -> str:
        text = "; ".join(self.reasons) if self.reasons else "the gate's checks passed"
        return f"{self.decision}: {text}"

    def flat_figures(self) -> dict[str, float]:
        """Numeric figures as `gate.challenger.<name>` / `gate.champion.<name>` (for metrics and tags)."""
        out: dict[str, float] = {}
        for who, figures in (("challenger", self.challenger), ("champion", self.champion or {})):
            for key, value in flatten(figures).items():
                if _is_number(value):
                    out[f"gate.{who}.{key}"] = float(value)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "decision": self.decision,
            "passed": self.passed,
            "reasons": list(self.reasons),
            "champion_version": self.champion_version,
            "challenger": self.challenger,
            "champion": self.champion,
        }


@dataclass(frozen=True)
class ValuationGate:
    """Promotion rule for value models (see the module docstring); margins are absolute."""

    ape_margin: float = 0.01
    coverage_tolerance: float = 0.03
    confidence: float = 0.95

    def figures(self, rows: pd.DataFrame, output: pd.DataFrame, spec: FeatureSpec, level: float) -> dict:
        """Median APE and interval coverage (overall and per asset kind) of `output` against the observed
        values in `rows` (same order), over the rows the model valued."""
        y = rows[spec.target].to_numpy(dtype="float64")
        value = output["value_cny"].to_numpy(dtype="float64")
        low = output["value_low_cny"].to_numpy(dtype="float64")
        high = output["value_high_cny"].to_numpy(dtype="float64")
        valued = np.isfinite(value)
        kinds = (
            rows["asset_kind"].astype(str).to_numpy() if "asset_kind" in rows else np.full(len(rows), "all")
        )
        inside = (y >= low) & (y <= high)
        coverage, counts = {"all": _share(inside[valued])}, {"all": int(valued.sum())}
        for kind in sorted(set(kinds[valued])):
            mask = valued & (kinds == kind)
            coverage[kind], counts[kind] = _share(inside[mask]), int(mask.sum())
        return {
            "n": int(valued.sum()),
            "refused": int((~valued).sum()),
            "level": float(level),
            "median_ape": float(np.median(np.abs(value[valued] / y[valued] - 1)))
            if valued.any()
            else math.nan,
            "coverage": coverage,
            "coverage_n": counts,
        }

    def tolerance(self, level: float, n: int | None) -> float:
        """How far a kind's coverage may lie from `level`: `coverage_tolerance`, or the sampling error of a
        coverage on `n` assets where that is wider (unknown n: the fixed tolerance)."""
        if not n:
            return self.coverage_tolerance
        z = float(stats.norm.ppf(0.5 + self.confidence / 2))
        return max(self.coverage_tolerance, z * math.sqrt(level * (1 - level) / n))

    def decide(self, challenger: dict, champion: dict | None) -> Verdict:
        reasons = []
        level, counts = challenger["level"], challenger.get("coverage_n", {})
        for kind, share in challenger["coverage"].items():
            tolerance = self.tolerance(level, counts.get(kind))
            if not abs(share - level) <= tolerance:
                reasons.append(f"coverage {share:.3f} for {kind} is outside {level:.2f} +/- {tolerance:.2f}")
        if champion is not None:
            limit = champion["median_ape"] + self.ape_margin
            if not challenger["median_ape"] <= limit:
                reasons.append(
                    f"median APE {challenger['median_ape']:.4f} is worse than the champion's "
                    f"{champion['median_ape']:.4f} by more than {self.ape_margin}"
                )
        return Verdict("", not reasons, tuple(reasons), challenger, champion)


@dataclass(frozen=True)
class ScoringGate:
    """Promotion rule for PD models (see the module docstring)."""

    auc_margin: float = 0.005
    confidence: float = 0.95
    ece_bound: float = 0.02
    ece_margin: float = 0.005
    ece_alpha: float = 0.05
    ece_visible: float = 0.01
    bins: int = 10

    def figures(
        self, rows: pd.DataFrame, output: pd.DataFrame, spec: FeatureSpec, level: float | None
    ) -> dict:
        """AUC, ECE and the other validation metrics of the output's `pd` against the observed defaults."""
        pd_ = output["pd"].to_numpy(dtype="float64")
        scored = np.isfinite(pd_)
        y = rows[spec.target].to_numpy(dtype="float64")
        figures = metrics(y[scored], pd_[scored], bins=self.bins)
        return {
            **{k: float(v) for k, v in figures.items()},
            "n": int(scored.sum()),
            "refused": int((~scored).sum()),
        }

    def paired(
        self, rows: pd.DataFrame, challenger: pd.DataFrame, champion: pd.DataFrame, spec: FeatureSpec
    ) -> dict:
        """The challenger's AUC minus the champion's on the same rows (both scored), with DeLong's standard
        error and one-sided 95% lower bound (scoring.validation.auc_difference)."""
        new, old = (out["pd"].to_numpy(dtype="float64") for out in (challenger, champion))
        scored = np.isfinite(new) & np.isfinite(old)
        y = rows[spec.target].to_numpy(dtype="float64")[scored]
        figures = auc_difference(y, new[scored], old[scored], self.confidence)
        return {
            "auc_difference": figures["difference"],
            "auc_difference_standard_error": figures["standard_error"],
            "auc_difference_low": figures["low"],
        }

    def decide(self, challenger: dict, champion: dict | None) -> Verdict:
        reasons = []
        ece_limit = (
            self.ece_bound if champion is None else max(self.ece_bound, champion["ece"] + self.ece_margin)
        )
        refused = calibration_refused(
            challenger["ece"],
            challenger.get("ece_chance", math.nan),
            challenger.get("ece_p_value", 0.0),
            ece_limit,
            self.ece_visible,
            self.ece_alpha,
        )
        if refused:
            reasons.append(refused)
        if champion is not None:
            low = challenger.get("auc_difference_low")
            if low is None:  # figures without the paired bound: the point estimates decide
                if not challenger["auc"] >= champion["auc"] - self.auc_margin:
                    reasons.append(
                        f"AUC {challenger['auc']:.4f} is lower than the champion's {champion['auc']:.4f} "
                        f"by more than {self.auc_margin}"
                    )
            elif math.isnan(low):
                reasons.append(
                    "the held-out rows hold fewer than 2 defaults or 2 repaid loans: the models' AUCs cannot "
                    "be compared; hold out more rows, or promote by hand (`ipcredit models promote`) with a "
                    "reason"
                )
            elif low < -self.auc_margin:
                reasons.append(
                    f"AUC {challenger['auc']:.4f} against the champion's {champion['auc']:.4f} on the same "
                    f"rows: the difference could be as low as {low:+.4f} ({self.confidence:.0%} one-sided, "
                    f"DeLong), so these rows cannot show it is no worse by more than {self.auc_margin}: hold "
                    "out more rows, or promote by hand (`ipcredit models promote`) with a reason"
                )
        return Verdict("", not reasons, tuple(reasons), challenger, champion)


# ---------------------------------------------------------------- tasks


@dataclass(frozen=True)
class Task:
    name: str
    registered_model: str
    output_column: str  # the model output whose drift is monitored
    extra_inputs: tuple[str, ...]  # columns read when present, beyond the spec's id and features
    fitted_attributes: tuple[str, ...]  # where a training result keeps its fitted object
    default_gate: Callable[[], Any]
    purpose: str
    users: str
    limits: tuple[str, ...]
    shap_unit: str
    explain: Callable[[Any, pd.DataFrame], tuple[pd.DataFrame, pd.DataFrame]] = field(repr=False)
    model_params: Callable[[Any], dict] = field(repr=False)

    def fitted(self, result: Any) -> Any:
        for attribute in self.fitted_attributes:
            if hasattr(result, attribute):
                return getattr(result, attribute)
        raise TypeError(
            f"a {self.name} training result must have one of the attributes {list(self.fitted_attributes)} "
            f"(the fitted object), `metrics` and `test`; got {type(result).__name__}"
        )

    def input_columns(self, spec: FeatureSpec, table: pd.DataFrame) -> list[str]:
        """The columns a logged model reads, in order: id, features, then the extra inputs the table has."""
        named = [spec.id] if spec.id else []
        named += [*spec.feature_names, *(c for c in self.extra_inputs if c in table.columns)]
        return list(dict.fromkeys(c for c in named if c is not None and c in table.columns))

    def predict_params(self, metrics: Mapping) -> dict[str, Any]:
        """Inference parameters in the signature (with their defaults)."""
        if self.name == "valuation":
            return {"level": float(metrics.get("level", 0.9))}
        return {}


def _valuation_explain(valuer, sample: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    model = valuer.model
    contributions = model.contributions(sample).drop(columns="base")
    return contributions, model.encoder_.transform(sample)


def _valuation_params(valuer) -> dict:
    model = valuer.model
    params = {k: v for k, v in model.get_params(deep=False).items() if k not in ("spec", "params")}
    params["estimator"] = model.model_.get_params()
    params["cross_check_factor"] = valuer.cross_check_factor
    return params


def _scoring_explain(scorer, sample: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """SHAP values of a scorer: its `contributions(df)` (per feature, in score points; other columns such as
    "base" dropped), with the features coded by its `encoder_` when it has one."""
    if not hasattr(scorer, "contributions"):
        raise TypeError(f"{type(scorer).__name__} has no contributions(df): no SHAP summary can be drawn")
    names = list(scorer.spec.feature_names)
    contributions = scorer.contributions(sample)[names]
    if hasattr(scorer, "encoder_"):
        shown = scorer.encoder_.transform(sample)
    else:
        shown = sample[names].apply(lambda c: c if pd.api.types.is_numeric_dtype(c) else pd.factorize(c)[0])
    return contributions, shown


def _scoring_params(scorer) -> dict:
    """The scikit-learn parameters of the scorer (or of the estimator it wraps as `model`), and those of
    its fitted boosters under "estimator" (by name for `boosters_`; a single `model_` as is)."""
    estimator = next((e for e in (scorer, getattr(scorer, "model", None)) if hasattr(e, "get_params")), None)
    if estimator is None:
        return {}
    params = {k: v for k, v in estimator.get_params(deep=False).items() if k != "spec"}
    boosters = getattr(estimator, "boosters_", None)
    booster = getattr(estimator, "model_", None)
    if isinstance(boosters, Mapping):
        params["estimator"] = {name: b.get_params() for name, b in boosters.items()}
    elif hasattr(booster, "get_params"):
        params["estimator"] = booster.get_params()
    return params


VALUATION = Task(
    name="valuation",
    registered_model=REGISTERED_MODELS["valuation"],
    output_column="value_cny",
    extra_inputs=EXTRA_INPUTS,
    fitted_attributes=("valuer",),
    default_gate=ValuationGate,
    purpose=(
        "Estimate the market value in CNY of a patent or trademark offered as loan collateral, with a "
        "conformal interval, a relief-from-royalty cross-check and GB/T 42748 indicator scores."
    ),
    users="Credit officers and collateral appraisers of the lending bank; model validators and auditors.",
    limits=(
        "The value is a statistical estimate from comparable observed values, not a statutory appraisal "
        "report (资产评估报告); a pledge above the bank's threshold still needs a licensed appraiser.",
        "Intervals are calibrated per asset kind on out-of-fold errors; an asset unlike the training data "
        "(a new industry, an unusual patent type) may fall outside them more often than the nominal rate.",
        "A category the model never saw in training is refused with a reason, unless the spec lists it among "
        "the feature's valid levels (the built-in spec lists every Nice class, IPC section and industry): it "
        "is then valued as a category no split names, with its kind's interval, not widened for it.",
    ),
    shap_unit="SHAP value (log of value in CNY)",
    explain=_valuation_explain,
    model_params=_valuation_params,
)

SCORING = Task(
    name="scoring",
    registered_model=REGISTERED_MODELS["scoring"],
    output_column="pd",
    extra_inputs=(),
    fitted_attributes=("scorer", "model"),
    default_gate=ScoringGate,
    purpose=(
        "Estimate the 12-month probability of default of an IP-pledge loan application, with a score, a "
        "grade and the reasons that lowered the score."
    ),
    users="Credit officers and risk managers of the lending bank; model validators and auditors.",
    limits=(
        "PDs are calibrated to the default rate of the training book; a book with a different default rate "
        "or a different applicant mix needs recalibration (watch the drift report).",
        "The score supports, and does not replace, the credit officer's decision.",
        "A category the model never saw in training is refused with a reason, unless the spec lists it among "
        "the feature's valid levels (the built-in spec lists every industry): it is then scored as a "
        "category no split names.",
    ),
    shap_unit="SHAP value (score points)",
    explain=_scoring_explain,
    model_params=_scoring_params,
)

TASKS: dict[str, Task] = {t.name: t for t in (VALUATION, SCORING)}


def get_task(name: str) -> Task:
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"task must be one of {sorted(TASKS)}; got {name!r}") from None


# ---------------------------------------------------------------- helpers


def flatten(d: Mapping, prefix: str = "") -> dict[str, Any]:
    """Nested mappings as dotted keys.

    >>> flatten({"model": {"all": {"n": 3}}, "level": 0.9})
    {'model.all.n': 3, 'level': 0.9}
    """
    out: dict[str, Any] = {}
    for key, value in d.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)


def _share(mask: np.ndarray) -> float:
    return float(mask.mean()) if mask.size else math.nan
