"""The fitted valuation and scoring objects as MLflow pyfunc models: a table in, the full output table out.

`ValuationModel.predict` returns what `valuation.valuer.Valuer.value` returns (asset id, value and interval,
income-approach value and cross-check, GB/T scores and stars, and `error` for rows refused); `ScoringModel`
returns what the fitted scorer's ``score_table(df) -> (DataFrame, problems)`` returns (pd, score, grade,
reason codes, ..., `error`). Bad rows are not dropped: they come back with an `error` text, one output row per
input row in input order. The problems list is not part of a pyfunc output (MLflow passes tables, not Python
objects); the `error` column carries the same text.

The fitted object is an artifact (``fitted.joblib``) loaded in `load_context`; the wrapper itself holds no
state, so the pickled `python_model` is a few hundred bytes and the model's behaviour is all in the artifact
and in the code logged beside it (``code_paths``: the project's packages below the service,
copied into the model; see `CODE_PACKAGES`). In a fresh process MLflow puts that copy first on ``sys.path``;
in a process that already imported the packages (the CLI, the API) the imported code is used, which is why
every version records the commit it was trained with (models.lifecycle).

Pure pandas in and out, with a signature, so ``mlflow.pyfunc.spark_udf(spark, "models:/...@champion")``
returns a struct column with the output schema's fields (result_type is inferred from the output schema);
call it on ``struct(*input_columns)`` of a Spark DataFrame. Not tested here (no Spark in the test set).

>>> wrapper_for("valuation").__name__, wrapper_for("scoring").__name__
('ValuationModel', 'ScoringModel')
"""

from __future__ import annotations

import logging
import warnings
from importlib import metadata
from pathlib import Path
from typing import Any

import joblib
import pandas as pd
from packaging.requirements import Requirement

with warnings.catch_warnings():
    # MLflow 3.17 warns, once, while importing its own agent types (mlflow.types.responses): a message about
    # MLflow's code, not ours, that tests (warnings as errors) would otherwise fail on. Only that one.
    warnings.filterwarnings("ignore", message=r".*Any type hint is inferred as AnyType", category=UserWarning)
    import mlflow.pyfunc

log = logging.getLogger(__name__)


class _NoCloudPickleNotice(logging.Filter):
    """MLflow warns, on every model logged, that a Python object given as `python_model` is pickled. Ours
    is a stateless wrapper, and the fitted object is a joblib artifact, a pickle either way: the notice
    tells the person training nothing they can act on, and buried the training's own output."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "serialized using CloudPickle" not in record.getMessage()


logging.getLogger("mlflow.pyfunc").addFilter(_NoCloudPickleNotice())

FITTED_KEY = "fitted"  # the artifact's key in `artifacts=` and in `context.artifacts`
FITTED_FILE = "fitted.joblib"
# Project packages a loaded model imports (the joblib pickle refers to their classes by module path).
CODE_PACKAGES = ("core", "features", "valuation", "scoring", "underwriting", "models")
PROJECT_ROOT = Path(__file__).resolve().parent.parent


class _FittedModel(mlflow.pyfunc.PythonModel):
    """A pyfunc around a fitted object loaded from the artifact `FITTED_KEY`. `fitted_` after loading."""

    task = ""

    def load_context(self, context) -> None:
        path = context.artifacts[FITTED_KEY]
        self.fitted_ = joblib.load(path)

    def predict(
        self, context, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        if not hasattr(self, "fitted_"):  # used without load_context (e.g. python_model.predict in a test)
            raise RuntimeError(
                f"{type(self).__name__} has no fitted object: load it with mlflow.pyfunc.load_model"
            )
        table = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        out, problems = self._run(table, params or {})
        if problems:
            log.info(
                "%s: %d row(s) refused; reasons in the `error` column",
                self.task,
                len({p.row for p in problems}),
            )
        return out.reset_index(drop=True)

    def _run(self, table: pd.DataFrame, params: dict[str, Any]):
        raise NotImplementedError


class ValuationModel(_FittedModel):
    """pyfunc of a fitted `valuation.valuer.Valuer`; the param ``level`` sets the interval level."""

    task = "valuation"

    def _run(self, table: pd.DataFrame, params: dict[str, Any]):
        return self.fitted_.value(table, params.get("level"))


class ScoringModel(_FittedModel):
    """pyfunc of a fitted scorer: an object with ``score_table(df) -> (DataFrame, problems)`` and ``spec``."""

    task = "scoring"

    def _run(self, table: pd.DataFrame, params: dict[str, Any]):
        return self.fitted_.score_table(table)


WRAPPERS: dict[str, type[_FittedModel]] = {"valuation": ValuationModel, "scoring": ScoringModel}


def wrapper_for(task: str) -> type[_FittedModel]:
    try:
        return WRAPPERS[task]
    except KeyError:
        raise ValueError(f"task must be one of {sorted(WRAPPERS)}; got {task!r}") from None


def save_fitted(fitted: object, folder: str | Path) -> Path:
    """Dump the fitted object where `log_pyfunc` picks it up."""
    path = Path(folder) / FITTED_FILE
    joblib.dump(fitted, path)
    return path


def code_paths() -> list[str]:
    """The project packages to copy into a logged model (see the module docstring)."""
    paths = [PROJECT_ROOT / name for name in CODE_PACKAGES]
    missing = [str(p) for p in paths if not (p / "__init__.py").is_file()]
    if missing:
        raise FileNotFoundError(f"project packages to log with the model not found: {missing}")
    return [str(p) for p in paths]


def pip_requirements() -> list[str]:
    """The project's runtime dependencies (from its installed metadata) pinned to the versions in use, and
    mlflow. The project itself is not listed: its code travels with the model (`code_paths`)."""
    try:
        declared = metadata.requires("ipcredit") or []
    except metadata.PackageNotFoundError as e:
        raise RuntimeError(
            "the ipcredit project is not installed (pip install -e .): its requirements are unknown"
        ) from e
    pinned = []
    for text in declared:
        req = Requirement(text)
        if req.marker is not None and "extra" in str(req.marker):
            continue  # dev extras (pytest, ruff) are not needed to load a model
        try:
            pinned.append(f"{req.name}=={metadata.version(req.name)}")
        except metadata.PackageNotFoundError:
            pinned.append(str(req))
    pinned.append(f"mlflow=={metadata.version('mlflow')}")
    return sorted(set(pinned), key=str.lower)
