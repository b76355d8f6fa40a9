"""A polars parquet IO manager that handles daily partitions (dagster-polars cannot load on polars 2)."""

from __future__ import annotations

import dagster as dg
import polars as pl
from upath import UPath

from models.storage import write_parquet_atomically


class _PolarsParquet(dg.UPathIOManager):
    extension = ".parquet"

    def dump_to_path(self, context: dg.OutputContext, obj: pl.DataFrame, path: UPath) -> None:
        if not isinstance(obj, pl.DataFrame):
            raise TypeError(f"{context.asset_key.to_user_string()} returned {type(obj).__name__}, expected a polars DataFrame")
        write_parquet_atomically(obj, str(path))

    def load_from_path(self, context: dg.InputContext, path: UPath) -> pl.DataFrame | None:
        if not path.exists():
            if not context.has_partition_key:
                # An unpartitioned reader (training, online features) takes the days that have arrived so far.
                return None
            # A partitioned reader (a day's feature history) needs every day it maps to: name the gap.
            raise FileNotFoundError(
                f"{context.upstream_output.asset_key.to_user_string()} has not been materialized at {path}; "
                "materialize that partition first"
            )
        return pl.read_parquet(str(path))


class PolarsParquetIOManager(dg.ConfigurableIOManagerFactory):
    """One parquet file per asset, or per partition: <base_dir>/<asset>/<partition>.parquet.

    An unpartitioned asset reading a partitioned one receives {partition_key: DataFrame}.
    """

    base_dir: str

    def create_io_manager(self, context) -> _PolarsParquet:
        return _PolarsParquet(base_path=UPath(self.base_dir))
