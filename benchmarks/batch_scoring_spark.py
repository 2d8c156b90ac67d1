"""The Spark contender of ``benchmarks/batch_scoring.py``: what the old system ran.

Spark in local mode (``local[2]``, one task slot per core) reads the CSV with the schema the
model's MLflow signature gives (``?`` as null), scores it with ``mlflow.pyfunc.spark_udf`` of the
registered version (the scikit-learn model through pyfunc, in Spark's Python workers, Arrow
batches) and writes ``id`` and ``prediction`` as Parquet. Run as a subprocess by the benchmark,
with ``MLFLOW_TRACKING_URI`` pointing at the home's registry.

Usage: ``python batch_scoring_spark.py CSV MODEL_URI OUTPUT [DRIVER_MEMORY]``.
"""

from __future__ import annotations

import os
import sys
import time


def spark_schema(model_uri: str) -> object:
    """``id`` as text and every model input typed as its signature says."""
    from mlflow.models import get_model_info
    from pyspark.sql import types

    spark_types = {"long": types.LongType(), "integer": types.IntegerType()}
    fields = [types.StructField("id", types.StringType())]
    for column in get_model_info(model_uri).signature.inputs.inputs:
        kind = spark_types.get(str(column.type), types.DoubleType())
        fields.append(types.StructField(column.name, kind))
    return types.StructType(fields)


def main() -> None:
    source, model_uri, output = sys.argv[1:4]
    driver_memory = sys.argv[4] if len(sys.argv) > 4 else "1g"
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    import mlflow.pyfunc
    from pyspark.sql import SparkSession
    from pyspark.sql.functions import struct

    spark = (
        SparkSession.builder.master("local[2]")
        .appName("conveyor-bench-spark-udf")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.memory", driver_memory)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    started = time.perf_counter()
    schema = spark_schema(model_uri)
    frame = spark.read.csv(source, header=True, schema=schema, nullValue="?")
    predict = mlflow.pyfunc.spark_udf(spark, model_uri, result_type="double", env_manager="local")
    features = [name for name in schema.fieldNames() if name != "id"]
    scored = frame.select("id", predict(struct(*features)).alias("prediction"))
    scored.write.mode("overwrite").parquet(output)
    print(f"spark: scored and written in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    spark.stop()


if __name__ == "__main__":
    main()
