"""The same lifecycle for a scoring model: any fitted scorer with `score_table(df) -> (DataFrame, problems)`
plugs in. Here a small logistic scorer defined below (so that these tests do not follow the scoring package
while it changes), on a synthetic loan table.

Versions, in order: s1 the full model without --promote (logged, not champion); s2 a weak model (industry
only) that becomes the first champion; s3 the full model, promoted (higher AUC); s4 the weak model again,
refused (AUC lower than the champion's by more than the margin).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from scipy.special import expit
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from features.encoder import SpecEncoder
from features.errors import Problem
from features.spec import FeatureSpec
from models import lifecycle, registry
from models.lifecycle import RunOptions
from models.store import configure
from models.tasks import ScoringGate
from scoring.validation import metrics

NAME = "ipcredit-scoring"


class LogisticScorer:
    """A scorer with the interface the lifecycle needs: `spec`, `score_table` and (for the SHAP plot)
    `contributions` and `encoder_`. PD from a logistic regression on the spec-encoded features."""

    def __init__(self, spec: FeatureSpec, seed: int = 0):
        self.spec = spec
        self.seed = seed

    def fit(self, df: pd.DataFrame) -> LogisticScorer:
        self.encoder_ = SpecEncoder(self.spec).fit(df)
        X = self.encoder_.transform(df).to_numpy()
        self.mean_ = X.mean(axis=0)
        self.model_ = LogisticRegression(random_state=self.seed).fit(X - self.mean_, df[self.spec.target])
        return self

    def get_params(self, deep: bool = False) -> dict:
        return {"spec": self.spec, "seed": self.seed}

    def contributions(self, df: pd.DataFrame) -> pd.DataFrame:
        """Log-odds contribution of each feature (exact for a linear model), minus sign: score points."""
        X = self.encoder_.transform(df).to_numpy() - self.mean_
        return pd.DataFrame(-X * self.model_.coef_[0], columns=list(self.spec.feature_names), index=df.index)

    def score_table(self, df: pd.DataFrame) -> tuple[pd.DataFrame, list[Problem]]:
        df = df.reset_index(drop=True)
        problems = self.encoder_.row_problems(df)
        bad = np.zeros(len(df), dtype=bool)
        bad[[p.row for p in problems]] = True
        out = pd.DataFrame({"loan_id": df["loan_id"], "pd": np.nan, "score": np.nan})
        out["grade"] = pd.Series([None] * len(df), dtype=object)
        out["reason_codes"] = ""
        good = df[~bad]
        if len(good):
            X = self.encoder_.transform(good).to_numpy() - self.mean_
            pd_ = self.model_.predict_proba(X)[:, 1]
            out.loc[~bad, "pd"] = pd_
            out.loc[~bad, "score"] = 600 - 28.85 * np.log(pd_ / (1 - pd_) * 50)
            out.loc[~bad, "grade"] = np.where(pd_ < 0.05, "A", np.where(pd_ < 0.15, "B", "C"))
            worst = self.contributions(good).idxmin(axis=1)
            out.loc[~bad, "reason_codes"] = worst.to_numpy()
        out["error"] = ["; ".join(str(p) for p in problems if p.row == i) for i in range(len(df))]
        return out, problems


@dataclass
class TrainedScoring:
    scorer: LogisticScorer
    metrics: dict
    test: pd.DataFrame


def loans(n: int = 4000, seed: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "loan_id": [f"L{i:05d}" for i in range(n)],
            "applied": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 500, n), unit="D"),
            "overdue_days": rng.poisson(3, n).astype("float64"),
            "equity_ratio": rng.uniform(0, 1, n),
            "industry": rng.choice(["manufacturing", "software", "biotech"], n),
        }
    )
    logit = -2.6 + 0.35 * df["overdue_days"] - 2.0 * df["equity_ratio"] + 0.5 * (df["industry"] == "biotech")
    df["defaulted"] = (rng.random(n) < expit(logit)).astype("float64")
    return df


FULL = FeatureSpec.from_dict(
    {
        "target": "defaulted",
        "id": "loan_id",
        "task": "scoring",
        "features": [
            {"name": "overdue_days", "type": "numeric", "monotone": "increasing"},
            {"name": "equity_ratio", "type": "numeric", "monotone": "decreasing"},
            {"name": "industry", "type": "categorical"},
        ],
    }
)
WEAK = FeatureSpec.from_dict({**FULL.to_dict(), "features": [{"name": "industry", "type": "categorical"}]})


def train(table: pd.DataFrame, spec: FeatureSpec, seed: int) -> TrainedScoring:
    fit_rows, test = train_test_split(table, test_size=0.25, random_state=seed)
    scorer = LogisticScorer(spec, seed).fit(fit_rows)
    scored, _ = scorer.score_table(test)
    return TrainedScoring(scorer, metrics(test[spec.target], scored["pd"]), test)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    home = tmp_path_factory.mktemp("ipcredit-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("IPCREDIT_HOME", str(home))
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{home / 'mlflow.db'}")
        mp.delenv("MLFLOW_REGISTRY_URI", raising=False)
        configure()
        yield home


@pytest.fixture(scope="module")
def table():
    return loans()


@pytest.fixture(scope="module")
def versions(store, table):
    gate = ScoringGate(auc_margin=0.005, ece_bound=0.02, ece_margin=0.02)
    out = {}
    for key, spec, promote in (
        ("s1", FULL, False),
        ("s2", WEAK, True),
        ("s3", FULL, True),
        ("s4", WEAK, True),
    ):
        out[key] = lifecycle.train_and_log(
            "scoring",
            table,
            spec,
            train,
            data_source={"path": "loans()"},
            options=RunOptions(seed=0, promote=promote, gate=gate, shap_rows=150),
        )
    return out


def test_the_gate_promotes_on_auc_and_calibration(versions):
    s1, s2, s3, s4 = (versions[k] for k in ("s1", "s2", "s3", "s4"))
    assert s1.verdict.decision == "not requested" and s1.verdict.champion_version is None
    assert s2.verdict.decision == "first champion"
    assert s3.verdict.decision == "promoted" and s3.verdict.challenger["auc"] > s3.verdict.champion["auc"]
    assert s3.verdict.challenger["auc_difference_low"] >= -ScoringGate().auc_margin  # shown by the rows
    assert s3.verdict.challenger["auc_difference"] == pytest.approx(
        s3.verdict.challenger["auc"] - s3.verdict.champion["auc"]
    )
    assert s4.verdict.decision == "refused"
    assert any(reason.startswith("AUC ") for reason in s4.verdict.reasons)
    assert registry.champion_versions([NAME, "ipcredit-valuation"])[NAME].version == s3.version
    events = registry.history(NAME)
    assert list(zip(events["version"], events["event"], strict=True)) == [
        (1, "registered"),
        (2, "registered"),
        (2, "champion"),
        (3, "registered"),
        (2, "retired"),
        (3, "champion"),
        (4, "registered"),
    ]


def test_the_scoring_champion_returns_pd_score_grade_and_reasons(versions, table):
    model = registry.load(f"models:/{NAME}@champion", task="scoring")
    rows = table.tail(6).copy()
    rows.loc[rows.index[2], "industry"] = "shipping"  # never seen in training: refused, with a reason
    out = registry.predict(model, rows)
    assert list(out.columns[:5]) == ["loan_id", "pd", "score", "grade", "reason_codes"]
    assert out["error"].iloc[2].startswith("industry: expected one of")
    assert set(out["reason_codes"].iloc[[0, 1, 3]]) <= {"overdue_days", "equity_ratio", "industry"}
    assert out.drop(index=2)["pd"].between(0, 1).all() and np.isnan(out["pd"].iloc[2])
    with pytest.raises(ValueError, match="is a scoring model; expected a valuation model"):
        registry.load(f"models:/{NAME}@champion", task="valuation")


def test_the_scoring_run_logs_auc_ece_and_the_spec(versions):
    run = mlflow.get_run(versions["s3"].run_id)
    assert run.data.params["feature.equity_ratio"] == "numeric, decreasing"
    assert run.data.params["model.seed"] == "0"
    assert {"auc", "ece", "gate.challenger.auc", "gate.champion.ece"} <= set(run.data.metrics)
    assert run.data.params["data.date_column"] == "applied"
    assert {"gate.challenger.ece_chance", "gate.challenger.ece_p_value"} <= set(run.data.metrics)


def test_the_scoring_gate_promotes_only_what_the_rows_show_is_no_worse():
    """A tie on a small comparison set (a weaker model scoring 0.9711 against 0.9708 on 361 rows) cannot show
    the challenger is no worse: refused, saying why and what to do; the same difference with a tight bound
    passes."""
    gate, champion = ScoringGate(), {"auc": 0.9708, "ece": 0.01}
    tie = {"auc": 0.9711, "ece": 0.01, "auc_difference": 0.0003, "auc_difference_low": -0.0121}
    verdict = gate.decide(tie, champion)
    assert not verdict.passed
    assert verdict.reasons == (
        "AUC 0.9711 against the champion's 0.9708 on the same rows: the difference could be as low as "
        "-0.0121 (95% one-sided, DeLong), so these rows cannot show it is no worse by more than 0.005: hold "
        "out more rows, or promote by hand (`ipcredit models promote`) with a reason",
    )
    assert gate.decide({**tie, "auc_difference_low": -0.004}, champion).passed
    few = gate.decide({**tie, "auc_difference_low": float("nan")}, champion)  # one class only: no bound
    assert not few.passed and "fewer than 2 defaults or 2 repaid loans" in few.reasons[0]
    assert gate.decide(tie, None).passed  # a first champion has nothing to be compared with


def test_the_scoring_gate_holds_the_ece_bound_where_the_rows_can_show_it_and_chance_elsewhere():
    gate = ScoringGate()
    champion = {"auc": 0.80, "ece": 0.010}
    # A small book (PDs exactly right would show 0.032): above the bound but as far off as exact PDs often
    # are there: passes; beyond chance: refused.
    chance = {"auc": 0.80, "ece": 0.031, "ece_chance": 0.032, "ece_p_value": 0.55}
    assert gate.decide(chance, champion).passed and gate.decide(chance, None).passed
    beyond = {**chance, "ece": 0.090, "ece_p_value": 0.004}
    verdict = gate.decide(beyond, None)
    assert not verdict.passed
    assert verdict.reasons == (
        "ECE 0.0900 is beyond chance (p = 0.004, where PDs exactly right would show 0.0320 on these rows, "
        "too few to hold the bound 0.0200)",
    )
    assert gate.decide({**beyond, "ece_p_value": 0.05}, None).passed  # at the level exactly: chance
    # A large book (exact PDs would show 0.004): the bound decides, whatever the p-value.
    large = {"auc": 0.80, "ece": 0.015, "ece_chance": 0.004, "ece_p_value": 0.001}
    assert gate.decide(large, champion).passed  # beyond chance but within 0.02: not material
    over = gate.decide({**large, "ece": 0.025, "ece_p_value": 0.9}, None)
    assert not over.passed and over.reasons[0].startswith("ECE 0.0250 is above the bound 0.0200")
    # Figures without a chance ECE: the bound alone decides.
    assert not gate.decide({"auc": 0.80, "ece": 0.031}, None).passed


def test_a_model_trained_here_writes_its_report_from_the_result_and_keeps_its_training_period(
    store, table, tmp_path
):
    def report(trained: TrainedScoring) -> list[Path]:
        path = tmp_path / "report.json"
        path.write_text(json.dumps({"auc": trained.metrics["auc"]}), encoding="utf-8")
        return [path]

    registration = lifecycle.train_and_log(
        "scoring",
        table,
        FULL,
        train,
        data_source={},
        report_files=report,
        options=RunOptions(name="period-check", shap_rows=50),
    )
    run = mlflow.get_run(registration.run_id)
    assert run.data.tags["train.started"] < run.data.tags["train.finished"]
    logged = MlflowClient().download_artifacts(registration.run_id, "validation/report.json")
    assert json.loads(Path(logged).read_text(encoding="utf-8"))["auc"] == registration.metrics["auc"]
