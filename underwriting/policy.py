"""Lending policy: credit line, expected loss, loss sharing, interest subsidy and the NPL tolerance check.

What a bank does with a score once it has one (domain.md sections 1, 6, 7 and 8). Every figure is a named
field of the frozen `LendingPolicy`, which a bank overrides with its own rules
(`LendingPolicy().override(bank_limit_cny=10_000_000, unsecured_share={"AAA": 0.6})`); each default says
where it comes from, and most are assumptions because no public source gives loan-level figures for
Chinese IP pledge loans. All functions are vectorised over arrays, pandas Series or scalars (a scalar is
repeated for every row) and refuse bad input with one `InvalidData` that lists every bad row.

Per application, with grade g, amount asked A, pledge value P, liquidation value L and PD p::

    credit line     = min(A, P + unsecured_share[g] x base, bank_limit)        base = A (default) or revenue
    EAD             = ead_share_of_line x credit line                           (1: drawn in full)
    recovery        = L x (1 - disposal_cost_rate)
    covered         = min(EAD, recovery)
    LGD             = max(lgd_floor, (lgd_secured x covered + lgd_unsecured x (EAD - covered)) / EAD)
    EL              = max(p, pd_floor) x LGD x EAD
    loss shares     guarantor g_s x EL, insurer i_s x EL, then of the rest R = EL (1 - g_s - i_s):
                    fund fund_share x R, scheme insurer scheme_insurer_share x R,
                    appraiser appraiser_share x R, bank the remainder (the shares add up to EL)
    subsidy         = min(subsidy_share x first-year interest, what is left of subsidy_cap_cny for the
                    enterprise this year)

The pledge and liquidation values come from `valuation.pledge` (`bundle_value`); `from_bundles` reads them
off a list of `BundleValuation`s, so nothing here re-computes a disposal discount.
"""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas
from numpy.typing import ArrayLike

from features.errors import InvalidData, Problem
from features.schema import Table
from features.transformers import numbers_or_nan
from features.values import plain
from scoring.scale import GRADE_NAMES
from valuation.pledge import ROUTES, BundleValuation

#: Unsecured bases a policy may use for the unsecured part of the credit line.
UNSECURED_BASES: tuple[str, ...] = ("amount_asked", "revenue")

#: Risk-sharing schemes (domain.md section 8). Shares are of the loss left after the guarantor and the
#: application's own insurance have paid; the bank keeps what the scheme does not assign.
SHARING_PRESETS: dict[str, dict[str, float]] = {
    # Ezhou has no published split yet: assumption, the Zhuhai split (bank 60% / fund 40%).
    "ezhou": {"fund_share": 0.40, "scheme_insurer_share": 0.0, "appraiser_share": 0.0},
    # Zhongshan fund : bank : insurer : appraiser = 54 : 26 : 16 : 4.
    "zhongshan": {"fund_share": 0.54, "scheme_insurer_share": 0.16, "appraiser_share": 0.04},
    # Zhuhai bank 60% / fund 40%.
    "zhuhai": {"fund_share": 0.40, "scheme_insurer_share": 0.0, "appraiser_share": 0.0},
    # Shenzhen bank : fund = 1 : 1.
    "shenzhen": {"fund_share": 0.50, "scheme_insurer_share": 0.0, "appraiser_share": 0.0},
}

_FLOAT_SLACK = 1e-12  # shares that add up to 1 + rounding error are accepted


def _default_unsecured_share() -> dict[str, float]:
    # Share of the base a bank lends without cover, by grade (assumption: halves down the investment
    # grades, nothing for CCC and below). With the default base (the amount asked), an AAA enterprise
    # gets at most half of what it asks beyond its pledge value.
    return {
        "AAA": 0.50,
        "AA": 0.40,
        "A": 0.30,
        "BBB": 0.20,
        "BB": 0.10,
        "B": 0.05,
        "CCC": 0.0,
        "CC": 0.0,
        "C": 0.0,
    }


@dataclass(frozen=True)
class LendingPolicy:
    """A bank's lending policy for IP pledge loans; every default is stated with its source.

    Parameters
    ----------
    unsecured_share : grade -> share of the base lent beyond the pledge value, without cover (AAA 50%,
        AA 40%, A 30%, BBB 20%, BB 10%, B 5%, CCC / CC / C 0; assumption). Every grade must have a share in
        [0, 1]; CCC, CC and C are refused above 0.
    unsecured_base : what the unsecured share multiplies: "amount_asked" (default; needs no other data and
        never lends more than was asked) or "revenue" (the enterprise's last annual revenue, for banks that
        size uncovered credit on sales; pass `revenue` to `credit_line` and set shares accordingly, e.g. a
        tenth of the defaults).
    bank_limit_cny : the bank's largest single IP pledge loan (20,000,000 CNY: over 80% of Chinese IP pledge
        loans are under 20 million, domain.md section 9; assumption that a bank caps there). Per bank.
    ead_share_of_line : exposure at default as a share of the credit line (1.0: the line is drawn in full
        at default; assumption, conservative for revolving lines).
    pd_floor : smallest PD used in the expected loss (0.0003: the Basel IRB floor of 0.03%, domain.md
        section 7).
    disposal_cost_rate : share of the liquidation value spent on selling the pledge (0.10: auction
        commission, appraisal, legal and enforcement fees; assumption). The fire-sale discount itself is
        already in the liquidation value (`valuation.pledge`).
    lgd_unsecured : LGD of the part of the exposure the recovery does not cover (0.45: Basel foundation IRB,
        senior unsecured claims, domain.md section 7).
    lgd_secured : LGD of the part covered by the recovery (0.0: the fire-sale discount and disposal costs
        are already taken off the recovery; assumption). A bank that wants a margin for valuation error sets
        it above 0 (Basel foundation IRB uses 25% for "other physical collateral"; secondary, verify).
    lgd_floor : smallest LGD of any loan, however well covered (0.10; assumption: IP values are uncertain
        and a disposal may fail).
    fund_share : share of the loss left after guarantor and insurer that the risk-compensation fund bears
        (0.40: Ezhou has no published split, assumption following Zhuhai bank 60 / fund 40, domain.md
        section 8). See `SHARING_PRESETS` and `with_sharing`.
    scheme_insurer_share : share of that remaining loss borne by an insurer within the compensation scheme
        (0.0; Zhongshan 0.16). Added to the application's own `insurance_share` in `loss_split`.
    appraiser_share : share of that remaining loss borne by the appraisal firm (0.0; Zhongshan 0.04).
    subsidy_share : largest share of a year's interest the programme pays (0.50: Ezhou, 鄂州市监〔2024〕33号,
        domain.md section 1).
    subsidy_cap_cny : largest subsidy per enterprise per year (100,000 CNY: same source).
    subsidy_months : months of interest a subsidy year covers (12: "the year's loan interest"; a shorter
        loan gets the interest of its term).
    """

    unsecured_share: dict[str, float] = field(default_factory=_default_unsecured_share)
    unsecured_base: str = "amount_asked"
    bank_limit_cny: float = 20_000_000.0
    ead_share_of_line: float = 1.0
    pd_floor: float = 0.0003
    disposal_cost_rate: float = 0.10
    lgd_unsecured: float = 0.45
    lgd_secured: float = 0.0
    lgd_floor: float = 0.10
    fund_share: float = 0.40
    scheme_insurer_share: float = 0.0
    appraiser_share: float = 0.0
    subsidy_share: float = 0.50
    subsidy_cap_cny: float = 100_000.0
    subsidy_months: int = 12

    def __post_init__(self) -> None:
        problems: list[Problem] = []
        share = self.unsecured_share
        if not isinstance(share, Mapping):
            problems.append(Problem("unsecured_share", "a mapping grade -> share", share))
        else:
            for g in GRADE_NAMES:
                if g not in share:
                    problems.append(Problem(f"unsecured_share[{g!r}]", "a share for every grade", "missing"))
                elif not _is_number(share[g], 0.0, 1.0):
                    problems.append(Problem(f"unsecured_share[{g!r}]", "a number in [0, 1]", share[g]))
                elif g in ("CCC", "CC", "C") and share[g] != 0:
                    problems.append(Problem(f"unsecured_share[{g!r}]", "0 (no unsecured credit)", share[g]))
            unknown = sorted(set(share) - set(GRADE_NAMES))
            if unknown:
                problems.append(Problem("unsecured_share", f"only the grades {list(GRADE_NAMES)}", unknown))
        if self.unsecured_base not in UNSECURED_BASES:
            problems.append(Problem("unsecured_base", f"one of {list(UNSECURED_BASES)}", self.unsecured_base))
        bounds = {
            "bank_limit_cny": (0.0, np.inf),
            "ead_share_of_line": (0.0, 1.0),
            "pd_floor": (0.0, 1.0),
            "disposal_cost_rate": (0.0, 1.0),
            "lgd_unsecured": (0.0, 1.0),
            "lgd_secured": (0.0, 1.0),
            "lgd_floor": (0.0, 1.0),
            "fund_share": (0.0, 1.0),
            "scheme_insurer_share": (0.0, 1.0),
            "appraiser_share": (0.0, 1.0),
            "subsidy_share": (0.0, 1.0),
            "subsidy_cap_cny": (0.0, np.inf),
        }
        for name, (lo, hi) in bounds.items():
            value = getattr(self, name)
            if not _is_number(value, lo, hi) or (hi == np.inf and not np.isfinite(value)):
                problems.append(Problem(name, f"a finite number in [{lo}, {hi}]", value))
        scheme = (self.fund_share, self.scheme_insurer_share, self.appraiser_share)
        if all(_is_number(s, 0.0, 1.0) for s in scheme) and sum(scheme) > 1 + _FLOAT_SLACK:
            problems.append(
                Problem("fund_share + scheme_insurer_share + appraiser_share", "a total <= 1", sum(scheme))
            )
        if not (
            isinstance(self.subsidy_months, numbers.Integral)
            and not isinstance(self.subsidy_months, bool)
            and 1 <= self.subsidy_months <= 12
        ):
            problems.append(Problem("subsidy_months", "an integer in [1, 12]", self.subsidy_months))
        if problems:
            raise InvalidData(problems, what="LendingPolicy")

    def to_dict(self) -> dict[str, Any]:
        """The policy as JSON values, stored with each decision so that it can be re-run as it was made.

        >>> LendingPolicy.from_dict(LendingPolicy().to_dict()) == LendingPolicy()
        True
        """
        return {**dataclasses.asdict(self), "unsecured_share": dict(self.unsecured_share)}

    @classmethod
    def from_dict(cls, stored: Mapping[str, Any]) -> LendingPolicy:
        """The policy stored with a decision (a field it does not name takes today's default)."""
        return cls(**stored)

    def override(self, **changes: Any) -> LendingPolicy:
        """A copy with `changes`; `unsecured_share` is merged, so one grade can change alone."""
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise InvalidData(
                [Problem(k, f"one of {sorted(names)}", "unknown parameter") for k in unknown],
                what="LendingPolicy",
            )
        new = changes.get("unsecured_share")
        if isinstance(new, Mapping):
            changes["unsecured_share"] = {**self.unsecured_share, **new}
        return dataclasses.replace(self, **changes)

    def with_sharing(self, scheme: str) -> LendingPolicy:
        """A copy with the loss-sharing shares of a named scheme in `SHARING_PRESETS` (ezhou, zhongshan,
        zhuhai, shenzhen).

        >>> LendingPolicy().with_sharing("zhongshan").appraiser_share
        0.04
        """
        if scheme not in SHARING_PRESETS:
            raise InvalidData(
                [Problem("scheme", f"one of {sorted(SHARING_PRESETS)}", scheme)], what="loss-sharing scheme"
            )
        return dataclasses.replace(self, **SHARING_PRESETS[scheme])


# ---------------------------------------------------------------------------------------------------------
# input handling: every function collects all problems, then raises once


def _is_number(value: Any, lo: float, hi: float) -> bool:
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and not np.isnan(value)
        and lo <= value <= hi
    )


def _raw(values: Any) -> np.ndarray:
    if isinstance(values, pandas.Series | pandas.Index):
        arr = values.to_numpy(dtype=object)
    else:
        arr = np.asarray(values, dtype=object)
    return arr.reshape(-1)


class _Inputs:
    """Named inputs broadcast to one length; problems are collected, not raised, until `check`."""

    def __init__(self, what: str, **inputs: Any):
        self.what = what
        self.problems: list[Problem] = []
        self.raw = {name: _raw(v) for name, v in inputs.items() if v is not None}
        sizes = {name: a.size for name, a in self.raw.items()}
        self.n = max(sizes.values(), default=0)
        self.index = None
        for name, v in inputs.items():
            if isinstance(v, pandas.Series) and len(v) == self.n and self.index is None:
                self.index = v.index
            if name in self.raw and sizes[name] not in (1, self.n):
                self.problems.append(Problem(name, f"a scalar or {self.n} values (one per row)", sizes[name]))
        for name, a in self.raw.items():
            if a.size == 1 and self.n != 1:
                self.raw[name] = np.repeat(a, self.n)

    def number(
        self, name: str, lo: float = 0.0, hi: float = np.inf, expected: str | None = None
    ) -> np.ndarray:
        """Floats of input `name`, with one problem per row that is not a finite number in [lo, hi]."""
        raw = self.raw[name]
        if raw.size != self.n:
            return np.full(self.n, np.nan)
        values = numbers_or_nan(raw)  # what is not a number becomes NaN, and a problem below
        bad = ~np.isfinite(values) | (values < lo) | (values > hi)
        text = expected or (f"a finite number >= {lo:g}" if hi == np.inf else f"a number in [{lo:g}, {hi:g}]")
        self.problems += [Problem(name, text, plain(raw[i]), row=int(i)) for i in np.flatnonzero(bad)]
        return values

    def check(self) -> None:
        if self.problems:
            raise InvalidData(self.problems, what=self.what)


# ---------------------------------------------------------------------------------------------------------
# reuse of valuation.pledge


def from_bundles(valuations: Sequence[BundleValuation], route: str | None = None) -> pandas.DataFrame:
    """Pledge value and liquidation value of each bundle, as computed by `valuation.pledge.bundle_value`.

    `route` picks the liquidation value of one disposal route (licence, auction_transfer,
    pledge_to_equity); None takes the bundle's own (the pledge policy's route choice). The pledge value is
    always the bundle's own. Returns columns pledge_value, liquidation_value, one row per bundle.
    """
    problems = []
    if route is not None and route not in ROUTES:
        problems.append(Problem("route", f"one of {list(ROUTES)} or None", route))
    for i, v in enumerate(valuations):
        if not isinstance(v, BundleValuation):
            problems.append(Problem("valuations", "a BundleValuation", type(v).__name__, row=i))
    if problems:
        raise InvalidData(problems, what="bundles")
    return pandas.DataFrame(
        {
            "pledge_value": [v.pledge_value_cny for v in valuations],
            "liquidation_value": [
                v.liquidation_value_cny if route is None else v.liquidation_by_route[route]
                for v in valuations
            ],
        },
        dtype="float64",
    )


# ---------------------------------------------------------------------------------------------------------
# the rules


def credit_line(
    amount_asked: ArrayLike,
    pledge_value: ArrayLike,
    grade: ArrayLike,
    revenue: ArrayLike | None = None,
    policy: LendingPolicy | None = None,
) -> np.ndarray:
    """Recommended credit line in CNY: the least of the amount asked, the pledge value plus the unsecured
    part the grade allows, and the bank's limit.

    >>> credit_line([5e6, 5e6, 5e6], [1e6, 1e6, 1e6], ["AAA", "BB", "C"]).tolist()
    [3500000.0, 1500000.0, 1000000.0]
    """
    p = policy or LendingPolicy()
    inputs = _Inputs(
        "credit line input",
        amount_asked=amount_asked,
        pledge_value=pledge_value,
        grade=grade,
        revenue=revenue,
    )
    asked = inputs.number("amount_asked")
    pledge = inputs.number("pledge_value")
    grades = inputs.raw["grade"]
    if grades.size == inputs.n:
        for i in np.flatnonzero([g not in GRADE_NAMES for g in grades]):
            inputs.problems.append(
                Problem("grade", f"one of {list(GRADE_NAMES)}", plain(grades[i]), row=int(i))
            )
    if p.unsecured_base == "revenue":
        if revenue is None:
            inputs.problems.append(
                Problem("revenue", "the enterprise's revenue (policy.unsecured_base is 'revenue')", None)
            )
            base = np.zeros(inputs.n)
        else:
            base = inputs.number("revenue")
    else:
        if revenue is not None:
            inputs.problems.append(
                Problem(
                    "revenue",
                    "None: policy.unsecured_base is 'amount_asked' (set unsecured_base='revenue' to use it)",
                    "revenue values",
                )
            )
        base = asked
    inputs.check()
    share = np.array([p.unsecured_share[g] for g in grades], dtype="float64")
    return np.minimum(np.minimum(asked, pledge + share * base), p.bank_limit_cny)


def exposure_at_default(line: ArrayLike, policy: LendingPolicy | None = None) -> np.ndarray:
    """EAD of a credit line: `ead_share_of_line` x line (the line drawn in full by default)."""
    p = policy or LendingPolicy()
    inputs = _Inputs("exposure input", line=line)
    values = inputs.number("line")
    inputs.check()
    return p.ead_share_of_line * values


def expected_loss(
    pd: ArrayLike,
    ead: ArrayLike,
    liquidation_value: ArrayLike,
    policy: LendingPolicy | None = None,
) -> pandas.DataFrame:
    """Expected loss EL = PD x LGD x EAD per loan, with the LGD derived from the pledge's liquidation value.

    Returns columns pd (after the floor), ead, recovery (liquidation value less disposal costs), lgd, el;
    the index is that of the first Series input, if any. A loan with EAD 0 has the LGD of a fully covered
    loan and EL 0.

    >>> expected_loss(0.02, 1_000_000, 500_000)[["lgd", "el"]].round(4).values.tolist()
    [[0.2475, 4950.0]]
    """
    columns, index = expected_loss_columns(pd, ead, liquidation_value, policy)
    return pandas.DataFrame(columns, index=index)


def expected_loss_columns(
    pd: ArrayLike, ead: ArrayLike, liquidation_value: ArrayLike, policy: LendingPolicy | None = None
) -> tuple[dict[str, np.ndarray], pandas.Index | None]:
    """expected_loss's columns as arrays, and the index of its first Series input (None if none): what
    one application takes, without a DataFrame."""
    p = policy or LendingPolicy()
    inputs = _Inputs("expected loss input", pd=pd, ead=ead, liquidation_value=liquidation_value)
    pd_ = inputs.number("pd", 0.0, 1.0)
    exposure = inputs.number("ead")
    liquidation = inputs.number("liquidation_value")
    inputs.check()
    recovery = liquidation * (1.0 - p.disposal_cost_rate)
    covered = np.minimum(exposure, recovery)
    lost = p.lgd_secured * covered + p.lgd_unsecured * (exposure - covered)
    with np.errstate(divide="ignore", invalid="ignore"):
        lgd = np.where(exposure > 0, lost / np.where(exposure > 0, exposure, 1.0), p.lgd_secured)
    lgd = np.maximum(lgd, p.lgd_floor)
    pd_used = np.maximum(pd_, p.pd_floor)
    columns = {
        "pd": pd_used,
        "ead": exposure,
        "recovery": recovery,
        "lgd": lgd,
        "el": pd_used * lgd * exposure,
    }
    return columns, inputs.index


def loss_split(
    el: ArrayLike,
    guarantee_share: ArrayLike = 0.0,
    insurance_share: ArrayLike = 0.0,
    policy: LendingPolicy | None = None,
) -> pandas.DataFrame:
    """Who bears the expected loss: the guarantor takes `guarantee_share` of it, the insurer
    `insurance_share` (both per application), then of the rest the compensation fund takes `fund_share`,
    the scheme's insurer `scheme_insurer_share` (added to el_insurer) and the appraiser `appraiser_share`;
    the bank keeps what is left, so the columns add up to `el`.

    Returns el_bank, el_guarantor, el_insurer, el_fund, and el_appraiser when the policy's appraiser share
    is above 0 (Zhongshan).

    >>> loss_split(1000.0, 0.2, 0.0).round(2).values.tolist()
    [[480.0, 200.0, 0.0, 320.0]]
    """
    columns, index = loss_split_columns(el, guarantee_share, insurance_share, policy)
    return pandas.DataFrame(columns, index=index)


def loss_split_columns(
    el: ArrayLike,
    guarantee_share: ArrayLike = 0.0,
    insurance_share: ArrayLike = 0.0,
    policy: LendingPolicy | None = None,
) -> tuple[dict[str, np.ndarray], pandas.Index | None]:
    """loss_split's columns as arrays, and the index of its first Series input (None if none)."""
    p = policy or LendingPolicy()
    inputs = _Inputs(
        "loss split input", el=el, guarantee_share=guarantee_share, insurance_share=insurance_share
    )
    loss = inputs.number("el")
    g = inputs.number("guarantee_share", 0.0, 1.0)
    s = inputs.number("insurance_share", 0.0, 1.0)
    both = np.isfinite(g) & np.isfinite(s) & (g + s > 1 + _FLOAT_SLACK)
    inputs.problems += [
        Problem("guarantee_share + insurance_share", "a total <= 1", float(g[i] + s[i]), row=int(i))
        for i in np.flatnonzero(both)
    ]
    inputs.check()
    guarantor = loss * g
    insurer_own = loss * s
    rest = np.maximum(loss - guarantor - insurer_own, 0.0)
    fund = rest * p.fund_share
    insurer = insurer_own + rest * p.scheme_insurer_share
    appraiser = rest * p.appraiser_share
    bank = loss - guarantor - insurer - fund - appraiser
    columns = {"el_bank": bank, "el_guarantor": guarantor, "el_insurer": insurer, "el_fund": fund}
    if p.appraiser_share > 0:
        columns["el_appraiser"] = appraiser
    return columns, inputs.index


def interest_subsidy(
    amount: ArrayLike,
    annual_rate: ArrayLike,
    term_months: ArrayLike,
    enterprise_id: ArrayLike | None = None,
    already_granted: Mapping[Any, float] | None = None,
    policy: LendingPolicy | None = None,
) -> np.ndarray:
    """Interest subsidy of each loan for its first year (Ezhou: at most 50% of the year's interest and at
    most 100,000 CNY per enterprise per year).

    First-year interest = amount x annual_rate x min(term_months, 12) / 12 (simple interest on the full
    amount, as for an interest-only loan repaid at term; an amortising loan pays less, so this is an upper
    bound). Without `enterprise_id` each loan is its own enterprise. With it, the cap is shared by an
    enterprise's loans in the batch, allocated in row order, after what `already_granted` (enterprise ->
    CNY granted this year) has used. The batch is taken to be one subsidy year.

    >>> interest_subsidy([1e6, 1e7], 0.04, 12).tolist()
    [20000.0, 100000.0]
    """
    p = policy or LendingPolicy()
    inputs = _Inputs(
        "interest subsidy input",
        amount=amount,
        annual_rate=annual_rate,
        term_months=term_months,
        enterprise_id=enterprise_id,
    )
    principal = inputs.number("amount")
    rate = inputs.number(
        "annual_rate", 0.0, 1.0, expected="an annual rate as a fraction in [0, 1], e.g. 0.035"
    )
    term = inputs.number("term_months", 1.0, np.inf, expected="a whole number of months >= 1")
    raw_term = inputs.raw["term_months"]
    for i in np.flatnonzero(np.isfinite(term) & (term >= 1) & (term != np.floor(term))):
        inputs.problems.append(
            Problem("term_months", "a whole number of months >= 1", plain(raw_term[i]), row=int(i))
        )
    ids = inputs.raw.get("enterprise_id")
    if ids is not None and ids.size == inputs.n:
        missing = pandas.isna(ids)
        inputs.problems += [
            Problem("enterprise_id", "an enterprise id", None, row=int(i)) for i in np.flatnonzero(missing)
        ]
    granted = {}
    if already_granted is not None:
        if ids is None:
            inputs.problems.append(
                Problem("already_granted", "enterprise_id for every loan when already_granted is given", None)
            )
        elif not isinstance(already_granted, Mapping):
            inputs.problems.append(
                Problem("already_granted", "a mapping enterprise -> CNY", type(already_granted).__name__)
            )
        else:
            for key, value in already_granted.items():
                if not _is_number(value, 0.0, np.inf) or not np.isfinite(value):
                    inputs.problems.append(
                        Problem("already_granted", "a finite amount >= 0 CNY", value, record_id=str(key))
                    )
            granted = dict(already_granted)
    inputs.check()
    months = np.minimum(term, p.subsidy_months)
    uncapped = p.subsidy_share * principal * rate * months / 12.0
    if ids is None:
        return np.minimum(uncapped, p.subsidy_cap_cny)
    used = np.array([float(granted.get(k, 0.0)) for k in ids], dtype="float64")
    left = np.maximum(p.subsidy_cap_cny - used, 0.0)
    # What the enterprise's earlier loans in the batch took (none when every loan is another enterprise's).
    before = (
        np.zeros(inputs.n)
        if len(set(ids)) == inputs.n
        else pandas.Series(uncapped).groupby(ids, sort=False).cumsum().to_numpy() - uncapped
    )
    return np.clip(left - before, 0.0, uncapped)


def npl_tolerance(
    ip_npl_rate: ArrayLike, bank_npl_rate: ArrayLike, tolerance: float = 0.03
) -> bool | np.ndarray:
    """True where the NPL ratio of a bank's IP pledge loans is within `tolerance` (3 percentage points,
    Ezhou; domain.md section 1) above the bank's overall NPL ratio, i.e. not penalised. Rates are fractions
    (0.02 = 2%). A scalar input gives a bool, an array one bool per institution.

    >>> npl_tolerance(0.045, 0.015), npl_tolerance(0.046, 0.015)
    (True, False)
    """
    scalar = np.ndim(ip_npl_rate) == 0 and np.ndim(bank_npl_rate) == 0
    inputs = _Inputs("NPL tolerance input", ip_npl_rate=ip_npl_rate, bank_npl_rate=bank_npl_rate)
    ip = inputs.number("ip_npl_rate", 0.0, 1.0)
    bank = inputs.number("bank_npl_rate", 0.0, 1.0)
    if not _is_number(tolerance, 0.0, 1.0):
        inputs.problems.append(
            Problem("tolerance", "a number in [0, 1] (0.03 = 3 percentage points)", tolerance)
        )
    inputs.check()
    ok = ip <= bank + tolerance + _FLOAT_SLACK
    return bool(ok[0]) if scalar else ok


# ---------------------------------------------------------------------------------------------------------
# the rules applied to a table of loans

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
    table: pandas.DataFrame, pd_: np.ndarray, grades: np.ndarray, policy: LendingPolicy | None = None
) -> pandas.DataFrame:
    """Credit line, EAD, LGD, expected loss and who bears it, and the first-year interest subsidy."""
    return pandas.DataFrame(loan_term_columns(table, pd_, grades, policy), index=table.index)


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
    cap first (underwriting.policy.interest_subsidy)."""
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
