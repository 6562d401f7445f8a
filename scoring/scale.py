"""From a 12-month PD to a score, a grade and a recommendation: the conventions of domain.md section 7.

Points-to-double-odds scaling. With odds = good : bad = (1 - PD) / PD,

    score  = offset + factor * ln(odds)
    factor = pdo / ln 2                      (every `pdo` points the odds double)
    offset = base_points - factor * ln(base_odds)   (odds of `base_odds` : 1 score `base_points`)

so one unit of PD log-odds (logit PD = -ln odds) is worth ``points_per_logit = -factor`` points.
The defaults (600 points at odds 50:1, 20 points to double the odds) give factor 28.854 and offset
487.123: a PD of 2% (odds 49:1) scores 599.4, a PD of 1% scores 619.7, a PD of 0.03% scores 721.2.

Before scaling, a PD is held within [pd_floor, 1 - pd_floor]. The floor, 0.03%, is the Basel
foundation-IRB PD floor (domain.md section 7): no borrower is reported as safer than that, and no
score exceeds the floor's (721.2 with the defaults). The matching cap at 1 - pd_floor only keeps
the score finite: a PD of exactly 1 would score minus infinity.

The scale is a parameter of every scoring model, so it is stored with the model and a reloaded
model scores the same.

>>> scale = ScoreScale()
>>> round(scale.factor, 3), round(scale.offset, 3)
(28.854, 487.123)
>>> round(float(scale.score(1 / 51)), 6)   # odds 50:1 score the base points
600.0
>>> round(float(scale.pd_from_score(620.0)), 5)   # 20 points above 600: odds 100:1
0.0099
>>> str(grade(0.015)), str(grade(0.2))
('BB', 'C')
>>> str(DecisionPolicy().recommend(0.05))
'review'
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from features.schema import flag

# Basel foundation IRB: the PD of a corporate or bank exposure is at least 0.03% (domain.md 7).
BASEL_PD_FLOOR = 0.0003


def _array(values) -> tuple[np.ndarray, bool]:
    """Values as a float array, and whether the input was a scalar (so a scalar goes back out)."""
    array = np.asarray(values, dtype="float64")
    return array, array.ndim == 0


def _check_pd(pd: np.ndarray) -> None:
    bad = ~np.isnan(pd) & ((pd < 0) | (pd > 1))
    if bad.any():
        raise ValueError(f"a PD must lie within [0, 1]; got {pd[bad].ravel()[:5].tolist()}")


@dataclass(frozen=True)
class ScoreScale:
    """Points-to-double-odds scaling of a PD into a score (higher score = safer borrower).

    Parameters
    ----------
    base_points : the score given to odds of `base_odds` good : 1 bad.
    base_odds : good : bad odds that score `base_points` (50 means a PD of 1/51, about 1.96%).
    pdo : points that double the odds.
    pd_floor : PDs are held within [pd_floor, 1 - pd_floor] before scaling (Basel IRB floor 0.03%).
    """

    base_points: float = 600.0
    base_odds: float = 50.0
    pdo: float = 20.0
    pd_floor: float = BASEL_PD_FLOOR

    def __post_init__(self) -> None:
        problems = []
        for name in ("base_points", "base_odds", "pdo", "pd_floor"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                problems.append(f"{name} must be a finite number; got {value!r}")
        if not problems:
            if self.base_odds <= 0:
                problems.append(f"base_odds must be > 0; got {self.base_odds}")
            if self.pdo <= 0:
                problems.append(f"pdo must be > 0; got {self.pdo}")
            if not 0 < self.pd_floor < 0.5:
                problems.append(f"pd_floor must lie strictly between 0 and 0.5; got {self.pd_floor}")
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def factor(self) -> float:
        """Points per unit of ln(odds): pdo / ln 2."""
        return self.pdo / math.log(2.0)

    @property
    def offset(self) -> float:
        """The score of even odds (PD 50%): base_points - factor * ln(base_odds)."""
        return self.base_points - self.factor * math.log(self.base_odds)

    @property
    def points_per_logit(self) -> float:
        """Points per unit of the PD log-odds ln(PD / (1 - PD)): -factor (a riskier logit scores lower)."""
        return -self.factor

    def clip(self, pd):
        """PD held within [pd_floor, 1 - pd_floor]; NaN stays NaN. Refuses a PD outside [0, 1]."""
        array, scalar = _array(pd)
        _check_pd(array)
        out = np.clip(array, self.pd_floor, 1.0 - self.pd_floor)
        return float(out) if scalar else out

    def score(self, pd):
        """Score of a PD (after the floor): offset + factor * ln((1 - PD) / PD)."""
        array, scalar = _array(self.clip(pd))
        out = self.offset + self.factor * np.log((1.0 - array) / array)
        return float(out) if scalar else out

    def score_from_logit(self, logit):
        """Score of a PD log-odds without the floor: offset - factor * logit (used for exact points)."""
        array, scalar = _array(logit)
        out = self.offset - self.factor * array
        return float(out) if scalar else out

    def pd_from_score(self, score):
        """The PD a score stands for: 1 / (1 + exp((score - offset) / factor))."""
        array, scalar = _array(score)
        out = 1.0 / (1.0 + np.exp((array - self.offset) / self.factor))
        return float(out) if scalar else out

    def to_dict(self) -> dict[str, float]:
        """The four parameters, for model metadata (the derived factor and offset follow from them)."""
        return asdict(self)


# ---------------------------------------------------------------- grades


class GradeBand(NamedTuple):
    """A grade and the largest 12-month PD it holds (the band is (previous pd_max, pd_max])."""

    name: str
    pd_max: float


# Upper PD bounds for SME 12-month PDs. Each step roughly doubles the PD, like the rating agencies'
# AAA..C scale, but the bands are placed for small tech enterprises: the investment-grade bands
# (AAA..BBB) end at 1%, where the programme's tech-loan books report NPLs from well under 1% to a few
# percent (domain.md section 9), and the lowest bands separate 8-15% from everything worse.
GRADES: tuple[GradeBand, ...] = (
    GradeBand("AAA", 0.0010),
    GradeBand("AA", 0.0025),
    GradeBand("A", 0.0050),
    GradeBand("BBB", 0.0100),
    GradeBand("BB", 0.0200),
    GradeBand("B", 0.0400),
    GradeBand("CCC", 0.0800),
    GradeBand("CC", 0.1500),
    GradeBand("C", 1.0000),
)
GRADE_NAMES: tuple[str, ...] = tuple(band.name for band in GRADES)
_GRADE_BOUNDS = np.array([band.pd_max for band in GRADES[:-1]])


def grade(pd):
    """Grade of each PD: the first band whose pd_max is >= PD. NaN gets None. A scalar gives a str."""
    array, scalar = _array(pd)
    _check_pd(array)
    flat = array.ravel()
    index = np.searchsorted(_GRADE_BOUNDS, np.nan_to_num(flat, nan=0.0), side="left")
    out = np.asarray(GRADE_NAMES, dtype=object)[index]
    out[np.isnan(flat)] = None
    return out[0] if scalar else out.reshape(array.shape)


# ---------------------------------------------------------------- decisions

RECOMMENDATIONS = ("approve", "review", "decline")
RECOMMENDATION_LABELS = {
    "zh": {"approve": "批准", "review": "复核", "decline": "拒绝"},
    "en": {"approve": "approve", "review": "review", "decline": "decline"},
}


@dataclass(frozen=True)
class DecisionPolicy:
    """Cut-offs that turn a PD into a recommendation for the credit officer.

    approve when PD <= approve_max_pd; decline when PD >= decline_min_pd; review in between.
    The defaults put grades AAA..BB (PD <= 2%) in approve, B and CCC in review and CC, C in decline.

    decline_flags: yes/no features that decline an application whatever its PD, a rule of lending policy
    rather than of the model (default: an enterprise on the dishonest-debtor list, 失信被执行人, to which
    the joint-punishment rules bar new credit). The model may have seen too few such enterprises to learn
    what they mean; the rule does not depend on it.

    decline_limits: (feature, limit) pairs that decline an application whatever its PD when the feature
    is at or above the limit (default: a repayment 90 or more days overdue in the last 24 months, which
    is itself a default by the 90-days-past-due rule, and a common bar to new credit).

    review_beyond_term_cap: hold for review an application that its PD would approve when its loan term
    is beyond the bank's pledge policy's cap (valuation.pledge.PledgeAssumptions.max_term_months, 36
    months by default): a term beyond policy is an exception that an evaluator signs off, not advice to
    approve.

    A recommendation is advice: the officer approves or overrides it with a written reason.
    """

    approve_max_pd: float = 0.02
    decline_min_pd: float = 0.08
    decline_flags: tuple[str, ...] = ("dishonest_debtor",)
    decline_limits: tuple[tuple[str, float], ...] = (("max_overdue_days_24m", 90.0),)
    review_beyond_term_cap: bool = True

    def __post_init__(self) -> None:
        low, high = self.approve_max_pd, self.decline_min_pd
        if not (isinstance(low, int | float) and isinstance(high, int | float) and 0 < low < high <= 1):
            raise ValueError(
                "cut-offs must satisfy 0 < approve_max_pd < decline_min_pd <= 1; "
                f"got approve_max_pd={low!r}, decline_min_pd={high!r}"
            )
        flags = self.decline_flags
        if not (isinstance(flags, tuple) and all(isinstance(f, str) and f for f in flags)):
            raise ValueError(f"decline_flags must be a tuple of feature names; got {flags!r}")
        limits = self.decline_limits
        if not (
            isinstance(limits, tuple)
            and all(
                isinstance(pair, tuple)
                and len(pair) == 2
                and isinstance(pair[0], str)
                and pair[0]
                and isinstance(pair[1], numbers.Real)
                and not isinstance(pair[1], bool | np.bool_)
                and math.isfinite(pair[1])
                for pair in limits
            )
        ):
            raise ValueError(
                f"decline_limits must be a tuple of (feature name, number) pairs; got {limits!r}"
            )
        hold = self.review_beyond_term_cap
        if not isinstance(hold, bool):
            raise ValueError(f"review_beyond_term_cap must be True or False; got {hold!r}")

    @property
    def rule_features(self) -> tuple[str, ...]:
        """The features the decline rules read (pass their values to `recommend`)."""
        return (*self.decline_flags, *(name for name, _ in self.decline_limits))

    def to_dict(self) -> dict[str, Any]:
        """The policy as JSON values, stored with each decision so that it can be re-run as it was made.

        >>> DecisionPolicy.from_dict(DecisionPolicy().to_dict()) == DecisionPolicy()
        True
        """
        return {
            **asdict(self),
            "decline_flags": list(self.decline_flags),
            "decline_limits": [list(pair) for pair in self.decline_limits],
        }

    @classmethod
    def from_dict(cls, stored: Mapping[str, Any]) -> DecisionPolicy:
        """The policy stored with a decision; a rule it does not name was not in force then (none)."""
        return cls(
            **{
                **stored,
                "decline_flags": tuple(stored.get("decline_flags", ())),
                "decline_limits": tuple(tuple(pair) for pair in stored.get("decline_limits", ())),
                "review_beyond_term_cap": stored.get("review_beyond_term_cap", False),
            }
        )

    def held(self, recommendation: str | None, term_within_cap: bool) -> tuple[str | None, bool]:
        """(the recommendation after the hold rules, whether a hold rule applies): an approve becomes review
        when the loan term is beyond the pledge policy's cap and `review_beyond_term_cap` is set.

        >>> DecisionPolicy().held("approve", term_within_cap=False)
        ('review', True)
        >>> DecisionPolicy().held("decline", term_within_cap=False), DecisionPolicy().held("approve", True)
        (('decline', True), ('approve', False))
        """
        hold = self.review_beyond_term_cap and not term_within_cap
        return ("review" if hold and recommendation == "approve" else recommendation), hold

    def recommend(self, pd, flags: Mapping[str, Any] | None = None):
        """'approve', 'review' or 'decline' per PD (None for NaN). A scalar gives a str.
        `flags` (feature -> values, one per PD, for the `rule_features`) declines the rows where a decline
        flag is set or a decline limit reached."""
        return self.recommend_with_flags(pd, flags)[0]

    def recommend_with_flags(self, pd, flags: Mapping[str, Any] | None = None):
        """(`recommend`'s answer, `flags_set`'s answer): the recommendation and, per row, the decline rules
        (their features) that set it, read once."""
        array, scalar = _array(pd)
        _check_pd(array)
        out = np.full(array.shape, "review", dtype=object)
        out[array <= self.approve_max_pd] = "approve"
        out[array >= self.decline_min_pd] = "decline"
        declined = self.flags_set(flags, array.size)
        out[np.array([bool(f) for f in declined], dtype=bool).reshape(array.shape)] = "decline"
        out[np.isnan(array)] = None
        return (out.item() if scalar else out), declined

    def flags_set(self, flags: Mapping[str, Any] | None, n: int) -> list[list[str]]:
        """Per row, the decline rules that apply among `flags` (feature -> n values): a decline flag set
        (true or 1), a decline limit reached; a missing value sets nothing.

        >>> found = {"dishonest_debtor": [1.0, 0.0, None], "max_overdue_days_24m": [0, 95, 90]}
        >>> DecisionPolicy().flags_set(found, 3)
        [['dishonest_debtor'], ['max_overdue_days_24m'], ['max_overdue_days_24m']]
        """
        found: list[list[str]] = [[] for _ in range(n)]
        rules = [(name, flag, "decline flag") for name in self.decline_flags] + [
            (name, partial(_at_limit, limit=limit), "decline limit") for name, limit in self.decline_limits
        ]
        for name, applies, kind in rules:
            if flags is None or name not in flags:
                continue
            values = list(flags[name])
            if len(values) != n:
                raise ValueError(f"flags[{name!r}]: expected {n} values, one per PD; got {len(values)}")
            for i, value in enumerate(values):
                try:
                    if applies(value) and name not in found[i]:  # a feature both flag and limit: once
                        found[i].append(name)
                except ValueError as e:  # a dishonest debtor must not pass unseen as a "Y"
                    raise ValueError(f"{kind} {name!r} (row {i}): {e}") from None
        return found

    @staticmethod
    def label(recommendation: str, language: str = "zh") -> str:
        """The recommendation in Chinese (批准 / 复核 / 拒绝) or English."""
        if language not in RECOMMENDATION_LABELS:
            raise ValueError(f"language must be one of {list(RECOMMENDATION_LABELS)}; got {language!r}")
        if recommendation not in RECOMMENDATION_LABELS[language]:
            raise ValueError(f"recommendation must be one of {list(RECOMMENDATIONS)}; got {recommendation!r}")
        return RECOMMENDATION_LABELS[language][recommendation]


def _at_limit(value: Any, limit: float) -> bool:
    """Whether a figure is at or above a decline limit; a missing figure is not, and text is refused."""
    if value is None or value is pd.NA:
        return False
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"expected a number; got {value!r}")
    return not math.isnan(value) and value >= limit


def grade_table_markdown(scale: ScoreScale | None = None) -> str:
    """The grade bands with their PD and score ranges, as Markdown (docs/scoring-model.md prints this)."""
    scale = scale if scale is not None else ScoreScale()
    lines = ["| grade | PD above | PD up to | scores |", "| --- | --- | --- | --- |"]
    previous = scale.pd_floor
    for i, band in enumerate(GRADES):
        upper = min(band.pd_max, 1.0 - scale.pd_floor)
        above = f"{GRADES[i - 1].pd_max:.2%}" if i else f"floor {scale.pd_floor:.2%}"
        up_to = f"{band.pd_max:.2%}" if band.pd_max < 1 else "100%"
        lines.append(
            f"| {band.name} | {above} | {up_to} | {scale.score(upper):.1f} to {scale.score(previous):.1f} |"
        )
        previous = band.pd_max
    return "\n".join(lines)
