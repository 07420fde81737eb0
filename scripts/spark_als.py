#!/usr/bin/env python3
"""Train Spark MLlib's ALS (implicit preferences) on a log recdb exported as Parquet.

    recdb --db DB export log --format parquet LOG_DIR
    python scripts/spark_als.py LOG_DIR OUT_DIR [--rank 32 --reg 0.05 --alpha 5 ...]
    recdb --db DB import table spark.users --format parquet OUT_DIR/users
    recdb --db DB import table spark.items --format parquet OUT_DIR/items
    recdb --db DB recommend USER --model spark

The export's `user_idx` / `item_idx` columns (recdb's dense ids) are the integer ids
ALS needs; the factor files keep them in `id`, which the import maps back to recdb's
users and items. Each (user, item) pair becomes one implicit preference: with
--binarize (default) its strength is 1, else the sum of the pair's values; ALS's
confidence is 1 + alpha * strength. Local mode by default (--master); any Spark
cluster that can read LOG_DIR works the same.
"""

import argparse
import os
import sys
import time


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("log", help="directory of the exported log's part files")
    ap.add_argument("out", help="where to write users/ and items/ (Parquet)")
    ap.add_argument("--rank", type=int, default=32)
    ap.add_argument("--reg", type=float, default=0.1, help="regParam (Spark scales it by each row's count)")
    ap.add_argument("--alpha", type=float, default=2.0)
    ap.add_argument("--iterations", type=int, default=15)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--no-binarize", dest="binarize", action="store_false")
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--memory", default="2g", help="driver memory (local mode runs in the driver)")
    ap.add_argument("--partitions", type=int, default=0, help="ALS blocks (default: Spark's parallelism)")
    a = ap.parse_args(argv)

    # Loopback only: local mode needs no network.
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    from pyspark.sql import SparkSession, functions as F
    from pyspark.ml.recommendation import ALS

    t0 = time.time()
    spark = (
        SparkSession.builder.master(a.master)
        .appName("recdb-als")
        .config("spark.driver.memory", a.memory)
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    spark.sparkContext.setCheckpointDir(a.out + "/_checkpoints")
    log = spark.read.parquet(a.log)
    strength = F.lit(1.0) if a.binarize else F.sum("value")
    pairs = (
        log.groupBy("user_idx", "item_idx")
        .agg(strength.cast("float").alias("strength"))
    )
    als = ALS(
        rank=a.rank,
        maxIter=a.iterations,
        regParam=a.reg,
        alpha=a.alpha,
        implicitPrefs=True,
        userCol="user_idx",
        itemCol="item_idx",
        ratingCol="strength",
        seed=a.seed,
        nonnegative=False,
        checkpointInterval=5,
    )
    if a.partitions > 0:
        als = als.setNumUserBlocks(a.partitions).setNumItemBlocks(a.partitions)
    model = als.fit(pairs)
    # Spark writes `id: int`, `features: array<float>`: what recdb's import reads.
    model.userFactors.write.mode("overwrite").parquet(a.out + "/users")
    model.itemFactors.write.mode("overwrite").parquet(a.out + "/items")
    n_users = model.userFactors.count()
    n_items = model.itemFactors.count()
    spark.stop()
    print(
        f"spark_als: {n_users} users, {n_items} items, rank {a.rank}, "
        f"{a.iterations} iterations, {time.time() - t0:.1f} s",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
