"""The loan decision, for one application and for a whole book alike.

`decide(applications, valuer, scorer, policies, granted_before)` takes applications as plain records
(underwriting.applications.Application: the credit report, the pledged assets, the loan asked), the two
fitted models and the policies, and gives each application its `Decision` (or the `InvalidData` that refuses
it), in order. One application is a batch of one: the service decides with it (POST /v1/applications), and
`ipcredit decide` decides a whole book with it, so both give the same figures, float for float.

For a batch of applications, at once:

1. the credit reports and the loans are parsed (features.schema), and the application's own rules checked
   (the report dated on or before the application, the owner facts: underwriting.applications);
2. every pledged asset of every application is valued in one pass, with its factors (valuation.valuer: the
   asset rules of valuation.assets refuse what no asset can be), and each application's bundle valued
   (valuation.pledge: a right that has ended, or is pledged twice, cannot be);
3. the scoring rows are built by the batch table's formulas (underwriting.table.application_rows) and scored
   in one pass, with exact score points (scoring.model.decide_rows) and the decision policy's rules;
4. the lending policy gives the credit line, expected loss and its split and the subsidy
   (underwriting.policy), and the hold rule holds an approval of a term beyond the pledge policy's cap.

A `Decision` holds the documents stored for one application (lending.records): `result` (the bundle's
valuation, PD, score, grade, recommendation and its rules, credit line, expected loss and its split, subsidy,
reasons in both languages, and the policies it was made with) and `explanation` (the SHAP points of the
score with the values read, the factors of each asset's value). Re-run a stored decision with `rerun`: with
the stored policies it reproduces the stored documents exactly; with others it says what differs.

The subsidy: each application is decided as the service decides it, with the subsidy its enterprise's
approvals of the year were granted before it (`granted_before`; lending.records reads it, an approval grants
it within the cap: underwriting.review), never shared with the other applications of the batch: a pending
application is granted nothing until it is approved.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from features.errors import InvalidData, Problem, first_per_field, require_features
from features.schema import Enterprise, LoanApplication, parse_each, record_columns
from features.values import json_value
from scoring.model import PDModelMixin, Scored, score_batch
from scoring.reasons import MAX_REASONS, Reason, beyond_term_cap, reason_for
from scoring.scale import DecisionPolicy
from underwriting.applications import Application, ApplicationRecord, applicant_problems, own_facts
from underwriting.documents import differences
from underwriting.policy import LOAN_COLUMNS, LendingPolicy, loan_term_columns, loan_terms
from underwriting.table import ID, application_rows
from valuation.documents import asset_documents, bundle_columns
from valuation.pledge import BundleValuation, unpledgeable
from valuation.valuer import Valuer

LANGUAGES = ("zh", "en")
LOSS_SHARES = {"bank": "el_bank", "guarantor": "el_guarantor", "insurer": "el_insurer", "fund": "el_fund"}
LOAN_FIGURES = ("credit_line_cny", "ead_cny", "lgd", "expected_loss_cny", "interest_subsidy_cny")


# The asset columns a bundle is valued from, as each asset was received.
@dataclass(frozen=True)
class Policies:
    """The policies a decision is made with, stored with it: the decision policy (cut-offs, decline and hold
    rules: scoring.scale.DecisionPolicy) and the lending policy (credit line, loss, subsidy:
    underwriting.policy.LendingPolicy). The pledge policy is the valuation model's own (its bundle and pledge
    assumptions, stored with each bundle's valuation)."""

    decision: DecisionPolicy = field(default_factory=DecisionPolicy)
    lending: LendingPolicy = field(default_factory=LendingPolicy)

    def stored(self) -> dict[str, Any]:
        """The policies as a decision's result keeps them."""
        return {"policy": self.decision.to_dict(), "lending_policy": self.lending.to_dict()}

    @classmethod
    def of(cls, result: Mapping[str, Any]) -> Policies:
        """The policies a stored decision was made with: a record made before a policy was kept was made with
        no decline rules (no `policy`) or with today's default lending policy (no `lending_policy`)."""
        decision = (
            DecisionPolicy.from_dict(result["policy"])
            if "policy" in result
            else DecisionPolicy(decline_flags=(), decline_limits=())
        )
        lending = LendingPolicy.from_dict(result["lending_policy"]) if "lending_policy" in result else None
        return cls(decision, lending or LendingPolicy())


@dataclass(frozen=True)
class Decision:
    """The documents stored for one application (lending.records.save_application): JSON values only."""

    result: dict[str, Any]
    explanation: dict[str, Any]


def decide(
    applications: Sequence[Application],
    valuer: Valuer,
    scorer: PDModelMixin,
    policies: Policies | None = None,
    granted_before: Sequence[float] | None = None,
) -> list[Decision | InvalidData]:
    """Each application's Decision, or the InvalidData that refuses it (every problem of it listed, fields
    named from the application's top: ``assets.claims``, ``loan.term_months``), in order; see the module
    docstring. `granted_before`: per application, the subsidy its enterprise's approvals of the year were
    granted (default none). A scoring model that reads features the rows do not give refuses the whole batch
    (features.errors.ModelMismatch): it was trained on another table."""
    policies = policies if policies is not None else Policies()
    granted = np.zeros(len(applications)) if granted_before is None else np.asarray(granted_before, float)
    batch = _Batch(applications)
    batch.parse()
    batch.value(valuer)
    decisions: dict[int, Decision] = {}
    live = batch.live()
    if live:
        rows = batch.rows(live)
        require_features(
            "scoring", scorer, rows, "an application's row (underwriting.table.application_rows)"
        )
        scored = scorer.decide_rows(rows, policies.decision, top=MAX_REASONS)
        for p in scored.problems:  # a row the scoring model cannot use (an extreme amount: an infinite LTV)
            batch.refuse(live[p.row], Problem(p.field, p.expected, p.got, None, p.record_id))
        good = np.array([not batch.problems[k] for k in live], dtype=bool)
        terms = _lending_figures(rows, scored, good, granted[live], policies.lending)
        figures = _Figures.of(rows, scored, terms, scorer)
        stored = policies.stored()  # the same for every decision of the batch: made once
        for i, k in enumerate(live):
            if good[i]:
                decisions[k] = batch.decision(k, i, figures, policies, stored, float(granted[k]), scorer)
    return [
        decisions[k] if k in decisions else InvalidData(_in_order(problems), "application")
        for k, problems in enumerate(batch.problems)
    ]


def decide_one(
    application: Application,
    valuer: Valuer,
    scorer: PDModelMixin,
    policies: Policies | None = None,
    granted_before: float = 0.0,
) -> Decision:
    """`decide` of one application (a batch of one); InvalidData when it is refused."""
    (decided,) = decide([application], valuer, scorer, policies, [granted_before])
    if isinstance(decided, InvalidData):
        raise decided
    return decided


def scoring_rows(applications: Sequence[Application], valuer: Valuer) -> dict[str, np.ndarray]:
    """The scoring rows `decide` builds for the applications (InvalidData naming the first refused one's
    problems): what the scoring model reads, in the batch table's column order."""
    batch = _Batch(applications)
    batch.parse()
    batch.value(valuer)
    for problems in batch.problems:
        if problems:
            raise InvalidData(_in_order(problems), "application")
    return batch.rows(list(range(len(applications))))


@dataclass(frozen=True)
class Rerun:
    """A stored decision decided again: the new documents, and where each differs from the stored one
    (`differences`: empty when the decision is reproduced; a policy that changed is among them)."""

    decision: Decision
    differences: list[str]


def rerun(
    request: Mapping[str, Any],
    result: Mapping[str, Any],
    explanation: Mapping[str, Any],
    valuer: Valuer,
    scorer: PDModelMixin,
    policies: Policies | None = None,
) -> Rerun:
    """Decide a stored application again from its stored request (the body as decided, ids filled in), with
    the policies it was made with (or `policies`, to see what a change of policy would change) and the subsidy
    granted before it, by the models given (load the stored `model_versions` with
    models.registry.load_recorded to reproduce it: it checks each version is still the stored run)."""
    record = ApplicationRecord.model_validate(request)
    application = record.application(str(result.get("application_id")), str(result.get("bank_id")))
    used = policies if policies is not None else Policies.of(result)
    again = decide_one(application, valuer, scorer, used, result.get("subsidy_granted_before_cny") or 0.0)
    found = differences(dict(result), again.result) + differences(
        dict(explanation), again.explanation, "explanation"
    )
    return Rerun(again, found)


def decide_loans(
    model: PDModelMixin,
    table: pd.DataFrame,
    *,
    decision: DecisionPolicy | None = None,
    lending: LendingPolicy | None = None,
    language: str = "zh",
) -> tuple[pd.DataFrame, list[Problem]]:
    """A scoring table scored (what `ipcredit score` writes): one row per input row, in input order: id, pd,
    score, grade, reason_codes, recommendation, reasons, the lending figures when the table has LOAN_COLUMNS,
    `error` for refused rows, and last the recommendation in `language` (批准 / 复核 / 拒绝; added after the
    others, which keep their places). The subsidy cap is shared by an enterprise's loans in the table, in row
    order (underwriting.policy.interest_subsidy); `decide` gives the decisions of applications received as
    records, as the service does."""
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


# ---------------------------------------------------------------------------------------------------------
# the batch


# The loan record's fields that the body holds elsewhere than in `loan`: a problem is named where it was sent.
_LOAN_FIELDS_ELSEWHERE = {"application_id": "application_id", "enterprise_id": "enterprise.enterprise_id"}


class _Batch:
    """The applications of one `decide` call as they are worked on: their parsed parts, their assets valued
    (all of them at once, in application order) and bundled, and the problems that refuse each."""

    def __init__(self, applications: Sequence[Application]):
        self.applications = applications
        self.problems: list[list[Problem]] = [[] for _ in applications]
        self.enterprises: list[Enterprise | None] = []
        self.loans: list[LoanApplication | None] = []
        self.assets: list[dict[str, Any]] = []  # every valued asset, owner facts filled
        self.owner = np.zeros(0, dtype=np.intp)  # each asset's application
        self.first = np.zeros(len(applications) + 1, dtype=np.intp)  # application k's: first[k]:first[k + 1]
        self.values: dict[str, Any] = {}
        self.parts: dict[str, np.ndarray] = {}  # the assets' columns a bundle is made of
        self.bundles: dict[int, BundleValuation] = {}

    def refuse(self, k: int, *problems: Problem) -> None:
        self.problems[k].extend(problems)

    def live(self) -> list[int]:
        return [k for k, problems in enumerate(self.problems) if not problems]

    def parse(self) -> None:
        """The loans and credit reports parsed, each problem named from the application's top."""
        apps = self.applications
        loans = [
            {
                **a.loan,
                "application_id": a.application_id,
                "enterprise_id": a.enterprise_id,
                "bank_id": a.bank_id,
                "pledged_assets": [
                    {"asset_kind": str(x.get("asset_kind")), "asset_id": str(x.get("asset_id"))}
                    for x in a.assets
                ],
            }
            for a in apps
        ]
        self.loans, loan_problems = parse_each(LoanApplication, loans)  # an id twice in a batch: refused
        # Several applications of one enterprise may carry the same report: no key is unique across them.
        self.enterprises, report_problems = parse_each(Enterprise, [a.enterprise for a in apps], keys=False)
        for p in loan_problems:
            field = _LOAN_FIELDS_ELSEWHERE.get(p.field, f"loan.{p.field}")
            self.refuse(p.row, Problem(field, p.expected, p.got, None, p.record_id))
        for p in report_problems:
            self.refuse(p.row, Problem(f"enterprise.{p.field}", p.expected, p.got, None, p.record_id))
        for k, (loan, report) in enumerate(zip(self.loans, self.enterprises, strict=True)):
            if loan is not None and report is not None and report.report_date > loan.application_date:
                expected = f"a credit report dated on or before the application date {loan.application_date}"
                self.refuse(k, Problem("enterprise.report_date", expected, str(report.report_date)))

    def value(self, valuer: Valuer) -> None:
        """Every pledged asset of the applications still standing valued in one pass (with its factors), and
        each application's bundle; every problem of an application's assets at once, in row order: the
        applicant's (owner facts, dates), the pledge's (rights that cannot be pledged) and the values'."""
        live = self.live()
        counts = np.zeros(len(self.applications), dtype=np.intp)
        for k in live:
            report, assets = self.enterprises[k], self.applications[k].assets
            self.refuse(k, *applicant_problems(report, assets, self.loans[k].application_date))
            self.assets += [own_facts(report, asset) for asset in assets]
            counts[k] = len(assets)
        self.first[1:] = np.cumsum(counts)
        self.owner = np.repeat(np.arange(len(self.applications)), counts)
        if not self.assets:
            return
        self.values, problems = valuer.value_records(self.assets, explain=True)
        self.parts = parts = bundle_columns(self.assets)
        for p in (*unpledgeable(parts), *problems):
            if p.row is None:  # not of one asset (none is known): every application's
                for k in live:
                    self._refuse_asset(k, None, p)
            else:
                self._refuse_asset(int(self.owner[p.row]), int(p.row - self.first[self.owner[p.row]]), p)
        for k in live:
            if self.problems[k]:
                continue
            at = slice(self.first[k], self.first[k + 1])
            group = {c: values[at] for c, values in parts.items()}
            group["value_cny"] = self.values["value_cny"][at]
            try:
                self.bundles[k] = valuer.bundle_of(group, self.loans[k].term_months)
            except InvalidData as e:  # an asset pledged twice
                for p in e.problems:
                    self._refuse_asset(k, p.row, p)

    def _refuse_asset(self, k: int, row: int | None, p: Problem) -> None:
        """A problem of application k's asset at `row` among its assets (None: of no one asset)."""
        field = p.field if p.field.startswith("assets.") else f"assets.{p.field}"
        self.refuse(k, Problem(field, p.expected, p.got, row, p.record_id))

    def rows(self, live: list[int]) -> dict[str, np.ndarray]:
        """The scoring rows of the applications `live` (underwriting.table.application_rows)."""
        loans = record_columns([self.loans[k] for k in live], LoanApplication)
        enterprises = record_columns([self.enterprises[k] for k in live], Enterprise)
        enterprises["as_of"] = loans["application_date"]
        at = np.concatenate([np.arange(self.first[k], self.first[k + 1]) for k in live])
        assets = {
            ID: np.array([self.applications[k].application_id for k in self.owner[at]], dtype=object),
            **{c: values[at] for c, values in self.parts.items()},
            **{c: np.asarray(values)[at] for c, values in self.values.items() if c != "factors"},
        }
        return application_rows(loans, enterprises, assets, [self.bundles[k] for k in live])

    def decision(
        self,
        k: int,
        i: int,
        figures: _Figures,
        policies: Policies,
        stored: Mapping[str, Any],
        granted: float,
        scorer: PDModelMixin,
    ) -> Decision:
        """The documents of application k, row i of the batch's rows."""
        application, bundle = self.applications[k], self.bundles[k]
        at = slice(self.first[k], self.first[k + 1])
        records = self.assets[at]
        values = {c: np.asarray(v)[at] for c, v in self.values.items() if c != "factors"}
        recommendation, held = policies.decision.held(str(figures.recommendation[i]), bundle.term_within_cap)
        own = scorer.own_reasons  # the model's own reason texts (its spec's), ahead of the built-in table
        cap_months = bundle.pledge_assumptions.max_term_months
        names = list(scorer.spec.feature_names)
        result = {
            "application_id": application.application_id,
            "enterprise_id": application.enterprise_id,
            "bank_id": application.bank_id,
            "amount_cny": self.loans[k].amount_cny,
            "valuation": {"assets": asset_documents(values, records), "bundle": bundle.summary()},
            "pd": figures.pd[i],
            "score": figures.score[i],
            "grade": figures.grade[i],
            "recommendation": recommendation,
            "recommendation_label": {lang: DecisionPolicy.label(recommendation, lang) for lang in LANGUAGES},
            **{name: figures.terms[name][i] for name in LOAN_FIGURES},
            "expected_loss_split": {share: figures.terms[column][i] for share, column in LOSS_SHARES.items()},
            "subsidy_cap_cny": policies.lending.subsidy_cap_cny,
            "subsidy_granted_before_cny": granted,
            "reasons": [
                {
                    "code": r["code"],
                    "feature": r["feature"],
                    "points": r["points"],
                    "zh": reason_for(r["feature"], own).zh,
                    "en": reason_for(r["feature"], own).en,
                }
                for r in figures.reasons[i]
            ],
            "declined_by": [_rule(reason_for(f, own)) for f in figures.declined_by[i]],
            "held_by": [_rule(beyond_term_cap(bundle.loan_term_months, cap_months, own))] if held else [],
            **stored,
        }
        explanation = {
            "score": {
                "base_points": figures.base,
                "points": dict(zip(names, figures.points[i], strict=True)),
                "values": {name: figures.values[name][i] for name in names},
            },
            "assets": [
                {"asset_id": record["asset_id"], "factors": factors}
                for record, factors in zip(records, self.values["factors"][at], strict=True)
            ],
        }
        return Decision(json_value(result), json_value(explanation))


@dataclass(frozen=True)
class _Figures:
    """A batch's scores and lending figures as Python values, row for row: taken out of their arrays once for
    every document of the batch."""

    pd: list[float]
    score: list[float]
    grade: list[str | None]
    recommendation: list[str | None]
    declined_by: list[list[str]]
    reasons: list[list[dict]]
    points: list[list[float]]
    base: float
    values: dict[str, list]  # each feature's value, as the model read it
    terms: dict[str, list[float]]

    @classmethod
    def of(
        cls, rows: Mapping[str, np.ndarray], scored: Scored, terms: Mapping[str, np.ndarray], scorer
    ) -> _Figures:
        names = scorer.spec.feature_names
        return cls(
            scored.pd.tolist(),
            scored.score.tolist(),
            list(scored.grade),
            list(scored.recommendation),
            scored.declined_by,
            scored.reasons,
            scored.points.tolist(),
            scored.base,
            {name: np.asarray(rows[name]).tolist() for name in names},
            {name: np.asarray(values).tolist() for name, values in terms.items()},
        )


def _lending_figures(
    rows: Mapping[str, np.ndarray],
    scored: Scored,
    good: np.ndarray,
    granted: np.ndarray,
    policy: LendingPolicy,
) -> dict[str, np.ndarray]:
    """The lending policy's figures of the good rows (NaN elsewhere): each application its own enterprise,
    after what its enterprise was granted before it (the subsidy is never shared within a batch)."""
    n = len(good)
    figures: dict[str, np.ndarray] = {}
    if good.any():
        table = {c: np.asarray(rows[c])[good] for c in LOAN_COLUMNS}
        positions = np.arange(int(good.sum()))
        table["enterprise_id"] = positions
        found = loan_term_columns(
            table,
            scored.pd[good],
            scored.grade[good],
            policy,
            already_granted=dict(zip(positions.tolist(), granted[good].tolist(), strict=True)),
        )
        for name, values in found.items():
            figures[name] = np.full(n, np.nan)
            figures[name][good] = values
    return figures


def _rule(reason: Reason) -> dict[str, str]:
    return {"code": reason.code, "feature": reason.feature, "zh": reason.zh, "en": reason.en}


def _in_order(problems: list[Problem]) -> list[Problem]:
    """An application's problems, one per value, those of no asset first, then by the asset's row."""
    return sorted(first_per_field(problems), key=lambda p: (p.row is not None, p.row or 0))
