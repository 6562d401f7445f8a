"""Tracked training: log a trained model to MLflow, register it, and promote it through the gate.

`train_and_log` takes a training result (or a callable that trains: training code stays in valuation/ and
scoring/) and, in one MLflow run of the experiment named after the registered model:

1. refuses a table that fails the spec's checks before anything is logged (InvalidData);
2. logs parameters (the task, the seed, the model's and the caller's parameters, the feature spec, the
   data fingerprint), the held-out metrics (flattened: ``model.all.median_ape``), and artifacts:
   ``spec/spec.yaml``, ``data/fingerprint.json``, ``environment/environment.json``, ``metrics/metrics.json``,
   the validation report files given (``validation/``), ``explain/shap_summary.png``,
   ``reference/reference.parquet`` (a sample of the training rows and the model's output on them: the
   baseline of `models.monitor`), ``data/train_rows.npz`` (a key of each training row: `row_keys`);
3. logs the pyfunc model (models.pyfunc) with a signature inferred from a few training rows and their output,
   that input example, the project packages (``code_paths``) and pinned pip requirements, and registers it
   as a new version of the registered model, with alias ``challenger``;
4. re-scores the held-out rows with the new version and with the current ``champion`` (both loaded from the
   registry) and runs the gate, on the held-out rows the champion was not trained on (its row keys): a
   champion scored on its own training rows would look better than it is. Fewer than MIN_GATE_ROWS such
   rows (or fewer than all, on a smaller held-out set) refuse the promotion, saying so (hold out new rows,
   or promote by hand). With ``options.promote`` the champion alias moves only if the gate passes (the first
   version becomes champion when there is none). The verdict and its figures are logged to the run
   (tags ``gate.*``, metrics ``gate.challenger.*`` / ``gate.champion.*``, ``gate/verdict.json``) and set as
   tags of the version;
5. writes the model card (models.card) and records who ran it, where, with which code and environment.

The same table, spec, parameters and seed give the same model, metrics and predictions (training is seeded;
the SHAP sample and plot are seeded too).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import re
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.pyplot as plt
import mlflow
import numpy as np
import pandas as pd
import shap
from mlflow.artifacts import download_artifacts
from mlflow.models import infer_signature

from features.spec import FeatureSpec, category_text
from models import card, pyfunc, registry, store
from models.provenance import code_version, environment
from models.tasks import Task, Verdict, flatten, get_task

log = logging.getLogger(__name__)

MAX_PARAM_LENGTH = 6000
TRAIN_ROWS_FILE = "train_rows.npz"
# Held-out rows the champion never saw, at least, for the gate to compare a challenger with it.
MIN_GATE_ROWS = 100
EXAMPLE_ROWS = 5


@dataclass(frozen=True)
class RunOptions:
    """How a training run is named, seeded, logged and gated (what `ipcredit train` sets).

    name: the registered model (default ipcredit-valuation / ipcredit-scoring).
    seed: the split's and the model's seed, given to a callable `trained`.
    promote: move the champion alias when the gate passes (the first version becomes champion).
    gate: the task's gate with its margins (models.tasks.ValuationGate / ScoringGate); None: defaults.
    params: the caller's training options, logged as train.* parameters.
    date_column: the column whose span is the data's time span (default: the first datetime column).
    experiment: the MLflow experiment (default: the registered model's name).
    shap_rows, reference_rows: rows of the SHAP summary plot and of the drift reference sample.
    """

    name: str | None = None
    seed: int = 0
    promote: bool = False
    gate: Any = None
    params: Mapping[str, Any] = field(default_factory=dict)
    date_column: str | None = None
    experiment: str | None = None
    shap_rows: int = 300
    reference_rows: int = 5000


@dataclass(frozen=True)
class Registration:
    """What `train_and_log` registered."""

    name: str
    version: str
    run_id: str
    verdict: Verdict
    fingerprint: dict
    metrics: dict

    @property
    def model_uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


@dataclass(frozen=True)
class _Run:
    """What one training run logs: the task, its data, the trained model and who made it with what."""

    task: Task
    name: str
    options: RunOptions
    table: pd.DataFrame
    spec: FeatureSpec
    result: Any
    held_out: pd.DataFrame
    fingerprint: dict
    code: dict
    environment: dict
    operator: str
    started: str
    finished: str

    @property
    def fitted(self) -> Any:
        return self.task.fitted(self.result)

    @property
    def metrics(self) -> dict:
        return dict(self.result.metrics)

    @property
    def inputs(self) -> list[str]:
        return self.task.input_columns(self.spec, self.table)

    @property
    def predict_params(self) -> dict:
        return self.task.predict_params(self.metrics)


def train_and_log(
    task: str,
    table: pd.DataFrame,
    spec: FeatureSpec,
    trained: Any | Callable[..., Any],
    *,
    data_source: Mapping[str, Any],
    options: RunOptions = RunOptions(),  # noqa: B008 - frozen, so one shared default is safe
    report_files: Sequence[str | Path] | Callable[[Any], Sequence[str | Path]] = (),
) -> Registration:
    """Log, register and (with `options.promote`) gate a trained model; see the module docstring.

    task: "valuation" or "scoring".
    table, spec: the whole training table (the held-out rows included) and its feature spec.
    trained: the training result (valuation.train.TrainedValuation, or a scoring result with `scorer` or
        `model`, `metrics` and `test`), or a callable ``trained(table, spec, seed=seed)`` returning one (such
        as valuation.train.train_valuation, or a functools.partial of it with more options). Its
        `test` holds the held-out rows with the table's index labels (as train_test_split keeps them).
    data_source: where the table came from, e.g. {"path": "data/book.parquet", "acquired": "2026-06-30"}
        (logged as data.* parameters and written in the model card).
    report_files: validation report files (HTML, JSON) to log under validation/, or a callable that writes
        them from the training result (so that `trained` can be a callable, timed here for the card).
    """
    the_task = get_task(task)
    name = options.name or the_task.registered_model
    gate = options.gate if options.gate is not None else the_task.default_gate()
    _check_name(name)
    spec.check(table, task=the_task.name)  # refused data stops here: nothing is logged
    settings = store.configure()
    started = store.utc_now()
    result = trained(table, spec, seed=options.seed) if callable(trained) else trained
    run = _Run(
        the_task,
        name,
        options,
        table,
        spec,
        result,
        _held_out_rows(table, result.test),
        data_fingerprint(table, data_source, options.date_column),
        code_version(),
        environment(),
        store.operator_name(),
        started,
        store.utc_now(),
    )
    experiment = store.experiment_id(options.experiment or name, settings)
    with (
        tempfile.TemporaryDirectory() as tmp_name,
        mlflow.start_run(experiment_id=experiment, run_name=f"{name} seed {options.seed}") as active,
    ):
        tmp = Path(tmp_name)
        _log_inputs(run, tmp, report_files(result) if callable(report_files) else report_files)
        _log_explanations(run, tmp)
        version = _log_model(run, tmp)
        registry.set_challenger(name, version)
        verdict = evaluate_gate(
            the_task, gate, name, version, run.held_out, spec, run.predict_params, options.promote
        )
        mlflow.log_metrics(verdict.flat_figures())
        mlflow.set_tags(_verdict_tags(verdict))
        _log_json(tmp / "verdict.json", verdict.to_dict(), "gate")
        _record_version(run, version, active.info.run_id, verdict, tmp)
    log.info("%s version %s registered (run %s); %s", name, version, active.info.run_id, verdict.summary())
    return Registration(name, version, active.info.run_id, verdict, run.fingerprint, run.metrics)


def _log_inputs(run: _Run, tmp: Path, report_files: Sequence[str | Path]) -> None:
    """Tags, parameters, held-out metrics, the spec, the data's fingerprint, the environment, the reports."""
    code, fingerprint = run.code, run.fingerprint
    mlflow.set_tags(
        {
            "ipcredit.task": run.task.name,
            "ipcredit.registered_model": run.name,
            "ipcredit.operator": run.operator,
            "code.commit": code["commit"],
            "code.dirty": str(code["dirty"]),
            "code.package_version": code["package_version"],
            "code.sha256": code["code_sha256"],
            "data.sha256": fingerprint["sha256"],
            "train.started": run.started,
            "train.finished": run.finished,
        }
    )
    mlflow.log_params(
        _param_dict(
            {
                "task": run.task.name,
                "registered_model": run.name,
                "seed": run.options.seed,
                "train": dict(run.options.params),
                "model": run.task.model_params(run.fitted),
                **spec_params(run.spec),
                "data": fingerprint,
            }
        )
    )
    mlflow.log_metrics({k: float(v) for k, v in flatten(run.metrics).items() if _is_number(v)})
    _log_json(tmp / "metrics.json", run.metrics, "metrics")
    _log_json(tmp / "fingerprint.json", fingerprint, "data")
    _log_json(tmp / "environment.json", run.environment, "environment")
    run.spec.to_yaml(tmp / "spec.yaml")
    mlflow.log_artifact(str(tmp / "spec.yaml"), "spec")
    for file in report_files:
        mlflow.log_artifact(str(file), "validation")


def _log_explanations(run: _Run, tmp: Path) -> None:
    """The SHAP summary of the held-out rows, the drift reference sample and the training rows' keys."""
    task, fitted, held_out, inputs = run.task, run.fitted, run.held_out, run.inputs
    held_out_output = _output(task, fitted, held_out[inputs], run.predict_params)
    shap_plot(
        task,
        fitted,
        held_out[inputs],
        held_out_output,
        tmp / "shap_summary.png",
        run.options.seed,
        run.options.shap_rows,
    )
    mlflow.log_artifact(str(tmp / "shap_summary.png"), "explain")
    _reference(run).to_parquet(tmp / "reference.parquet", index=False)
    mlflow.log_artifact(str(tmp / "reference.parquet"), "reference")
    # Which rows this version learned from, as row keys: a later gate compares on rows it never saw.
    trained_rows = run.table.drop(index=held_out.index)
    by = _key_columns(run.spec, run.table)
    np.savez(tmp / TRAIN_ROWS_FILE, keys=row_keys(trained_rows, run.spec, by), by=np.array(by))
    mlflow.log_artifact(str(tmp / TRAIN_ROWS_FILE), "data")


def _record_version(run: _Run, version: str, run_id: str, verdict: Verdict, tmp: Path) -> None:
    """The version's tags and description, and its model card (pending review)."""
    client = store.mlflow_client()
    version_tags = {
        "ipcredit.task": run.task.name,
        "data.sha256": run.fingerprint["sha256"],
        "code.commit": run.code["commit"],
        "ipcredit.operator": run.operator,
        "review.status": "pending",
        **_verdict_tags(verdict),
    }
    for key, value in version_tags.items():
        client.set_model_version_tag(run.name, version, key, value)
    metrics = {k: v for k, v in flatten(run.metrics).items() if _is_number(v) or isinstance(v, str)}
    facts = {
        "name": run.name,
        "version": version,
        "task": run.task.name,
        "run_id": run_id,
        "registered_at": store.utc_now(),
        "purpose": run.task.purpose,
        "users": run.task.users,
        "limits": list(run.task.limits),
        "data": run.fingerprint,
        "sampling": _sampling(run.result, run.table, run.options.seed),
        "spec": run.spec.to_dict(),
        "metrics": metrics,
        "gate": verdict.to_dict(),
        "environment": run.environment,
        "code": run.code,
        "operator": run.operator,
        "trained_from": run.started,
        "trained_until": run.finished,
        "review": {"status": "pending", "by": card.PENDING, "date": card.PENDING},
    }
    card.write(facts, tmp / "card")
    mlflow.log_artifact(str(tmp / "card" / card.CARD_FILE))
    mlflow.log_artifact(str(tmp / "card" / card.FACTS_FILE))
    rows, digest = run.fingerprint["rows"], run.fingerprint["sha256"][:12]
    description = (
        f"{run.task.name} model trained by {run.operator} on {rows:,} rows (SHA-256 {digest}); "
        f"gate: {verdict.summary()}"
    )
    client.update_model_version(run.name, version, description=description[:4000])


# ---------------------------------------------------------------- the gate


def evaluate_gate(
    task: Task,
    gate: Any,
    name: str,
    version: str,
    held_out: pd.DataFrame,
    spec: FeatureSpec,
    predict_params: dict,
    promote: bool,
) -> Verdict:
    """Re-score the held-out rows with the new version and the current champion (both from the registry),
    decide, and move the champion alias when `promote` and the gate allows it."""
    level = predict_params.get("level")
    new_model = registry.load(f"models:/{name}/{version}", task.name)
    predicted = registry.predict(new_model, held_out, predict_params)  # one row per held-out row, in order
    new = gate.figures(held_out, predicted, spec, level)
    try:
        champion = registry.current_champion(name)
    except store.RegistryUnavailable as e:  # unknown is not "no champion": promote nothing, decide nothing
        log.warning("%s: %s", name, e)
        return Verdict("undecided" if promote else "not requested", False, (str(e),), new, None, None)
    if champion is not None:
        # The champion is judged only on rows it did not learn from (a retrain on overlapping data, or with
        # another seed, holds out rows the champion was trained on: its in-sample figures would win).
        needed = min(MIN_GATE_ROWS, len(held_out))
        try:
            unseen = _unseen_by(champion.run_id, held_out, spec)
        except Exception as e:  # the store failed: decide nothing on a guess
            unseen, reason = None, f"the champion's training rows could not be read: {type(e).__name__}: {e}"
        else:
            reason = (
                f"only {int(unseen.sum())} of the {len(held_out)} held-out rows were not used to train the "
                f"champion (version {champion.version}); at least {needed} are needed to compare fairly: "
                "hold out new rows, or promote by hand (`ipcredit models promote`) with a reason"
            )
        if unseen is None or unseen.sum() < needed:
            log.warning("%s: %s", name, reason)
            refused = "refused" if promote else "not requested"
            return Verdict(refused, False, (reason,), new, None, str(champion.version))
        if not unseen.all():
            rows = np.flatnonzero(unseen)
            held_out, predicted = held_out.iloc[rows], predicted.iloc[rows]
            new = gate.figures(held_out, predicted, spec, level)
    if champion is None:
        verdict = gate.decide(new, None)
        decision = "first champion" if promote else "not requested"
        verdict = _with(verdict, decision=decision)
        if promote:
            registry.move_champion(name, version, "first version: there was no champion")
        return verdict
    try:
        old_model = registry.load(f"models:/{name}/{champion.version}", task.name)
        old_predicted = registry.predict(old_model, held_out, predict_params)
        old = gate.figures(held_out, old_predicted, spec, level)
    except (store.ModelCorrupt, ValueError, KeyError) as e:
        reason = f"the champion (version {champion.version}) could not be scored on the held-out rows: {e}"
        log.warning("%s: %s", name, reason)
        return Verdict(
            "refused" if promote else "not requested", False, (reason,), new, None, str(champion.version)
        )
    # Figures of the two models together (a paired test), for a gate that has them.
    paired = getattr(gate, "paired", None)
    new = {**new, **(paired(held_out, predicted, old_predicted, spec) if paired else {})}
    verdict = _with(gate.decide(new, old), champion_version=str(champion.version))
    if not promote:
        return _with(verdict, decision="not requested")
    if verdict.passed:
        registry.move_champion(name, version, f"passed the gate against version {champion.version}")
        return _with(verdict, decision="promoted")
    return _with(verdict, decision="refused")


def _with(verdict: Verdict, **changes) -> Verdict:
    return dataclasses.replace(verdict, **changes)


def _verdict_tags(verdict: Verdict) -> dict[str, str]:
    tags = {
        "gate.decision": verdict.decision,
        "gate.passed": str(verdict.passed),
        "gate.reasons": "; ".join(verdict.reasons)[:4000],
        "gate.champion_version": verdict.champion_version or "",
    }
    tags.update({k: f"{v:.6g}" for k, v in verdict.flat_figures().items()})
    return tags


# ---------------------------------------------------------------- what is logged


def data_fingerprint(table: pd.DataFrame, source: Mapping[str, Any], date_column: str | None = None) -> dict:
    """Source (nested mappings as dotted keys), rows, columns, time span of the date column (the first
    datetime column unless named) and the SHA-256 of the content: column names and dtypes, then pandas' row
    hashes (index not included).

    >>> t = pd.DataFrame({"d": pd.to_datetime(["2024-01-31", "2023-05-01"]), "x": [1.0, 2.0]})
    >>> f = data_fingerprint(t, {"path": "book.csv"})
    >>> f["rows"], f["date_column"], f["date_from"], f["date_to"], len(f["sha256"])
    (2, 'd', '2023-05-01', '2024-01-31', 64)
    >>> f["sha256"] == data_fingerprint(t.iloc[::-1].iloc[::-1], {})["sha256"]
    True
    """
    digest = hashlib.sha256()
    digest.update(json.dumps([[str(c), str(t)] for c, t in table.dtypes.items()]).encode())
    digest.update(pd.util.hash_pandas_object(table, index=False).to_numpy().tobytes())
    if date_column is None:
        dates = [c for c in table.columns if pd.api.types.is_datetime64_any_dtype(table[c])]
        date_column = dates[0] if dates else None
    out = {
        "source": {str(k): str(v)[:500] for k, v in flatten(source).items()},  # a manifest: dotted keys
        "rows": len(table),
        "columns": table.shape[1],
        "date_column": date_column,
        "date_from": None,
        "date_to": None,
        "sha256": digest.hexdigest(),
    }
    if date_column is not None:
        dates = pd.to_datetime(table[date_column])
        out["date_from"], out["date_to"] = (
            str(d.date()) if pd.notna(d) else None for d in (dates.min(), dates.max())
        )
    return out


def spec_params(spec: FeatureSpec) -> dict[str, Any]:
    """The feature spec as parameters: spec.target, spec.id, spec.task, spec.n_features, and one
    ``feature.<name>`` per feature ("numeric", "numeric, increasing", "categorical")."""
    out: dict[str, Any] = {
        "spec.target": spec.target,
        "spec.id": spec.id,
        "spec.task": spec.task,
        "spec.n_features": len(spec.features),
    }
    for f in spec.features:
        out[f"feature.{f.name}"] = f.type if f.monotone is None else f"{f.type}, {f.monotone}"
    return out


def shap_plot(
    task: Task, fitted: Any, rows: pd.DataFrame, output: pd.DataFrame, path: Path, seed: int, max_rows: int
) -> Path:
    """shap.summary_plot of the model's SHAP values on a seeded sample of the rows it could score (Agg
    backend, English labels), saved as PNG."""
    usable = rows[(output["error"] == "").to_numpy()]
    sample = usable.sample(min(max_rows, len(usable)), random_state=seed) if len(usable) else usable
    values, shown = task.explain(fitted, sample)
    _use_agg()
    figure = plt.figure()
    try:
        shap.summary_plot(
            values.to_numpy(dtype="float64"),
            features=shown.astype("float64"),
            feature_names=[str(c) for c in values.columns],
            max_display=20,
            show=False,
            rng=np.random.default_rng(seed),
        )
        figure = plt.gcf()
        figure.axes[0].set_xlabel(task.shap_unit)
        figure.axes[0].set_title(f"SHAP summary: {task.name} model, {len(sample)} held-out rows")
        figure.savefig(path, dpi=100, bbox_inches="tight")
    finally:
        plt.close("all")
    return path


def _use_agg() -> None:
    """Draw off-screen: switch to Agg unless the backend already needs no display (Agg, or a notebook's)."""
    backend = matplotlib.get_backend().lower()
    if backend != "agg" and "inline" not in backend:
        matplotlib.use("Agg")


def _output(task: Task, fitted: Any, table: pd.DataFrame, params: dict) -> pd.DataFrame:
    wrapper = pyfunc.wrapper_for(task.name)()
    wrapper.fitted_ = fitted
    out = wrapper.predict(None, table, params)
    out.index = table.index
    return out


def _reference(run: _Run) -> pd.DataFrame:
    """A seeded sample of the training rows (held-out rows excluded, ids dropped) with the model's output."""
    train = run.table.drop(index=run.held_out.index)
    sample = train.sample(min(run.options.reference_rows, len(train)), random_state=run.options.seed)
    sample = sample.sort_index()
    output = _output(run.task, run.fitted, sample[run.inputs], run.predict_params)
    out = sample[[c for c in run.inputs if c != run.spec.id]].copy()
    out["model_output"] = output[run.task.output_column].to_numpy(dtype="float64")
    return out.reset_index(drop=True)


def _example(table: pd.DataFrame, spec: FeatureSpec) -> pd.DataFrame:
    """A few rows such that every column has a value in at least one row when the table allows it, with
    numbers as double and categories and ids as text (what the signature should say)."""
    present = table.notna().to_numpy()
    covered = ~present.any(axis=0)  # a column empty in the whole table cannot be covered
    chosen: list[int] = []
    for position in range(len(table)):
        if len(chosen) >= EXAMPLE_ROWS or covered.all():
            break
        if not chosen or (present[position] & ~covered).any():
            chosen.append(position)
            covered |= present[position]
    example = table.iloc[chosen].reset_index(drop=True).copy()
    for name in example.columns:
        column = example[name]
        if name in spec.categorical or name == spec.id or not pd.api.types.is_numeric_dtype(column):
            text = category_text(column) if pd.api.types.is_numeric_dtype(column) else column.astype("string")
            example[name] = text.astype(object).where(column.notna(), None)
        else:
            example[name] = column.astype("float64")
    return example


def _log_model(run: _Run, tmp: Path) -> str:
    """Log the pyfunc model with its signature and register it; the new version."""
    table = run.table[run.inputs]
    example = _example(table, run.spec)
    output = _output(run.task, run.fitted, example, run.predict_params)
    signature = infer_signature(example, output, params=run.predict_params or None)
    fitted_path = pyfunc.save_fitted(run.fitted, tmp)
    info = mlflow.pyfunc.log_model(
        name="model",
        python_model=pyfunc.wrapper_for(run.task.name)(),
        artifacts={pyfunc.FITTED_KEY: str(fitted_path)},
        signature=signature,
        input_example=example,
        code_paths=pyfunc.code_paths(),
        pip_requirements=pyfunc.pip_requirements(),
        registered_model_name=run.name,
        metadata={
            registry.TASK_METADATA_KEY: run.task.name,
            registry.COMMIT_METADATA_KEY: run.code["commit"],
        },
    )
    return str(info.registered_model_version)


def _key_columns(spec: FeatureSpec, table: pd.DataFrame) -> list[str]:
    """What names a row across retrains: the spec's id column, else every feature column."""
    return [spec.id] if spec.id and spec.id in table.columns else list(spec.feature_names)


def row_keys(table: pd.DataFrame, spec: FeatureSpec, columns: Sequence[str] | None = None) -> np.ndarray:
    """One 64-bit key per row, in row order: the hash of its `columns` (default `_key_columns`) as text,
    so that 1 and 1.0, or an int column read back as float after a missing value, give the same key, and
    figures a retrained valuation model moves (bundle values) do not change it when the spec has an id."""
    columns = list(columns) if columns is not None else _key_columns(spec, table)
    as_text = table[columns].apply(lambda c: c.map(_key_text))
    return pd.util.hash_pandas_object(as_text, index=False).to_numpy()


def _key_text(value: Any) -> str:
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))  # 3.0 as 3: a column's dtype may change between reads
    return "" if value is None or (not isinstance(value, str) and pd.isna(value)) else str(value)


def _unseen_by(run_id: str, rows: pd.DataFrame, spec: FeatureSpec) -> np.ndarray:
    """Which of `rows` the run's model was not trained on, keyed as it was; every row for a run logged
    before training keys were kept, or keyed by columns these rows lack (a warning says so)."""
    kept = {a.path for a in store.mlflow_client().list_artifacts(run_id, "data")}
    if f"data/{TRAIN_ROWS_FILE}" not in kept:
        log.warning("run %s kept no training row keys: the gate uses every held-out row", run_id)
        return np.ones(len(rows), dtype=bool)
    with tempfile.TemporaryDirectory() as tmp:
        with np.load(
            download_artifacts(run_id=run_id, artifact_path=f"data/{TRAIN_ROWS_FILE}", dst_path=tmp)
        ) as f:
            trained, by = f["keys"], [str(c) for c in f["by"]]
    if not set(by) <= set(rows.columns):
        log.warning(
            "run %s keyed its rows by %s, which these rows lack: every held-out row is used", run_id, by
        )
        return np.ones(len(rows), dtype=bool)
    return ~np.isin(row_keys(rows, spec, by), trained)


def _held_out_rows(table: pd.DataFrame, test: pd.DataFrame) -> pd.DataFrame:
    """The held-out rows as they are in the table (the result's `test` may carry predictions in place of
    the target: valuation's does), found by index label."""
    missing = test.index.difference(table.index)
    if len(missing) or test.index.has_duplicates or table.index.has_duplicates:
        raise ValueError(
            "the training result's `test` rows must keep the table's (unique) index labels, as "
            f"train_test_split does; {len(missing)} label(s) not in the table"
        )
    return table.loc[test.index]


def _sampling(result: Any, table: pd.DataFrame, seed: int) -> str:
    """How the rows were split: the training result's own words where it says (scoring: out of time), else
    a random split of its `test` rows."""
    said = getattr(result, "sampling", None)
    if callable(said):
        return f"{said()} (the held-out rows are scored for the metrics and the promotion gate)"
    test = result.test
    return (
        f"random split with seed {seed}: {len(table) - len(test):,} rows to train, {len(test):,} held out "
        "(the held-out rows are scored for the metrics and the promotion gate)"
    )


def _log_json(path: Path, obj: Any, folder: str) -> None:
    path.write_text(json.dumps(obj, indent=2, default=str, allow_nan=True) + "\n", encoding="utf-8")
    mlflow.log_artifact(str(path), folder)


def _param_dict(nested: Mapping[str, Any]) -> dict[str, str]:
    out = {}
    for key, value in flatten(nested).items():
        out[re.sub(r"[^\w\-. /]", "_", key)[:250]] = str(value)[:MAX_PARAM_LENGTH]
    return out


def _check_name(name: str) -> None:
    if not re.fullmatch(r"[A-Za-z0-9][\w.\-]*", name):
        raise ValueError(f"a registered model name must be letters, digits, '.', '_' or '-'; got {name!r}")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)
