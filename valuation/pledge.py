"""Bundle valuation and pledge value: what a bank may lend against a set of pledged patents and marks.

A bank lends against the pledge value, not the appraised value (domain.md section 6): the bundle's value
is first cut for concentration (a bundle that rests on one right loses most of its value with that
right) and for rights that may expire before the bank could sell them, then for the fire-sale discount
of the disposal route, then multiplied by the pledge rate of each asset type. All defaults are named
fields of `BundleAssumptions` and `PledgeAssumptions`, which a bank overrides with its own policy
(`PledgeAssumptions().override(pledge_rates={"invention": 0.3})`).

Per asset i with value v_i (the value model's output), for a loan of T months::

    share_i         = v_i / sum v
    haircut         = h_max * max(0, max share - threshold) / (1 - threshold)          (concentration)
    coverage_i      = min(1, remaining_years_i / (T / 12 + disposal_years))        (1 for marks: renewable)
    life_factor_i   = 1 - max_life_haircut * (1 - coverage_i)
    contribution_i  = v_i * life_factor_i * (1 - haircut)        bundle value = sum contribution_i
    liquidation_i   = contribution_i * (1 - discount[route_i][type_i])
    pledge_i        = min(pledge_rate[type_i] * contribution_i, liquidation_i)   pledge value = sum pledge_i

(with `pledge_base="liquidation"`, the earlier base: pledge_i = pledge_rate[type_i] * liquidation_i), so
pledge value <= liquidation value <= bundle value <= sum of values always holds. The pledge rate caps the
loan against the appraised value; the liquidation value bounds what a disposal recovers and drives LGD.

Refused (`InvalidData`, every row named): an asset listed twice (it would count twice), and, where the
asset's status is given (`STATUS_COLUMNS`), a right that has ended: it is worth nothing to a pledgee.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from features.errors import InvalidData, Problem
from features.schema import ENDED_STATUSES, flag, id_key
from features.transformers import numbers_or_nan
from features.values import plain
from valuation._common import (
    ASSET_TYPES,
    PATENT_TYPES,
    TRADEMARK,
    broadcast,
    mapping_problems,
    positions,
    scalar_problem,
    with_overrides,
)

PATENT = "patent"
#: Disposal routes of a pledged right after default (domain.md sections 1 and 6).
ROUTES: tuple[str, ...] = ("licence", "auction_transfer", "pledge_to_equity")
ROUTE_CHOICES: tuple[str, ...] = ("assigned", "best", "expected")
PLEDGE_BASES: tuple[str, ...] = ("liquidation", "appraised")
ASSET_COLUMNS = ["asset_kind", "patent_type", "value_cny", "remaining_years"]
#: Optional columns of a pledged asset's legal status: where given, a right that has ended is refused.
STATUS_COLUMNS = ("status_as_of", "is_valid", "is_pending", "is_registered")


@dataclass(frozen=True)
class BundleAssumptions:
    """How a bundle's value is cut before any disposal discount.

    Parameters
    ----------
    concentration_threshold : largest asset share of the bundle value below which there is no
        concentration haircut (0.4: a bundle of three or more assets of similar value is not cut).
    max_concentration_haircut : haircut when one asset carries the whole value (0.20). Linear in between:
        haircut = max_concentration_haircut * max(0, largest_share - threshold) / (1 - threshold), so a
        single asset loses 20% and two equal assets 3.3% (assumption; no published figure).
    disposal_years : time the bank needs after the loan term to sell a right after default (1.0:
        enforcement, valuation and auction or licence negotiation take months).
    max_life_haircut : share of an asset's value lost when it expires at once (1.0); an asset that
        covers a share c of the exposure period (loan term + disposal time) keeps
        1 - max_life_haircut * (1 - c) of its value, because an expired right sells for nothing.
    trademark_renewal_assumed : a registered mark is renewable every ten years for a fee, so its expiry
        date does not limit its life (True; the pledge contract should oblige the owner to renew).
    """

    concentration_threshold: float = 0.4
    max_concentration_haircut: float = 0.20
    disposal_years: float = 1.0
    max_life_haircut: float = 1.0
    trademark_renewal_assumed: bool = True

    def __post_init__(self) -> None:
        problems = (
            scalar_problem("concentration_threshold", self.concentration_threshold, lo=0, hi=1, hi_open=True)
            + scalar_problem("max_concentration_haircut", self.max_concentration_haircut, lo=0, hi=1)
            + scalar_problem("disposal_years", self.disposal_years, lo=0, hi=10)
            + scalar_problem("max_life_haircut", self.max_life_haircut, lo=0, hi=1)
        )
        if not isinstance(self.trademark_renewal_assumed, bool):
            problems.append(
                Problem("trademark_renewal_assumed", "True or False", self.trademark_renewal_assumed)
            )
        if problems:
            raise InvalidData(problems, what="BundleAssumptions")

    def override(self, **changes: Any) -> BundleAssumptions:
        return with_overrides(self, **changes)


def _default_discounts() -> dict[str, dict[str, float]]:
    # Share of value lost in a forced sale, by route and asset type (assumptions; no public recovery data
    # for Chinese IP pledge disposals). Licensing back to the owner or to a going concern keeps most; an
    # auction finds few bidders for a small firm's rights; pledge-to-equity leaves the bank with an
    # illiquid stake. Inventions trade best among patents (technology exchanges list them); marks
    # license well because the brand keeps selling.
    return {
        "licence": {"invention": 0.50, "utility_model": 0.60, "design": 0.60, "trademark": 0.40},
        "auction_transfer": {"invention": 0.55, "utility_model": 0.65, "design": 0.65, "trademark": 0.50},
        "pledge_to_equity": {"invention": 0.60, "utility_model": 0.70, "design": 0.70, "trademark": 0.60},
    }


@dataclass(frozen=True)
class PledgeAssumptions:
    """A bank's pledge policy: pledge rates, disposal discounts and routes, and the loan-term cap.

    Parameters
    ----------
    pledge_rates : loan-to-value cap per asset type (invention 25%, utility model 15%, trademark 50%: one
        large bank's published caps, domain.md section 6, secondary source; design 10%, an assumption
        below the utility model since a design protects appearance only). Practice spans 10-60%.
    liquidation_discounts : share of value lost per disposal route and asset type (see
        `_default_discounts`; assumptions a bank replaces with its own recovery experience).
    route_choice : how each asset's route is chosen: "assigned" (`route_by_asset`, default), "best"
        (smallest discount: optimistic), or "expected" (discount averaged with `route_probabilities`).
    route_by_asset : the route per asset type under "assigned": patents are auctioned or transferred,
        marks licensed (back to the owner or to a buyer of the business).
    route_probabilities : weights of the routes under "expected" (licence 0.3, auction 0.5, equity 0.2;
        assumption, normalised to sum 1).
    pledge_base : what the pledge rate multiplies: "appraised" (the default: rate x bundle-adjusted
        value, never above the liquidation value; banks' pledge rates are caps on the loan against the
        appraised value, domain.md section 6) or "liquidation" (rate x liquidation value: the engine's
        earlier base, which haircuts twice; kept for banks whose caps are stated that way).
    max_term_months : longest loan term the policy allows (36, the same bank's cap); a longer term is
        reported in `BundleValuation.term_within_cap`, not refused.
    """

    pledge_rates: dict[str, float] = field(
        default_factory=lambda: {"invention": 0.25, "utility_model": 0.15, "design": 0.10, "trademark": 0.50}
    )
    liquidation_discounts: dict[str, dict[str, float]] = field(default_factory=_default_discounts)
    route_choice: str = "assigned"
    route_by_asset: dict[str, str] = field(
        default_factory=lambda: {
            "invention": "auction_transfer",
            "utility_model": "auction_transfer",
            "design": "auction_transfer",
            "trademark": "licence",
        }
    )
    route_probabilities: dict[str, float] = field(
        default_factory=lambda: {"licence": 0.3, "auction_transfer": 0.5, "pledge_to_equity": 0.2}
    )
    pledge_base: str = "appraised"
    max_term_months: int = 36

    def __post_init__(self) -> None:
        problems = mapping_problems("pledge_rates", self.pledge_rates, ASSET_TYPES, lo=0, hi=1)
        if not isinstance(self.liquidation_discounts, dict) or set(self.liquidation_discounts) != set(ROUTES):
            problems.append(
                Problem(
                    "liquidation_discounts",
                    f"a mapping with exactly the routes {list(ROUTES)}",
                    self.liquidation_discounts,
                )
            )
        else:
            for route in ROUTES:
                problems += mapping_problems(
                    f"liquidation_discounts[{route!r}]",
                    self.liquidation_discounts[route],
                    ASSET_TYPES,
                    lo=0,
                    hi=1,
                )
        if self.route_choice not in ROUTE_CHOICES:
            problems.append(Problem("route_choice", f"one of {list(ROUTE_CHOICES)}", self.route_choice))
        for t in ASSET_TYPES:
            if self.route_by_asset.get(t) not in ROUTES:
                problems.append(
                    Problem(
                        f"route_by_asset[{t!r}]",
                        f"one of {list(ROUTES)}",
                        self.route_by_asset.get(t, "missing"),
                    )
                )
        problems += mapping_problems("route_probabilities", self.route_probabilities, ROUTES, lo=0, hi=1)
        if not problems and sum(self.route_probabilities.values()) <= 0:
            problems.append(
                Problem("route_probabilities", "at least one positive probability", self.route_probabilities)
            )
        if self.pledge_base not in PLEDGE_BASES:
            problems.append(Problem("pledge_base", f"one of {list(PLEDGE_BASES)}", self.pledge_base))
        if not (
            isinstance(self.max_term_months, int)
            and not isinstance(self.max_term_months, bool)
            and self.max_term_months >= 1
        ):
            problems.append(Problem("max_term_months", "a positive integer", self.max_term_months))
        if problems:
            raise InvalidData(problems, what="PledgeAssumptions")

    def override(self, **changes: Any) -> PledgeAssumptions:
        """A copy with `changes`; mapping fields are merged (one asset type or route can change alone;
        `liquidation_discounts` merges route by route)."""
        new = changes.get("liquidation_discounts")
        if isinstance(new, dict):
            current = self.liquidation_discounts
            changes["liquidation_discounts"] = {
                route: {**current.get(route, {}), **new.get(route, {})} for route in {**current, **new}
            }
        return with_overrides(self, **changes)

    def discount(self, asset_type: ArrayLike, route: str | None = None) -> np.ndarray:
        """Fire-sale discount per asset for a route, or for the policy's `route_choice` when route is None
        (or one of "assigned", "best", "expected")."""
        types = np.asarray(asset_type, dtype=object).reshape(-1)
        _check_types(types)
        choice = route or self.route_choice
        d = self.liquidation_discounts
        if choice in ROUTES:
            return np.array([d[choice][t] for t in types], dtype="float64")
        if choice == "assigned":
            return np.array([d[self.route_by_asset[t]][t] for t in types], dtype="float64")
        if choice == "best":
            return np.array([min(d[r][t] for r in ROUTES) for t in types], dtype="float64")
        if choice == "expected":
            total = sum(self.route_probabilities.values())
            weights = self.route_probabilities
            return np.array(
                [sum(weights[r] * d[r][t] for r in ROUTES) / total for t in types], dtype="float64"
            )
        raise InvalidData(
            [Problem("route", f"one of {list(ROUTES) + list(ROUTE_CHOICES)} or None", choice)],
            what="discount input",
        )


@dataclass(frozen=True, eq=False)
class BundleValuation:
    """The valuation of one pledged bundle, with everything needed to explain and reproduce it.

    `assets` has one row per input asset (in input order): asset_type, value_cny, share, coverage,
    life_factor, contribution_cny (after life and concentration cuts), route, discount,
    liquidation_value_cny, pledge_rate, pledge_value_cny, and asset_id when the input had one.
    `asset_columns` holds the same columns as arrays (the table is built only when asked for: a request
    reads the arrays).
    """

    total_value_cny: float
    largest_share: float
    concentration_haircut: float
    shortest_remaining_years: float
    exposure_years: float
    life_adjustment_cny: float
    bundle_value_cny: float
    liquidation_by_route: dict[str, float]
    liquidation_value_cny: float
    pledge_value_cny: float
    asset_columns: dict[str, np.ndarray]
    loan_term_months: int
    term_within_cap: bool
    assumptions: BundleAssumptions
    pledge_assumptions: PledgeAssumptions

    @property
    def assets(self) -> pd.DataFrame:
        return pd.DataFrame(self.asset_columns)

    def summary(self) -> dict[str, Any]:
        """The figures and the assumptions as plain Python values (no DataFrame): what a loan file or an
        API answer stores so the valuation can be reproduced."""
        scalars = {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name not in ("asset_columns", "assumptions", "pledge_assumptions")
        }
        return {
            **scalars,
            "liquidation_by_route": dict(self.liquidation_by_route),
            "assets": _records(self.asset_columns),
            "assumptions": _plain_fields(self.assumptions),
            "pledge_assumptions": _plain_fields(self.pledge_assumptions),
        }


def _plain_fields(assumptions: Any) -> dict[str, Any]:
    """A frozen dataclass of assumptions as new dicts and lists of its values (`dataclasses.asdict`, without
    its deep copy of every value: a book's decisions copy the same assumptions for each bundle)."""
    return {f.name: _copied(getattr(assumptions, f.name)) for f in fields(assumptions)}


def _copied(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _copied(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_copied(v) for v in value]
    return value


def _records(columns: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """The rows of columns as dicts of Python values, as DataFrame.to_dict(orient="records") gives them,
    at a fraction of its cost on the few rows of a bundle."""
    names = list(columns)
    rows = zip(*(columns[c].tolist() for c in names), strict=True)
    return [dict(zip(names, row, strict=True)) for row in rows]


def _check_types(types: np.ndarray) -> None:
    bad = [i for i, t in enumerate(types) if t not in ASSET_TYPES]
    if bad:
        raise InvalidData(
            [Problem("asset_type", f"one of {list(ASSET_TYPES)}", plain(types[i]), row=i) for i in bad],
            what="asset types",
        )


def asset_types(asset_kind: ArrayLike, patent_type: ArrayLike) -> np.ndarray:
    """The per-type key of every parameter: the patent type for a patent, "trademark" for a mark."""
    kind = np.asarray(asset_kind, dtype=object).reshape(-1)
    ptype = broadcast(patent_type, kind.size, "patent_type", dtype="object")
    return np.where(kind.astype(str) == TRADEMARK, TRADEMARK, ptype).astype(object)


def liquidation_value(
    value: ArrayLike,
    asset_type: ArrayLike,
    route: str | None = None,
    assumptions: PledgeAssumptions | None = None,
) -> np.ndarray:
    """Value x (1 - fire-sale discount) per asset, for one route (licence, auction_transfer,
    pledge_to_equity) or, with route None, the policy's route choice. Vectorised; scalars broadcast.

    >>> liquidation_value([100.0, 100.0], ["invention", "trademark"]).round(2).tolist()
    [45.0, 60.0]
    """
    a = assumptions or PledgeAssumptions()
    n = max(np.size(value), np.size(asset_type))
    v = broadcast(value, n, "value")
    types = broadcast(asset_type, n, "asset_type", dtype="object")
    _refuse_negative(v)
    return v * (1.0 - a.discount(types, route))


def pledge_value(
    value: ArrayLike,
    asset_type: ArrayLike,
    route: str | None = None,
    assumptions: PledgeAssumptions | None = None,
) -> np.ndarray:
    """What a bank lends against each asset: min(pledge rate x value, liquidation value) (the "appraised"
    base, the default), or pledge rate x liquidation value (the "liquidation" base). `value` is the asset's
    value after any bundle cuts.

    >>> pledge_value([100.0, 100.0], ["invention", "trademark"]).round(2).tolist()
    [25.0, 50.0]
    >>> twice = PledgeAssumptions(pledge_base="liquidation")
    >>> pledge_value([100.0], ["invention"], assumptions=twice).round(2).tolist()
    [11.25]
    """
    a = assumptions or PledgeAssumptions()
    n = max(np.size(value), np.size(asset_type))
    v = broadcast(value, n, "value")
    types = broadcast(asset_type, n, "asset_type", dtype="object")
    liquidation = liquidation_value(v, types, route, a)
    rate = np.array([a.pledge_rates[t] for t in types], dtype="float64")
    if a.pledge_base == "liquidation":
        return rate * liquidation
    return np.minimum(rate * v, liquidation)


def _refuse_negative(v: np.ndarray) -> None:
    bad = positions(~(np.isfinite(v) & (v >= 0)))
    if bad:
        raise InvalidData(
            [Problem("value", "a finite value >= 0", plain(v[i]), row=i) for i in bad], what="value input"
        )


def _bundle_problems(asset_values: Any, loan_term_months: Any) -> list[Problem]:
    problems: list[Problem] = []
    if not (
        isinstance(loan_term_months, int | np.integer)
        and not isinstance(loan_term_months, bool)
        and 1 <= loan_term_months <= 60
    ):
        problems.append(
            Problem("loan_term_months", "an integer number of months in [1, 60]", loan_term_months)
        )
    if not isinstance(asset_values, pd.DataFrame | Mapping):
        return problems + [
            Problem(
                "asset_values", "a DataFrame or a mapping of column to values", type(asset_values).__name__
            )
        ]
    missing = [c for c in ASSET_COLUMNS if c not in asset_values]
    problems += [Problem(c, "a column of asset_values", "no such column") for c in missing]
    if missing:
        return problems
    column = {c: np.asarray(asset_values[c], dtype=object).reshape(-1) for c in ASSET_COLUMNS}
    if len({v.size for v in column.values()}) > 1:
        sizes = {c: v.size for c, v in column.items()}
        return problems + [Problem("asset_values", "columns of one length", sizes)]
    if column["asset_kind"].size == 0:
        return problems + [Problem("asset_values", "at least one pledged asset", "an empty bundle")]
    ids = _ids(asset_values)

    def where(i: int) -> dict[str, Any]:
        return {"row": i, "record_id": _record_id(ids, i)}

    kinds, ptypes = column["asset_kind"], column["patent_type"]
    for i, (kind, ptype) in enumerate(zip(kinds, ptypes, strict=True)):
        empty = ptype is None or (isinstance(ptype, float) and np.isnan(ptype)) or ptype is pd.NA
        if kind == PATENT and (empty or str(ptype) not in PATENT_TYPES):
            problems.append(
                Problem("patent_type", f"one of {list(PATENT_TYPES)} for a patent", plain(ptype), **where(i))
            )
        elif kind == TRADEMARK and not empty:
            problems.append(Problem("patent_type", "empty (None) for a trademark", plain(ptype), **where(i)))
        elif kind not in (PATENT, TRADEMARK):
            problems.append(Problem("asset_kind", f"one of {[PATENT, TRADEMARK]}", plain(kind), **where(i)))
    for name in ("value_cny", "remaining_years"):
        numeric = numbers_or_nan(column[name])
        for i in positions(~(np.isfinite(numeric) & (numeric >= 0))):
            problems.append(Problem(name, "a finite number >= 0", plain(column[name][i]), **where(i)))
    if ids is not None:  # one asset listed twice would count twice in the bundle and its pledge value
        first: dict[tuple[str, str], int] = {}
        for i, (kind, asset_id) in enumerate(zip(kinds, ids, strict=True)):
            # a patent and a mark may share a number; one number is one right however it is spelled
            key = (str(kind), id_key(str(asset_id)))
            if not pd.isna(asset_id) and first.setdefault(key, i) != i:
                earlier = first[key]
                spelled = "" if ids[earlier] == asset_id else f", as {ids[earlier]}: ids are case-blind"
                expected = f"each asset pledged once ({kind} {asset_id} is also row {earlier}{spelled})"
                problems.append(Problem("asset_id", expected, str(asset_id), **where(i)))
    return problems + unpledgeable(asset_values)


def unpledgeable(asset_values: Any) -> list[Problem]:
    """The assets whose stated status says they cannot be pledged (`_ended_rights`: ended, not yet granted,
    or a flag that is not 0 or 1), by row and id: what `bundle_value` refuses of them, found without their
    values (a request's problems are then listed together)."""
    kinds, ids = np.asarray(asset_values["asset_kind"], dtype=object).reshape(-1), _ids(asset_values)
    return [
        Problem(name, expected, got, row=i, record_id=_record_id(ids, i))
        for i, name, expected, got in _ended_rights(asset_values, kinds)
    ]


def _ids(asset_values: Any) -> np.ndarray | None:
    return (
        np.asarray(asset_values["asset_id"], dtype=object).reshape(-1) if "asset_id" in asset_values else None
    )


def _record_id(ids: np.ndarray | None, i: int) -> str | None:
    return None if ids is None or pd.isna(ids[i]) else str(ids[i])


def _ended_rights(asset_values: Any, kinds: np.ndarray) -> Iterator[tuple[int, str, str, Any]]:
    """(row, field, expected, value) of each asset whose given status (STATUS_COLUMNS) says it is not a right
    that can be pledged: one that has ended (an ended status, a patent not in force, a patent with no
    remaining term: a mark's registration is renewed), or one not yet granted (a pending
    patent application or trademark application: CNIPA registers pledges of granted patents and registered
    marks only), or that cannot say (a flag that is not 0 or 1)."""
    ended = "a right in force: one that has ended cannot be pledged"
    unborn = "a right in force: a pending application cannot be pledged (CNIPA registers granted rights only)"
    n = kinds.size
    # Only a request states its rights' status; a portfolio's pledges are taken as it records them.
    stated = any(c in asset_values for c in STATUS_COLUMNS)
    remaining = numbers_or_nan(np.asarray(asset_values["remaining_years"], dtype=object).reshape(-1))
    given = {
        c: np.asarray(asset_values[c], dtype=object).reshape(-1) if c in asset_values else np.full(n, None)
        for c in STATUS_COLUMNS
    }

    for i, kind in enumerate(kinds):
        status = given["status_as_of"][i]
        flags, unreadable = {}, []
        for c in ("is_valid", "is_pending", "is_registered"):
            try:
                flags[c] = flag(given[c][i])
            except ValueError:
                unreadable.append(c)
        if unreadable:
            yield i, unreadable[0], "0 or 1 (or missing)", plain(given[unreadable[0]][i])
        elif isinstance(status, str) and status in ENDED_STATUSES:
            yield i, "status_as_of", ended, status
        elif status == "pending":
            yield i, "status_as_of", unborn, status
        elif kind == PATENT and flags["is_pending"] is True:
            yield i, "is_pending", unborn, 1
        elif kind == PATENT and flags["is_valid"] is False:
            yield i, "is_valid", ended, 0
        elif kind == PATENT and stated and remaining[i] == 0:
            yield i, "remaining_years", "a remaining term above 0: an expired patent cannot be pledged", 0
        elif kind == TRADEMARK and flags["is_registered"] is False:
            yield i, "is_registered", "a registered mark: an unregistered one cannot be pledged", 0


def bundle_value(
    asset_values: pd.DataFrame | Mapping[str, ArrayLike],
    loan_term_months: int,
    assumptions: BundleAssumptions | None = None,
    pledge_assumptions: PledgeAssumptions | None = None,
) -> BundleValuation:
    """Value, liquidation value per route and pledge value of the assets pledged together for one loan.

    `asset_values` (a DataFrame, or a mapping of column to values) has one row per asset: asset_kind
    ("patent" / "trademark"), patent_type (invention / utility_model / design; None for a trademark),
    value_cny (>= 0) and remaining_years (legal remaining term, >= 0); an optional asset_id names rows
    in messages and in the result (each asset once), and the optional STATUS_COLUMNS refuse a right that
    has ended. Every bad row is listed in one `InvalidData`. See the module docstring for the formulas.
    """
    problems = _bundle_problems(asset_values, loan_term_months)
    if problems:
        raise InvalidData(problems, what="bundle")
    b = assumptions or BundleAssumptions()
    p = pledge_assumptions or PledgeAssumptions()
    term = int(loan_term_months)
    column = {c: np.asarray(asset_values[c], dtype=object).reshape(-1) for c in ASSET_COLUMNS}
    types = asset_types(column["asset_kind"], column["patent_type"])
    value, remaining = numbers_or_nan(column["value_cny"]), numbers_or_nan(column["remaining_years"])

    total = float(value.sum())
    share = value / total if total > 0 else np.zeros_like(value)
    largest = float(share.max())
    threshold = b.concentration_threshold
    haircut = b.max_concentration_haircut * max(0.0, largest - threshold) / (1.0 - threshold)

    exposure = term / 12.0 + b.disposal_years
    coverage = np.minimum(1.0, remaining / exposure) if exposure > 0 else np.ones_like(remaining)
    if b.trademark_renewal_assumed:
        coverage = np.where(types == TRADEMARK, 1.0, coverage)
    life_factor = 1.0 - b.max_life_haircut * (1.0 - coverage)
    after_life = value * life_factor
    contribution = after_life * (1.0 - haircut)

    discount = p.discount(types)
    liquidation = contribution * (1.0 - discount)
    pledge = pledge_value(contribution, types, None, p)
    by_route = {r: float((contribution * (1.0 - p.discount(types, r))).sum()) for r in ROUTES}
    d = p.liquidation_discounts
    route = {
        "assigned": lambda t: p.route_by_asset[t],
        "best": lambda t: min(ROUTES, key=lambda r: d[r][t]),
        "expected": lambda t: "expected",
    }[p.route_choice]
    routes = np.array([route(t) for t in types], dtype=object)

    ids = (
        {"asset_id": np.asarray(asset_values["asset_id"], dtype=object)} if "asset_id" in asset_values else {}
    )
    assets = {
        **ids,
        "asset_type": types.astype(str),
        "value_cny": value,
        "share": share,
        "remaining_years": remaining,
        "coverage": coverage,
        "life_factor": life_factor,
        "contribution_cny": contribution,
        "route": routes.astype(str),
        "discount": discount,
        "liquidation_value_cny": liquidation,
        "pledge_rate": np.array([p.pledge_rates[t] for t in types], dtype="float64"),
        "pledge_value_cny": pledge,
    }
    return BundleValuation(
        total_value_cny=total,
        largest_share=largest,
        concentration_haircut=haircut,
        shortest_remaining_years=float(remaining.min()),
        exposure_years=exposure,
        life_adjustment_cny=float((value - after_life).sum()),
        bundle_value_cny=float(contribution.sum()),
        liquidation_by_route=by_route,
        liquidation_value_cny=float(liquidation.sum()),
        pledge_value_cny=float(pledge.sum()),
        asset_columns=assets,
        loan_term_months=term,
        term_within_cap=term <= p.max_term_months,
        assumptions=b,
        pledge_assumptions=p,
    )
