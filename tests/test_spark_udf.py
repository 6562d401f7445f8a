"""The registered valuation model as a Spark UDF: mlflow.pyfunc.spark_udf on the champion's URI, over a Spark
DataFrame of a few training rows, gives the same figures as the in-process Valuer.

A local[1] Spark session (pyspark 4, the machine's Java 17), one small model (30 trees) in a temporary
store, registered as in tests/test_models_lifecycle.py. Spark's Python workers run this interpreter
(PYSPARK_PYTHON), so ``env_manager="local"`` is the environment the model was logged from.
"""

from __future__ import annotations

import functools
import shutil
import sys

import numpy as np
import pandas as pd
import pytest

pyspark = pytest.importorskip("pyspark", reason="pyspark is in the dev extras")

from features.synth import synthesize  # noqa: E402
from models import lifecycle, registry  # noqa: E402
from models.lifecycle import RunOptions  # noqa: E402
from models.store import configure  # noqa: E402
from valuation.data import default_spec, in_force, training_table  # noqa: E402
from valuation.train import train_valuation  # noqa: E402

NAME = "ipcredit-valuation"
CHAMPION_URI = f"models:/{NAME}@champion"

pytestmark = [
    pytest.mark.spark,
    pytest.mark.heavy,
    pytest.mark.skipif(shutil.which("java") is None, reason="Spark needs a Java runtime (java on PATH)"),
    # pyspark 4.3 warns that it "does not yet fully support pandas >= 3.0.0" whenever pandas is used with
    # Spark, here when mlflow.pyfunc.spark_udf defines its pandas_udf. The values that cross between pandas
    # and Spark are compared one by one below; that one warning is filtered, nothing else.
    pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning:pyspark"),
    # Raised inside MLflow 3.17 with pandas 3.1 and SQLAlchemy 2.1 and inside shap 0.51 with matplotlib 3.11
    # while the model is logged (as in tests/test_models_lifecycle.py); none about this project.
    pytest.mark.filterwarnings(
        "ignore:Operation with range is deprecated:DeprecationWarning:mlflow.models.utils"
    ),
    pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings(
        "ignore:The set_.* function will be deprecated:PendingDeprecationWarning:shap"
    ),
]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    home = tmp_path_factory.mktemp("ipcredit-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("IPCREDIT_HOME", str(home))
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{home / 'mlflow.db'}")  # unset again after the module
        mp.delenv("MLFLOW_REGISTRY_URI", raising=False)
        configure()
        yield home


@pytest.fixture(scope="module")
def table():
    t = training_table(synthesize(600, seed=3))
    return t[in_force(t)].reset_index(drop=True)


@pytest.fixture(scope="module")
def champion(store, table):
    """One small valuation model, the first champion of the temporary store."""
    return lifecycle.train_and_log(
        "valuation",
        table,
        default_spec(table),
        functools.partial(train_valuation, params={"n_estimators": 30, "n_jobs": 1}),
        data_source={"path": "synthesize(600, seed=3)", "acquired": "2026-06-30"},
        options=RunOptions(seed=0, promote=True, shap_rows=100, reference_rows=500),
    )


@pytest.fixture(scope="module")
def spark(tmp_path_factory):
    from pyspark.sql import SparkSession

    mp = pytest.MonkeyPatch()
    # Spark starts its Python workers with PYSPARK_PYTHON (default: python3 on PATH, without this venv's
    # packages); the spark.pyspark.python setting is read by spark-submit only, not by a session built here.
    mp.setenv("PYSPARK_PYTHON", sys.executable)
    session = (
        SparkSession.builder.master("local[1]")
        .appName("ipcredit-spark-udf-test")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "1")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.warehouse.dir", str(tmp_path_factory.mktemp("spark-warehouse")))
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    try:
        yield session
    finally:
        session.stop()
        mp.undo()


def result_struct(model):
    """The UDF's result type, a struct with one field per column of the model's output signature."""
    from pyspark.sql.types import StructField, StructType

    schema = model.metadata.get_output_schema()
    return StructType([StructField(col.name, col.type.to_spark(), nullable=True) for col in schema.inputs])


def test_the_champion_as_a_spark_udf_values_rows_as_the_valuer_does(champion, table, spark):
    import mlflow.pyfunc
    from pyspark.sql import functions as F

    model = registry.load(CHAMPION_URI, task="valuation")
    assert str(registry.current_champion(NAME).version) == champion.version
    inputs = model.metadata.get_input_schema().input_names()
    rows = table.groupby("asset_kind").head(3).reset_index(drop=True)  # patents and trademarks
    assert set(rows["asset_kind"]) == {"patent", "trademark"}

    # A Spark DataFrame as a Spark job would read it: the training table's columns already have the
    # signature's types (double and text); a missing value is a null. Rows go in and come out as Python
    # values, not through createDataFrame(pandas) / toPandas(): with pandas 3, pyspark 4.3's own toPandas
    # passes pandas a deprecated `copy=` keyword, a warning that is an error here. The UDF's workers convert
    # through Arrow as in any Spark job.
    records = [tuple(None if pd.isna(v) else v for v in row) for row in rows[inputs].itertuples(index=False)]
    frame = spark.createDataFrame(records, schema=model.metadata.get_input_schema().as_spark_schema())
    assert frame.rdd.getNumPartitions() == 1  # collect() returns the rows in input order

    result_type = result_struct(model)
    udf = mlflow.pyfunc.spark_udf(spark, CHAMPION_URI, result_type=result_type, env_manager="local")
    collected = frame.select(udf(F.struct(*inputs)).alias("valuation")).select("valuation.*").collect()
    valued = pd.DataFrame([r.asDict() for r in collected], columns=[f.name for f in result_type.fields])

    expected, problems = registry.load_fitted(CHAMPION_URI, task="valuation").value(rows[inputs], 0.9)
    assert problems == [] and (expected["error"] == "").all()
    assert list(valued.columns) == list(expected.columns) == [f.name for f in result_type.fields]
    assert valued["asset_id"].tolist() == rows["asset_id"].tolist()  # one row per input row, in order
    figures = [c for c in expected.columns if pd.api.types.is_float_dtype(expected[c])]
    assert {"value_cny", "value_low_cny", "value_high_cny", "income_value_cny"} <= set(figures)
    for column in figures:
        np.testing.assert_array_equal(
            valued[column].to_numpy(dtype="float64"), expected[column].to_numpy(dtype="float64"), column
        )
    others = [c for c in expected.columns if c not in figures]
    pd.testing.assert_frame_equal(
        valued[others].astype(object), expected[others].astype(object), check_dtype=False
    )
