"""Validation of a scoring model on held-out data: discrimination, calibration, stability, and a report.

The measures domain.md section 7 asks for, with y the default flag (1 = default within 12 months) and p the
model's PD on the same loans::

    AUC       area under the ROC curve: the chance a random defaulter has a higher PD than a random payer
    Gini      2 AUC - 1
    KS        max over thresholds of (TPR - FPR): the largest gap between the PD distributions of
              defaulters and payers (directional: a model ranking the wrong way has KS near 0)
    Brier     mean (p - y)^2
    ECE       sum over bins b of n_b / n x |mean y_b - mean p_b|, over `bins` equal-frequency bins of PD
              (10 by default): loans sorted by PD and cut into groups of equal count (sizes differ by at
              most one; tied PDs may straddle a cut). Equal-width bins would put nearly every loan of a
              1-4% default book into the first bin.
    log loss  - mean [y ln p + (1 - y) ln(1 - p)], p clipped to [1e-15, 1 - 1e-15]

ECE by chance: even PDs exactly right show an ECE above zero on a finite sample, since each bin's defaults
are drawn by chance; on a small book that floor can exceed any useful bound (about 0.03 for 1,000 loans at a
30% default rate). `chance_eces` measures it by consistency resampling (Brocker and Smith, "Increasing the
reliability of reliability diagrams", Weather and Forecasting 22, 2007): outcomes drawn from the PDs
themselves, `CHANCE_DRAWS` times with a fixed seed, binned as the observed ones. `metrics` reports their
mean (`ece_chance`) and the share of draws at least as far off as the observed ECE (`ece_p_value`, with
the draw-count correction (k + 1) / (draws + 1)): a small p-value says the PDs are miscalibrated beyond
what chance explains; a large one says this sample cannot tell them from PDs exactly right.

Calibration per grade uses the Jeffreys test the ECB prescribes for PD back-testing (ECB instructions for
reporting the validation results of internal models, IRB): with n loans and d defaults in a grade and the
grade's mean PD q, the posterior of the true default rate under the Jeffreys prior is Beta(d + 1/2,
n - d + 1/2) and the one-sided p-value is its CDF at q, P(true rate <= q). A low p-value (below 5%) says
the observed defaults are too many for the PD: the PD is underestimated. The test does not flag a PD that is
too high (conservative). A grade without defaults is not flagged (see `calibration_by_grade`).

Stability: PSI = sum over bins (a - e) ln(a / e), with e and a the shares of the expected (training) and
actual (test or recent) values in bins cut at the expected distribution's quantiles; an empty bin gets a
share of `epsilon` (1e-4) so the logarithm is defined. Read < 0.1 stable, 0.1-0.25 watch, > 0.25 rebuild.

`validation_report` gathers all of this for several models side by side; `write_report` writes it as
HTML (Chinese headings with English in brackets; plots embedded as PNG) and as JSON with the same figures.
Plot labels are in English: Chinese glyphs need a CJK font that may not be installed, and matplotlib
warns for every missing glyph. A model name that is not plain ASCII is shown as "model k" in the plots
(its real name stays in the tables).
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from numpy.typing import ArrayLike
from scipy import stats
from sklearn.metrics import roc_auc_score, roc_curve

from features.errors import InvalidData, Problem
from features.values import json_value, plain
from scoring.scale import GRADE_NAMES

#: Keys each model's entry in `validation_report` must have.
MODEL_KEYS: tuple[str, ...] = ("y_test", "pd_test", "score_train", "score_test", "grades_test")
PSI_EPSILON = 1e-4
LOG_LOSS_CLIP = 1e-15
CHANCE_DRAWS = 400  # outcome draws for the ECE by chance: its p-value is resolved to 1/401
CHANCE_SEED = 0
REPORT_FILES = ("validation_report.html", "validation_report.json")


# ---------------------------------------------------------------------------------------------------------
# input checks


def _raw(values: Any) -> np.ndarray:
    if isinstance(values, pandas.Series | pandas.Index):
        return values.to_numpy(dtype=object).reshape(-1)
    return np.asarray(values, dtype=object).reshape(-1)


def _numeric(raw: np.ndarray) -> np.ndarray:
    out = pandas.to_numeric(pandas.Series(raw, dtype=object), errors="coerce")
    return out.to_numpy(dtype="float64", na_value=np.nan)


def _outcomes(y: ArrayLike, pd: ArrayLike, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Default flags (0/1) and PDs in [0, 1] of equal length; every bad row listed."""
    y_raw, p_raw = _raw(y), _raw(pd)
    problems: list[Problem] = []
    if y_raw.size != p_raw.size:
        problems.append(Problem("pd", f"one PD per outcome ({y_raw.size})", f"{p_raw.size} values"))
        raise InvalidData(problems, what=what)
    if y_raw.size == 0:
        raise InvalidData([Problem("y", "at least one outcome", "none")], what=what)
    y_num = _numeric(y_raw)
    problems += [
        Problem("y", "0 or 1 (1 = default)", plain(y_raw[i]), row=int(i))
        for i in np.flatnonzero(~np.isin(y_num, (0.0, 1.0)))
    ]
    p_num, pd_problems = _probabilities(p_raw)
    if problems or pd_problems:
        raise InvalidData(problems + pd_problems, what=what)
    return y_num.astype("int64"), p_num


def _probabilities(p_raw: np.ndarray) -> tuple[np.ndarray, list[Problem]]:
    p_num = _numeric(p_raw)
    return p_num, [
        Problem("pd", "a probability in [0, 1]", plain(p_raw[i]), row=int(i))
        for i in np.flatnonzero(~(np.isfinite(p_num) & (p_num >= 0) & (p_num <= 1)))
    ]


def _finite(values: ArrayLike, name: str) -> tuple[np.ndarray, list[Problem]]:
    raw = _raw(values)
    num = _numeric(raw)
    problems = [
        Problem(name, "a finite number", plain(raw[i]), row=int(i)) for i in np.flatnonzero(~np.isfinite(num))
    ]
    if raw.size == 0:
        problems.append(Problem(name, "at least one value", "none"))
    return num, problems


def _bins_problem(bins: Any) -> list[Problem]:
    ok = isinstance(bins, int | np.integer) and not isinstance(bins, bool) and bins >= 2
    return [] if ok else [Problem("bins", "an integer >= 2", bins)]


# ---------------------------------------------------------------------------------------------------------
# discrimination and calibration


def reliability_table(y: ArrayLike, pd: ArrayLike, bins: int = 10) -> pandas.DataFrame:
    """Equal-frequency bins of PD: n, mean_pd and observed default rate per bin (the reliability diagram
    and the ECE use it), and the 5th and 95th percentiles of the default rate PDs exactly right would show
    in the bin by chance (chance_low, chance_high: the consistency bars of the diagram). Fewer loans than
    bins gives one loan per bin."""
    if _bins_problem(bins):
        raise InvalidData(_bins_problem(bins), what="reliability input")
    y_, p_ = _outcomes(y, pd, "reliability input")
    return _reliability(y_, p_, bins)[0]


def _reliability(y_: np.ndarray, p_: np.ndarray, bins: int) -> tuple[pandas.DataFrame, float, np.ndarray]:
    """The reliability table, the ECE and the chance ECEs (`chance_eces`): the observed defaults and each
    set of drawn ones measured by the same formula against the same bins."""
    groups = _pd_bins(p_, bins)
    drawn, expected = _drawn_defaults(p_, groups)
    observed = np.array([y_[g].sum() for g in groups])
    sizes = np.array([g.size for g in groups])
    table = pandas.DataFrame(
        {
            "bin": np.arange(1, len(groups) + 1),
            "n": sizes,
            "mean_pd": [float(p_[g].mean()) for g in groups],
            "observed_rate": observed / sizes,
            "chance_low": np.quantile(drawn, 0.05, axis=0) / sizes,
            "chance_high": np.quantile(drawn, 0.95, axis=0) / sizes,
        }
    )
    return table, float(_eces(observed[None, :], expected, p_.size)[0]), _eces(drawn, expected, p_.size)


def _pd_bins(p_: np.ndarray, bins: int) -> list[np.ndarray]:
    """The loans' positions in equal-frequency PD bins, lowest PDs first (sizes differ by at most one)."""
    order = np.argsort(p_, kind="stable")
    return [g for g in np.array_split(order, min(bins, p_.size)) if g.size]


def _drawn_defaults(
    p_: np.ndarray, groups: list[np.ndarray], draws: int = CHANCE_DRAWS, seed: int = CHANCE_SEED
) -> tuple[np.ndarray, np.ndarray]:
    """Defaults per bin (draws x bins) of outcomes drawn from the PDs themselves, and each bin's expected
    defaults (the sum of its PDs)."""
    p_sorted = p_[np.concatenate(groups)]
    starts = np.cumsum([0] + [g.size for g in groups[:-1]])
    rng = np.random.default_rng(seed)
    chunk = max(1, 4_000_000 // p_.size)  # draws at a time: about 4 million outcomes in memory
    drawn = [
        np.add.reduceat(rng.random((min(chunk, draws - done), p_.size)) < p_sorted, starts, axis=1)
        for done in range(0, draws, chunk)
    ]
    return np.concatenate(drawn), np.add.reduceat(p_sorted, starts)


def chance_eces(
    pd: ArrayLike, bins: int = 10, draws: int = CHANCE_DRAWS, seed: int = CHANCE_SEED
) -> np.ndarray:
    """The ECEs that these PDs would show if they were exactly right: `draws` sets of outcomes drawn from
    the PDs themselves (a default with probability p), each binned as `metrics` bins the observed ones.

    >>> chance_eces([0.0, 0.0, 1.0, 1.0], bins=2, draws=3).tolist()  # certain outcomes: no chance at all
    [0.0, 0.0, 0.0]
    """
    p_raw = _raw(pd)
    p_, problems = _probabilities(p_raw)
    if p_raw.size == 0:
        problems.append(Problem("pd", "at least one PD", "none"))
    problems += _bins_problem(bins)
    if problems:
        raise InvalidData(problems, what="chance ECE input")
    drawn, expected = _drawn_defaults(p_, _pd_bins(p_, bins), draws, seed)
    return _eces(drawn, expected, p_.size)


def _eces(drawn: np.ndarray, expected: np.ndarray, n: int) -> np.ndarray:
    return np.abs(drawn - expected).sum(axis=1) / n  # sum over bins of n_b/n |rate_b - mean pd_b|


ECE_BOUND = 0.02  # the largest calibration error the engine accepts where the data can show it
ECE_VISIBLE = 0.01  # the data can show it when PDs exactly right would show an ECE below this by chance
ECE_ALPHA = 0.05  # elsewhere the ECE must be within chance of exactly right PDs at this level


def calibration_refused(
    ece: float,
    chance: float,
    p_value: float,
    bound: float = ECE_BOUND,
    visible: float = ECE_VISIBLE,
    alpha: float = ECE_ALPHA,
) -> str | None:
    """Why a calibration fails the engine's criterion, or None when it holds: an ECE at most `bound` where
    the rows can show one (the chance ECE of exactly right PDs below `visible`, as on the Polish and HMEQ
    tables and the synthetic book), and elsewhere an ECE not distinguishable from exactly right PDs
    (p >= `alpha`). Without a chance figure (NaN), the bound decides.

    >>> calibration_refused(0.015, 0.004, 0.001) is None, calibration_refused(0.03, 0.02, 0.4) is None
    (True, True)
    >>> calibration_refused(0.03, 0.004, 0.2)
    'ECE 0.0300 is above the bound 0.0200 (PDs exactly right would show 0.0040 on these rows)'
    """
    if math.isnan(chance) or chance < visible:
        if ece <= bound:
            return None
        shown = f"PDs exactly right would show {chance:.4f} on these rows"
        return f"ECE {ece:.4f} is above the bound {bound:.4f} ({shown})"
    if p_value >= alpha:
        return None
    return (
        f"ECE {ece:.4f} is beyond chance (p = {p_value:.3f}, where PDs exactly right would show "
        f"{chance:.4f} on these rows, too few to hold the bound {bound:.4f})"
    )


def metrics(y: ArrayLike, pd: ArrayLike, bins: int = 10) -> dict[str, float | int]:
    """AUC, Gini, KS, Brier score, expected calibration error (`bins` equal-frequency bins) with the ECE
    PDs exactly right would show by chance and its p-value (`chance_eces`), log loss, default rate, mean PD
    and n of a model's PDs against observed defaults. AUC, Gini and KS are NaN when the sample holds only
    one class.

    >>> m = metrics([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], bins=2)
    >>> m["auc"], m["gini"], m["ks"], round(m["ece"], 4)
    (0.75, 0.5, 0.5, 0.1875)
    """
    if _bins_problem(bins):
        raise InvalidData(_bins_problem(bins), what="metrics input")
    y_, p_ = _outcomes(y, pd, "metrics input")
    return _metrics(y_, p_, bins)[0]


def auc_difference(
    y: ArrayLike, pd_a: ArrayLike, pd_b: ArrayLike, confidence: float = 0.95
) -> dict[str, float]:
    """AUC of model a minus AUC of model b on the same outcomes, with DeLong's standard error of the
    difference (DeLong, DeLong and Clarke-Pearson 1988, paired: both models score every row) and the
    one-sided lower bound at `confidence`: a difference above `low` is what the rows can vouch for.

    >>> d = auc_difference([0, 0, 1, 1, 0, 1], [0.1, 0.2, 0.8, 0.7, 0.3, 0.9], [0.1, 0.6, 0.8, 0.2, 0.3, 0.9])
    >>> round(d["difference"], 4), round(d["standard_error"], 4), d["low"] < d["difference"]
    (0.2222, 0.2485, True)
    """
    y_, a = _outcomes(y, pd_a, "auc_difference input")
    _, b = _outcomes(y, pd_b, "auc_difference input")
    positive = y_ == 1
    m, n = int(positive.sum()), int((~positive).sum())
    if m < 2 or n < 2:
        return {"difference": math.nan, "standard_error": math.nan, "low": math.nan}
    aucs, v10, v01 = [], [], []
    for p_ in (a, b):  # the structural components of each model (Sun and Xu's ranks)
        pos, neg = p_[positive], p_[~positive]
        ranks = stats.rankdata(np.concatenate([pos, neg]))
        pos_ranks, neg_ranks = ranks[:m] - stats.rankdata(pos), ranks[m:] - stats.rankdata(neg)
        aucs.append((ranks[:m].sum() - m * (m + 1) / 2) / (m * n))
        v10.append(pos_ranks / n)  # each default: the share of repaid loans it outranks
        v01.append(1.0 - neg_ranks / m)  # each repaid loan: the share of defaults that outrank it
    s10, s01 = np.cov(np.array(v10)), np.cov(np.array(v01))
    variance = (s10[0, 0] + s10[1, 1] - 2 * s10[0, 1]) / m + (s01[0, 0] + s01[1, 1] - 2 * s01[0, 1]) / n
    difference, error = aucs[0] - aucs[1], math.sqrt(max(variance, 0.0))
    return {
        "difference": float(difference),
        "standard_error": error,
        "low": float(difference - stats.norm.ppf(confidence) * error),
    }


def _metrics(y_: np.ndarray, p_: np.ndarray, bins: int) -> tuple[dict[str, float | int], pandas.DataFrame]:
    """`metrics` of checked outcomes and PDs, with the reliability table it measured the ECE on."""
    both = 0 < y_.sum() < y_.size
    if both:
        auc = float(roc_auc_score(y_, p_))
        fpr, tpr, _ = roc_curve(y_, p_)
        ks = float(np.max(tpr - fpr))
    else:
        auc = ks = math.nan
    table, ece, by_chance = _reliability(y_, p_, bins)
    # Different defaults can give the same ECE, summed in another order: allow for rounding.
    as_far_off = int((by_chance >= ece - 1e-12).sum())
    clipped = np.clip(p_, LOG_LOSS_CLIP, 1 - LOG_LOSS_CLIP)
    log_loss = float(-np.mean(y_ * np.log(clipped) + (1 - y_) * np.log(1 - clipped)))
    summary = {
        "auc": auc,
        "gini": 2 * auc - 1,
        "ks": ks,
        "brier": float(np.mean((p_ - y_) ** 2)),
        "ece": ece,
        "ece_chance": float(by_chance.mean()),
        "ece_p_value": (as_far_off + 1) / (by_chance.size + 1),
        "log_loss": log_loss,
        "default_rate": float(y_.mean()),
        "mean_pd": float(p_.mean()),
        "n": int(y_.size),
    }
    return summary, table


def jeffreys_p_value(defaults: ArrayLike, n: ArrayLike, pd: ArrayLike) -> np.ndarray:
    """One-sided Jeffreys test p-value: P(true default rate <= pd) under Beta(defaults + 1/2,
    n - defaults + 1/2). Low values mean the PD is underestimated.

    >>> round(float(jeffreys_p_value(5, 100, 0.02)[0]), 4)
    0.0286
    """
    d = np.asarray(defaults, dtype="float64").reshape(-1)
    m = np.asarray(n, dtype="float64").reshape(-1)
    q = np.asarray(pd, dtype="float64").reshape(-1)
    return stats.beta.cdf(q, d + 0.5, m - d + 0.5)


def calibration_by_grade(
    y: ArrayLike,
    pd: ArrayLike,
    grades: ArrayLike,
    grade_order: Sequence[str] = GRADE_NAMES,
    alpha: float = 0.05,
) -> pandas.DataFrame:
    """Per grade, in `grade_order`: n, defaults, observed_rate, mean_pd, the Jeffreys p-value and
    `underestimated` (p-value < alpha and at least one default). A grade without loans has n 0, NaN rates
    and no flag. A grade not in `grade_order` is refused by row.

    A grade with no defaults is never flagged: its observed rate (0) cannot exceed its PD, yet the Jeffreys
    prior alone puts the posterior mean at 0.5 / (n + 1), so the p-value falls below 5% whenever
    n x mean PD < about 0.002 (e.g. 3 AAA loans at 0.04%). The p-value itself is reported unchanged."""
    y_, p_ = _outcomes(y, pd, "calibration input")
    g_raw = _raw(grades)
    order = list(grade_order)
    problems = []
    if g_raw.size != y_.size:
        problems.append(Problem("grades", f"one grade per outcome ({y_.size})", f"{g_raw.size} values"))
    else:
        problems += [
            Problem("grades", f"one of {order}", plain(g_raw[i]), row=int(i))
            for i, g in enumerate(g_raw)
            if g not in order
        ]
    if not (isinstance(alpha, float | int) and 0 < alpha < 1):
        problems.append(Problem("alpha", "a significance level in (0, 1)", alpha))
    if problems:
        raise InvalidData(problems, what="calibration input")
    rows = []
    for grade in order:
        mask = g_raw == grade
        n = int(mask.sum())
        d = int(y_[mask].sum())
        mean_pd = float(p_[mask].mean()) if n else math.nan
        p_value = float(jeffreys_p_value(d, n, mean_pd)[0]) if n else math.nan
        rows.append(
            {
                "grade": grade,
                "n": n,
                "defaults": d,
                "observed_rate": d / n if n else math.nan,
                "mean_pd": mean_pd,
                "p_value": p_value,
                "underestimated": bool(d > 0 and p_value < alpha),
            }
        )
    return pandas.DataFrame(rows)


def grade_flags_by_chance(grades: Sequence[Mapping], alpha: float = 0.05) -> float:
    """How often PDs exactly right would flag at least as many grades as `grades` (calibration_by_grade's
    records) flags: with nine grades each tested at 5%, one flag is no evidence by itself. Each populated
    grade's chance of a flag is exact under the binomial at its mean PD (a grade is flagged when its
    defaults make the Jeffreys p-value fall below `alpha`, as calibration_by_grade does); the number of
    flags is then a sum of independent yes/no draws, its tail computed by convolution.

    >>> rows = [{"n": 1000, "mean_pd": 0.01, "underestimated": g == 0} for g in range(8)]
    >>> 0.2 < grade_flags_by_chance(rows) < 0.4
    True
    """
    populated = [g for g in grades if g["n"]]
    flagged = sum(bool(g["underestimated"]) for g in populated)
    if not flagged:
        return 1.0
    count = np.array([1.0])  # the distribution of the number of flags so far
    for g in populated:
        n, pd_ = int(g["n"]), float(g["mean_pd"])
        d = np.arange(1, n + 1)
        flags = d[jeffreys_p_value(d, np.full(d.size, n), np.full(d.size, pd_)) < alpha]
        chance = float(stats.binom.sf(flags.min() - 1, n, pd_)) if flags.size else 0.0
        count = np.convolve(count, [1.0 - chance, chance])
    return float(count[flagged:].sum())


# ---------------------------------------------------------------------------------------------------------
# stability


def psi_table(
    expected: ArrayLike, actual: ArrayLike, bins: int = 10, epsilon: float = PSI_EPSILON
) -> pandas.DataFrame:
    """PSI per bin: lower and upper edge (bins (lower, upper], the outer ones open-ended), expected_share,
    actual_share and the bin's psi term. Edges are the expected distribution's quantiles at 1/bins,
    2/bins, ...; tied quantiles merge bins. Empty bins get a share of `epsilon`."""
    e, problems = _finite(expected, "expected")
    a, more = _finite(actual, "actual")
    problems += more + _bins_problem(bins)
    if not (isinstance(epsilon, float | int) and 0 < epsilon < 1):
        problems.append(Problem("epsilon", "a small share in (0, 1)", epsilon))
    if problems:
        raise InvalidData(problems, what="PSI input")
    inner = np.unique(np.quantile(e, np.linspace(0, 1, bins + 1)[1:-1]))
    k = inner.size + 1
    e_share = np.bincount(np.searchsorted(inner, e, side="left"), minlength=k) / e.size
    a_share = np.bincount(np.searchsorted(inner, a, side="left"), minlength=k) / a.size
    e_adj = np.where(e_share > 0, e_share, epsilon)
    a_adj = np.where(a_share > 0, a_share, epsilon)
    return pandas.DataFrame(
        {
            "lower": np.concatenate([[-np.inf], inner]),
            "upper": np.concatenate([inner, [np.inf]]),
            "expected_share": e_share,
            "actual_share": a_share,
            "psi": (a_adj - e_adj) * np.log(a_adj / e_adj),
        }
    )


def psi(expected: ArrayLike, actual: ArrayLike, bins: int = 10, epsilon: float = PSI_EPSILON) -> float:
    """Population stability index of `actual` against `expected` (see `psi_table`).

    >>> psi([1, 2, 3, 4], [1, 2, 3, 4], bins=2)
    0.0
    """
    return float(psi_table(expected, actual, bins, epsilon)["psi"].sum())


def psi_label(value: float) -> str:
    """ "stable" below 0.1, "watch" from 0.1 to 0.25, "rebuild" above 0.25 (domain.md section 7)."""
    if not (isinstance(value, float | int | np.floating | np.integer) and np.isfinite(value) and value >= 0):
        raise InvalidData([Problem("psi", "a finite number >= 0", value)], what="PSI label input")
    if value < 0.1:
        return "stable"
    return "watch" if value <= 0.25 else "rebuild"


# ---------------------------------------------------------------------------------------------------------
# the report


def _records(frame: pandas.DataFrame) -> list[dict[str, Any]]:
    return [{k: json_value(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]


def _one_model(entry: Mapping[str, Any], grade_order: Sequence[str], bins: int) -> dict[str, Any]:
    y, p = entry["y_test"], entry["pd_test"]
    y_, p_ = _outcomes(y, p, "model input")
    summary, reliability = _metrics(y_, p_, bins)
    calibration = calibration_by_grade(y, p, entry["grades_test"], grade_order)
    table = psi_table(entry["score_train"], entry["score_test"], bins)
    psi_value = float(table["psi"].sum())
    if 0 < y_.sum() < y_.size:
        fpr, tpr, _ = roc_curve(y_, p_)
    else:
        fpr = tpr = np.array([])
    train = _numeric(_raw(entry["score_train"]))
    test = _numeric(_raw(entry["score_test"]))
    edges = np.histogram_bin_edges(np.concatenate([train, test]), bins=30)
    return {
        "metrics": summary,
        "calibration_by_grade": _records(calibration),
        "psi_score": {"value": psi_value, "label": psi_label(psi_value), "table": _records(table)},
        "curves": {
            "roc": {"fpr": fpr.tolist(), "tpr": tpr.tolist()},
            "reliability": _records(reliability),
            "score_distribution": {
                "edges": edges.tolist(),
                "train_share": (np.histogram(train, edges)[0] / train.size).tolist(),
                "test_share": (np.histogram(test, edges)[0] / test.size).tolist(),
            },
        },
    }


def validation_report(
    models: Mapping[str, Mapping[str, Any]], grade_order: Sequence[str] = GRADE_NAMES, bins: int = 10
) -> dict[str, Any]:
    """The validation figures of several models on held-out data, as plain Python values (JSON-ready).

    `models` maps a model name to a mapping with y_test (0/1), pd_test, score_train, score_test and
    grades_test. Per model: metrics, calibration_by_grade (records), psi_score (value, label, table of the
    score train vs test) and curves (ROC points, reliability bins, score histograms) for the plots. Every
    problem of every model is listed in one `InvalidData`, its field prefixed with the model name.
    """
    problems: list[Problem] = []
    if not isinstance(models, Mapping) or not models:
        raise InvalidData(
            [Problem("models", "a non-empty mapping name -> model data", models)], "report input"
        )
    if _bins_problem(bins):
        raise InvalidData(_bins_problem(bins), "report input")
    out: dict[str, Any] = {}
    for name, entry in models.items():
        if not isinstance(entry, Mapping):
            problems.append(Problem(f"{name}", f"a mapping with {list(MODEL_KEYS)}", type(entry).__name__))
            continue
        missing = [k for k in MODEL_KEYS if k not in entry]
        if missing:
            problems += [Problem(f"{name}.{k}", "present", "missing") for k in missing]
            continue
        try:
            out[str(name)] = _one_model(entry, grade_order, bins)
        except InvalidData as e:
            problems += [
                Problem(f"{name}.{p.field}", p.expected, p.got, row=p.row, record_id=p.record_id)
                for p in e.problems
            ]
    if problems:
        raise InvalidData(problems, what="report input")
    return {
        "title": "模型验证报告 (Model validation report)",
        "generated_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "grade_order": list(grade_order),
        "bins": bins,
        "psi_bands": {"stable": "< 0.1", "watch": "0.1-0.25", "rebuild": "> 0.25"},
        "models": out,
    }


_HEADINGS = {
    "title": ("模型验证报告", "Model validation report"),
    "metrics": ("模型指标", "Model metrics"),
    "discrimination": ("区分能力", "Discrimination"),
    "calibration": ("校准", "Calibration"),
    "sample": ("样本", "Sample"),
    "by_grade": ("分级校准", "Calibration by grade"),
    "stability": ("稳定性", "Stability: PSI of the score, train vs test"),
    "figures": ("图表", "Figures"),
    "notes": ("说明", "Notes"),
    "metric": ("指标", "Metric"),
    "model": ("模型", "Model"),
    "label": ("结论", "Reading"),
    "roc": ("ROC 曲线", "ROC curves"),
    "reliability": ("校准曲线", "Reliability diagram"),
    "scores": ("评分分布", "Score distribution, train vs test"),
}
_METRIC_ROWS = [
    ("discrimination", "auc", ("AUC", "AUC"), "{:.4f}"),
    ("discrimination", "gini", ("基尼系数", "Gini"), "{:.4f}"),
    ("discrimination", "ks", ("KS", "KS"), "{:.4f}"),
    ("calibration", "brier", ("布里尔分数", "Brier score"), "{:.5f}"),
    ("calibration", "ece", ("期望校准误差", "Expected calibration error"), "{:.5f}"),
    ("calibration", "ece_chance", ("完全校准时的偶然误差", "ECE of PDs exactly right, by chance"), "{:.5f}"),
    ("calibration", "ece_p_value", ("校准误差 p 值", "ECE p-value (beyond chance if small)"), "{:.4f}"),
    ("calibration", "log_loss", ("对数损失", "Log loss"), "{:.5f}"),
    ("calibration", "mean_pd", ("平均 PD", "Mean PD"), "{:.2%}"),
    ("sample", "default_rate", ("违约率", "Default rate"), "{:.2%}"),
    ("sample", "n", ("样本数", "n"), "{:,d}"),
]
_GRADE_COLUMNS = [
    ("grade", ("等级", "Grade"), "{}"),
    ("n", ("样本数", "n"), "{:,d}"),
    ("defaults", ("违约数", "Defaults"), "{:,d}"),
    ("observed_rate", ("实际违约率", "Observed default rate"), "{:.2%}"),
    ("mean_pd", ("平均 PD", "Mean PD"), "{:.2%}"),
    ("p_value", ("Jeffreys p 值", "Jeffreys p-value"), "{:.4f}"),
    ("underestimated", ("PD 低估", "PD underestimated"), "{}"),
]


def _t(pair: tuple[str, str], lang: str) -> str:
    both = lang == "zh" and pair[0] != pair[1]
    return html.escape(f"{pair[0]} ({pair[1]})" if both else pair[1])


def _fmt(value: Any, pattern: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return html.escape(pattern.format(value))


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _plots(report: Mapping[str, Any]) -> dict[str, str]:
    """ROC, reliability and score-distribution figures as base64 PNG, drawn on the Agg canvas (no display,
    no pyplot global state). Labels in English (see the module docstring)."""
    models = report["models"]
    labels = {name: name if name.isascii() else f"model {k + 1}" for k, name in enumerate(models)}

    roc = Figure(figsize=(5, 5))
    FigureCanvasAgg(roc)
    ax = roc.add_subplot()
    for name, m in models.items():
        auc = m["metrics"]["auc"]
        tag = "n/a" if auc is None or not math.isfinite(auc) else f"{auc:.3f}"
        ax.plot(m["curves"]["roc"]["fpr"], m["curves"]["roc"]["tpr"], label=f"{labels[name]} (AUC {tag})")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1)
    ax.set(
        xlabel="False positive rate",
        ylabel="True positive rate",
        title="ROC curves",
        xlim=(0, 1),
        ylim=(0, 1),
    )
    ax.legend(loc="lower right")

    rel = Figure(figsize=(5, 5))
    FigureCanvasAgg(rel)
    ax = rel.add_subplot()
    top = 0.0
    for name, m in models.items():
        points = m["curves"]["reliability"]
        x = np.array([r["mean_pd"] for r in points])
        y = [r["observed_rate"] for r in points]
        low, high = (np.array([r[k] for r in points]) for k in ("chance_low", "chance_high"))
        top = max(top, *x, *y, *high)
        (line,) = ax.plot(x, y, marker="o", label=labels[name])
        # Consistency bars: where 90% of the observed rates of PDs exactly right would fall, by chance.
        ax.errorbar(
            x,
            x,
            yerr=[x - np.minimum(low, x), np.maximum(high, x) - x],
            fmt="none",
            ecolor=line.get_color(),
            alpha=0.4,
            capsize=3,
        )
    top = top * 1.05 if top > 0 else 1.0
    ax.plot([0, top], [0, top], linestyle="--", color="grey", linewidth=1, label="perfect calibration")
    ax.set(
        xlabel="Mean PD in bin",
        ylabel="Observed default rate",
        title="Reliability diagram (bars: 90% range by chance)",
        xlim=(0, top),
        ylim=(0, top),
    )
    ax.legend(loc="upper left")

    k = len(models)
    dist = Figure(figsize=(5 * k, 4))
    FigureCanvasAgg(dist)
    axes = dist.subplots(1, k, squeeze=False)[0]
    for ax, (name, m) in zip(axes, models.items(), strict=True):
        d = m["curves"]["score_distribution"]
        edges = d["edges"]
        ax.stairs(d["train_share"], edges, label="train")
        ax.stairs(d["test_share"], edges, label="test")
        psi_v = m["psi_score"]["value"]
        ax.set(xlabel="Score", ylabel="Share of loans", title=f"{labels[name]}: PSI {psi_v:.3f}")
        ax.legend()
    return {"roc": _png(roc), "reliability": _png(rel), "scores": _png(dist)}


def _html(report: Mapping[str, Any], lang: str) -> str:
    models = report["models"]
    names = list(models)
    esc = html.escape
    parts = [
        "<!DOCTYPE html>",
        f'<html lang="{"zh" if lang == "zh" else "en"}"><head><meta charset="utf-8">',
        f"<title>{_t(_HEADINGS['title'], lang)}</title>",
        "<style>body{font-family:sans-serif;margin:2em;max-width:72em}table{border-collapse:collapse;"
        "margin:1em 0}th,td{border:1px solid #bbb;padding:.3em .6em;text-align:right}th{background:#eee}"
        "td:first-child,th:first-child{text-align:left}tr.group th{text-align:left;background:#ddd}"
        ".flag{color:#b00;font-weight:bold}img{max-width:100%}</style></head><body>",
        f"<h1>{_t(_HEADINGS['title'], lang)}</h1>",
        f"<p>generated {esc(str(report.get('generated_at', '')))}; "
        f"{len(names)} model(s); {report.get('bins')} equal-frequency bins for ECE.</p>",
        f"<h2>{_t(_HEADINGS['metrics'], lang)}</h2>",
        "<table><thead><tr>",
        f"<th>{_t(_HEADINGS['metric'], lang)}</th>",
        *[f"<th>{esc(n)}</th>" for n in names],
        "</tr></thead><tbody>",
    ]
    group = None
    for section, key, label, pattern in _METRIC_ROWS:
        if section != group:
            group = section
            parts.append(
                f'<tr class="group"><th colspan="{len(names) + 1}">{_t(_HEADINGS[section], lang)}</th></tr>'
            )
        cells = "".join(f"<td>{_fmt(models[n]['metrics'][key], pattern)}</td>" for n in names)
        parts.append(f"<tr><td>{_t(label, lang)}</td>{cells}</tr>")
    parts.append(
        f'<tr class="group"><th colspan="{len(names) + 1}">{_t(_HEADINGS["stability"], lang)}</th></tr>'
    )
    cells = "".join(f"<td>{_fmt(models[n]['psi_score']['value'], '{:.4f}')}</td>" for n in names)
    parts.append(f"<tr><td>PSI</td>{cells}</tr>")
    cells = "".join(f"<td>{esc(models[n]['psi_score']['label'])}</td>" for n in names)
    parts.append(f"<tr><td>{_t(_HEADINGS['label'], lang)}</td>{cells}</tr>")
    parts.append("</tbody></table>")

    parts.append(f"<h2>{_t(_HEADINGS['by_grade'], lang)}</h2>")
    for n in names:
        parts.append(f"<h3>{esc(n)}</h3><table><thead><tr>")
        parts += [f"<th>{_t(label, lang)}</th>" for _, label, _ in _GRADE_COLUMNS]
        parts.append("</tr></thead><tbody>")
        for row in models[n]["calibration_by_grade"]:
            flag = ' class="flag"' if row["underestimated"] else ""
            cells = "".join(f"<td>{_fmt(row[key], pattern)}</td>" for key, _, pattern in _GRADE_COLUMNS)
            parts.append(f"<tr{flag}>{cells}</tr>")
        parts.append("</tbody></table>")

    parts.append(f"<h2>{_t(_HEADINGS['stability'], lang)}</h2>")
    for n in names:
        parts.append(
            f"<h3>{esc(n)}: PSI {_fmt(models[n]['psi_score']['value'], '{:.4f}')} "
            f"({esc(models[n]['psi_score']['label'])})</h3>"
            "<table><thead><tr><th>bin (lower, upper]</th><th>train share</th><th>test share</th>"
            "<th>PSI term</th></tr></thead><tbody>"
        )
        for row in models[n]["psi_score"]["table"]:
            lo = "-inf" if row["lower"] is None else f"{row['lower']:.4g}"
            hi = "inf" if row["upper"] is None else f"{row['upper']:.4g}"
            parts.append(
                f"<tr><td>({esc(lo)}, {esc(hi)}]</td><td>{row['expected_share']:.2%}</td>"
                f"<td>{row['actual_share']:.2%}</td><td>{row['psi']:.4f}</td></tr>"
            )
        parts.append("</tbody></table>")

    plots = _plots(report)
    parts.append(f"<h2>{_t(_HEADINGS['figures'], lang)}</h2>")
    for key in ("roc", "reliability", "scores"):
        parts.append(
            f"<h3>{_t(_HEADINGS[key], lang)}</h3>"
            f'<img alt="{esc(_HEADINGS[key][1])}" src="data:image/png;base64,{plots[key]}">'
        )
    parts += [
        f"<h2>{_t(_HEADINGS['notes'], lang)}</h2><ul>",
        "<li>Gini = 2 AUC - 1; KS = max (TPR - FPR); ECE over equal-frequency PD bins. The ECE by chance is "
        "the mean ECE of outcomes drawn from the PDs themselves (PDs exactly right); the ECE p-value is the "
        "share of those draws at least as far off as the observed ECE.</li>",
        "<li>Jeffreys test (ECB PD back-testing): p = P(true rate &le; mean PD) under "
        "Beta(d + 1/2, n - d + 1/2); p &lt; 5% flags an underestimated PD, except in a grade "
        "without defaults.</li>",
        "<li>PSI: &lt; 0.1 stable, 0.1-0.25 watch, &gt; 0.25 rebuild; bins from the training score's "
        "quantiles.</li>",
        "<li>Plot labels are in English: Chinese glyphs need a CJK font that may not be installed.</li>",
        "</ul></body></html>",
    ]
    return "\n".join(parts)


def write_report(report: Mapping[str, Any], folder: str | Path, lang: str = "zh") -> tuple[Path, Path]:
    """Write `report` (from `validation_report`) to `folder` as validation_report.html (headings in Chinese
    with English in brackets, or English only with lang="en"; plots embedded as base64 PNG) and
    validation_report.json (the same figures; NaN written as null). Returns (html_path, json_path)."""
    if lang not in ("zh", "en"):
        raise InvalidData(
            [Problem("lang", "'zh' (Chinese with English) or 'en'", lang)], what="report output"
        )
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    clean = json_value(report)
    html_path, json_path = folder / REPORT_FILES[0], folder / REPORT_FILES[1]
    html_path.write_text(_html(clean, lang), encoding="utf-8")
    json_path.write_text(json.dumps(clean, ensure_ascii=False, indent=2, allow_nan=False), encoding="utf-8")
    return html_path, json_path
