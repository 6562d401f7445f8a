"""The fitted valuation a bank uses: value, interval, income cross-check, GB/T scores, explanation, bundle.

`Valuer` joins the value model (valuation.model) with the methods a Chinese appraisal is expected
to show beside it: the relief-from-royalty income value (valuation.income), the GB/T 42748 indicator
scores and stars (valuation.indicators) and the bundle and pledge rules (valuation.pledge). It works
on the flat valuation table (valuation.data) and on records (dicts with the same columns).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from features.errors import InvalidData, Problem, first_per_field
from features.spec import FeatureSpec
from valuation import income
from valuation._common import Columns, raw, set_flags, text
from valuation.assets import asset_problems
from valuation.data import EXTRA_INPUTS, INCOME_COLUMNS
from valuation.indicators import IndicatorScorer, TrademarkScorer
from valuation.model import ValueModel
from valuation.pledge import (
    STATUS_COLUMNS,
    BundleAssumptions,
    BundleValuation,
    PledgeAssumptions,
    bundle_value,
)

# The threads that explain a request's assets while its other figures are computed (Valuer.value_records):
# one per request in flight, so that no request waits behind another's explanation (one bank's 1,000-asset
# valuation held another bank's application for the whole of its own when they shared one thread).
_EXPLAINER = ThreadPoolExecutor(max_workers=8, thread_name_prefix="ipcredit-explain")

OUTPUT_COLUMNS = ["value_cny", "value_low_cny", "value_high_cny", "income_value_cny"]
SCORE_COLUMNS = ["legal_score", "technical_score", "economic_score", "total_score", "stars"]
# A trademark's market score (its dimension in place of the technical one), written last, after `error`, so
# that the columns a script reads by position keep their places.
LAST_COLUMNS = ["market_score"]


@dataclass
class Valuer:
    """A fitted value model plus the cross-check, scoring and pledge assumptions it is used with."""

    model: ValueModel
    patent_scorer: IndicatorScorer | None = None
    trademark_scorer: TrademarkScorer | None = None
    income_assumptions: income.IncomeAssumptions = field(default_factory=income.IncomeAssumptions)
    cross_check_factor: float = 3.0
    bundle_assumptions: BundleAssumptions = field(default_factory=BundleAssumptions)
    pledge_assumptions: PledgeAssumptions = field(default_factory=PledgeAssumptions)

    @property
    def spec(self) -> FeatureSpec:
        return self.model.spec

    @property
    def inputs(self) -> frozenset[str]:
        return inputs_of(self.spec)

    @classmethod
    def fit(
        cls, table: pd.DataFrame, spec: FeatureSpec, *, model: ValueModel | None = None, **options
    ) -> Valuer:
        """Fit the scorers on the table's patents and trademarks around a value model fitted on the same
        table (or the one given, already fitted). A scorer is fitted only when the columns it reads are
        among the valuer's inputs (the spec's features and EXTRA_INPUTS): a column outside them is not given
        to the valuer once it is served, so a bank's spec that leaves them out gets no GB/T scores."""
        model = model if model is not None else ValueModel(spec).fit(table)
        kinds = table["asset_kind"].astype(str) if "asset_kind" in table else pd.Series("", index=table.index)
        given = table[[c for c in table.columns if c in inputs_of(spec)]]
        patent_scorer = trademark_scorer = None
        patents, trademarks = given[kinds == "patent"], given[kinds == "trademark"]
        if len(patents) and _has(patents, IndicatorScorer().required_columns()):
            patent_scorer = IndicatorScorer().fit(patents)
        if len(trademarks) and _has(trademarks, TrademarkScorer().required_columns()):
            trademark_scorer = TrademarkScorer().fit(trademarks)
        return cls(model, patent_scorer, trademark_scorer, **options)

    # --- batch ---------------------------------------------------------------------------------

    def value(self, table: pd.DataFrame, level: float | None = None) -> tuple[pd.DataFrame, list[Problem]]:
        """One row per input row, in input order: id, value and interval, income value and cross-check,
        sub-scores and stars, and `error` for rows refused (listed in the problems; nothing dropped)."""
        if not _default_index(table.index):
            table = table.reset_index(drop=True)
        table = _with_inapplicable_columns(table, self.model)
        X, problems = self.model.encoder_.encode(table)
        columns = Columns(table)
        # one problem per value: the encoder's when both refuse it (a negative count: its bound)
        problems = first_per_field([*problems, *asset_problems(columns, self.spec.id, self.inputs)])
        figures = self._figures(columns, X, self.model._groups(columns), problems, level)
        return pd.DataFrame(figures), problems

    def _figures(
        self,
        columns: Columns,
        X: np.ndarray,
        groups: np.ndarray,
        problems: list[Problem],
        level: float | None,
    ) -> dict[str, Any]:
        """`value`'s columns from the rows' columns, their encoded matrix and interval groups, and the
        encoder's problems."""
        n = len(columns)
        good = np.ones(n, dtype=bool)
        good[[p.row for p in problems]] = False
        out: dict[str, Any] = {}
        if self.spec.id and self.spec.id in columns:
            out[self.spec.id] = columns.get(self.spec.id, raw)
        figures = {
            c: np.full(n, np.nan) for c in [*OUTPUT_COLUMNS, "income_ratio", *SCORE_COLUMNS, *LAST_COLUMNS]
        }
        flag = np.zeros(n, dtype=bool)
        if good.any():
            kept = np.flatnonzero(good)
            rows = columns if kept.size == n else columns.take(kept)
            interval = self.model.interval(X[good], groups[good], level)
            for c, values in interval.items():
                figures[c][good] = values
            figures["income_value_cny"][good] = self._income_value(rows)
            check = income.cross_check(
                figures["value_cny"][good], figures["income_value_cny"][good], self.cross_check_factor
            )
            figures["income_ratio"][good] = check.ratio
            flag[good] = check.flag
            for at, scores in self._indicator_scores(rows):
                for c in (*SCORE_COLUMNS, *LAST_COLUMNS):
                    if c in scores:
                        figures[c][kept[at]] = scores[c]
        last = {c: figures.pop(c) for c in LAST_COLUMNS}
        out.update(figures)
        # missing, not false, where there is nothing to compare: no income value, or a refused row
        out["cross_check_flag"] = pd.arrays.BooleanArray(flag, ~good | np.isnan(figures["income_value_cny"]))
        out["error"] = _errors(problems, n)
        out.update(last)
        return out

    def income_value(self, table: pd.DataFrame) -> np.ndarray:
        """Relief-from-royalty value per row; missing where the table lacks the owner's facts."""
        return self._income_value(Columns(table))

    def indicator_scores(self, table: pd.DataFrame) -> pd.DataFrame:
        """GB/T 42748 sub-scores and stars for the rows whose kind has a fitted scorer."""
        parts = [
            pd.DataFrame(
                {c: scores[c] if c in scores else np.full(at.size, np.nan) for c in SCORE_COLUMNS},
                index=table.index[at],
            )
            for at, scores in self._indicator_scores(Columns(table))
        ]
        return pd.concat(parts) if parts else pd.DataFrame(columns=SCORE_COLUMNS)

    def _kinds(self, rows: Columns) -> np.ndarray:
        return rows.get("asset_kind", text) if "asset_kind" in rows else np.full(len(rows), "", dtype=object)

    def _income_value(self, rows: Columns) -> np.ndarray:
        """Relief-from-royalty value per row; missing where the owner's facts are: a table without their
        columns, or a patent whose owner's count of patents in force is not given (it splits the revenue);
        and for a kind whose own columns the table lacks (income.PATENT_FEATURES, TRADEMARK_FEATURES: a
        bank's table that does not carry them has no income approach for that kind)."""
        out = np.full(len(rows), np.nan)
        given = {c for c in self.inputs if c in rows}  # what a served valuer is given, whatever else came
        if not all(c in given for c in INCOME_COLUMNS) or "asset_kind" not in given:
            return out
        kinds = self._kinds(rows)
        counted = ~np.isnan(rows.get("owner_patents_in_force"))
        a = self.income_assumptions
        for kind, needed in (("patent", income.PATENT_FEATURES), ("trademark", income.TRADEMARK_FEATURES)):
            mask = (kinds == kind) & counted if kind == "patent" else kinds == kind
            if not mask.any() or not all(c in given for c in needed):
                continue
            assets = rows.take(mask)
            revenue, industry = assets.get("owner_revenue_cny", raw), assets.get("owner_industry", text)
            high_tech = assets.get("owner_high_tech", set_flags)
            if kind == "patent":
                count = assets.get("owner_patents_in_force", raw)
                inputs = income.patent_inputs(
                    assets, revenue, industry, count, high_tech=high_tech, assumptions=a
                )
            else:
                inputs = income.trademark_inputs(
                    assets, revenue, industry, high_tech=high_tech, assumptions=a
                )
            out[mask] = income.inputs_value(inputs, a)
        return out

    def _indicator_scores(self, rows: Columns) -> list[tuple[np.ndarray, dict[str, np.ndarray]]]:
        """(positions among the rows, scores) for each kind with a fitted scorer and rows of its kind."""
        parts = []
        kinds = self._kinds(rows)
        for kind, scorer in (("patent", self.patent_scorer), ("trademark", self.trademark_scorer)):
            at = np.flatnonzero(kinds == kind)
            if scorer is not None and at.size:
                parts.append((at, scorer.transform_columns(rows.take(at))))
        return parts

    def explain(self, table: pd.DataFrame, top: int | None = None) -> list[list[dict]]:
        """Multiplicative factors on the CNY value per row (base first); they multiply to the value."""
        problems = self.model.encoder_.row_problems(table)
        if problems:
            raise InvalidData(problems, "assets to explain")
        return self.model.explain(table, top)

    def bundle(self, table: pd.DataFrame, loan_term_months: int) -> tuple[pd.DataFrame, BundleValuation]:
        """Value each asset pledged together, then the bundle value, liquidation and pledge value.
        A bundle with any refused asset is refused whole: a pledge value cannot leave an asset out."""
        values, problems = self.value(table)
        if problems:
            raise InvalidData(problems, "bundle assets")
        table = table.reset_index(drop=True)
        has_ids = self.spec.id and self.spec.id in table
        assets = {
            "asset_id": table[self.spec.id] if has_ids else np.arange(len(table)),
            "asset_kind": table["asset_kind"].astype(str),
            "patent_type": table["patent_type"] if "patent_type" in table else np.full(len(table), None),
            "value_cny": values["value_cny"],
            "remaining_years": table["remaining_years"],
            **{c: table[c] for c in STATUS_COLUMNS if c in table},
        }
        return values, self.bundle_of(assets, loan_term_months)

    def bundle_of(self, assets: Mapping[str, Any], loan_term_months: int) -> BundleValuation:
        """The bundle of assets already valued (columns asset_id, asset_kind, patent_type, value_cny and
        remaining_years, and the status columns where known, as arrays, Series or a DataFrame) by this
        valuer's bundle and pledge assumptions (valuation.pledge.bundle_value); a patent type counts only
        on patents."""
        kinds = np.asarray(assets["asset_kind"], dtype=object)
        patent_types = np.where(kinds == "patent", np.asarray(assets["patent_type"], dtype=object), None)
        given = ("asset_id", "asset_kind", "value_cny", "remaining_years", *STATUS_COLUMNS)
        columns = {c: assets[c] for c in given if c in assets}
        return bundle_value(
            columns | {"patent_type": patent_types},
            loan_term_months,
            self.bundle_assumptions,
            self.pledge_assumptions,
        )

    # --- records -------------------------------------------------------------------------------

    def value_records(
        self, records: Sequence[Mapping], level: float | None = None, *, explain: bool = False
    ) -> tuple[dict[str, Any], list[Problem]]:
        """Records (mappings of the table's columns to Python values, None where missing) valued as the
        rows of their table are: `value`'s columns, as arrays, and with `explain` each record's factors
        (`explain`'s, None for a refused record) under "factors". A request's path: no DataFrame is built,
        the records are encoded once, one by one (SpecEncoder.encode_records), and read as columns by
        Columns.of_records."""
        _check_records(records)
        names = list(dict.fromkeys([*self.spec.feature_names, *(k for r in records for k in r)]))
        X, problems = self.model.encoder_.encode_records(records)
        columns = Columns.of_records(records, names)
        # one problem per value: the encoder's when both refuse it (a negative count: its bound)
        problems = first_per_field([*problems, *asset_problems(columns, self.spec.id, self.inputs)])
        groups = self.model._groups(columns)
        refused = {p.row for p in problems}
        good = [i for i in range(len(records)) if i not in refused]
        if explain and good:
            # TreeSHAP runs in LightGBM without the GIL: on another thread it overlaps the figures below.
            explaining = _EXPLAINER.submit(
                self.model.explain_rows, X[good], groups[good], [records[i] for i in good]
            )
        figures = self._figures(columns, X, groups, problems, level)
        if explain:
            factors: list[list[dict] | None] = [None] * len(records)
            for i, row_factors in zip(good, explaining.result() if good else [], strict=True):
                factors[i] = row_factors
            figures["factors"] = factors
        return figures, problems

    def explain_records(self, records: Sequence[Mapping], top: int | None = None) -> list[list[dict]]:
        return self.explain(_records_frame(records, self.spec), top)


def _with_inapplicable_columns(table: pd.DataFrame, model: ValueModel) -> pd.DataFrame:
    """A table of patents only has no trademark columns (and the other way round): absent columns that
    are not required are added as missing; an absent required column is still refused by name."""
    absent = [c for c in model.spec.feature_names if c not in table and c not in model.encoder_.required_]
    return table.assign(**{c: np.nan for c in absent}) if absent else table


def _default_index(index: pd.Index) -> bool:
    """The index `reset_index(drop=True)` would give: 0, 1, ..., n - 1."""
    return isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1


def _has(table: pd.DataFrame, columns: Sequence[str]) -> bool:
    return all(c in table.columns for c in columns)


def _records_frame(records: Sequence[Mapping], spec: FeatureSpec) -> pd.DataFrame:
    _check_records(records)
    frame = pd.DataFrame.from_records(list(records))
    for name in spec.feature_names:  # a record may leave out a feature that may be missing
        if name not in frame:
            frame[name] = np.nan
    return frame


def inputs_of(spec: FeatureSpec) -> frozenset[str]:
    """The columns a valuer reads (besides the id): its spec's features and EXTRA_INPUTS. A served valuer
    is given these and nothing else (models.tasks logs them), so its methods read no other column even where
    a request carries more: the service and the logged model answer alike."""
    return frozenset({*spec.feature_names, *EXTRA_INPUTS})


def _check_records(records: Sequence[Mapping]) -> None:
    if not all(isinstance(r, Mapping) for r in records):
        raise InvalidData(
            [
                Problem("record", "a mapping of column to value", type(r).__name__, i)
                for i, r in enumerate(records)
                if not isinstance(r, Mapping)
            ],
            "records",
        )


def _errors(problems: list[Problem], n: int) -> np.ndarray:
    errors = np.full(n, "", dtype=object)
    for p in problems:
        text = f"{p.field}: expected {p.expected}; got {p.got!r}"
        errors[p.row] = f"{errors[p.row]}; {text}" if errors[p.row] else text
    return errors
