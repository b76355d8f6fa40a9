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

    def handle_output(self, context: dg.OutputContext, obj) -> None:
        # A run over several partitions (a single-run backfill) hands over one frame per partition.
        if isinstance(obj, dict) and context.has_asset_partitions:
            paths = self._get_paths_for_partitions(context)
            if set(obj) != set(paths):
                raise ValueError(
                    f"{context.asset_key.to_user_string()} returned partitions {sorted(obj)}, the run is for {sorted(paths)}"
                )
            for key, path in paths.items():
                self.make_directory(path.parent)
                self.dump_to_path(context, obj[key], path)
            return
        super().handle_output(context, obj)

    def load_from_path(self, context: dg.InputContext, path: UPath) -> pl.DataFrame:
        if not path.exists():
            # A partitioned reader (a day's feature history) needs every day it maps to: name the gap.
            raise FileNotFoundError(
                f"{context.upstream_output.asset_key.to_user_string()} has not been materialized at {path}; "
                "materialize that partition first"
            )
        return pl.read_parquet(str(path))

    def load_partitions(self, context: dg.InputContext):
        if context.has_partition_key:
            return super().load_partitions(context)
        # An unpartitioned reader (training, online features) takes the partitions that have arrived so far, in
        # order. Partitions after the newest one have not arrived yet: said in the input's metadata. A partition
        # missing before the newest one is a gap in the history the reader would silently train over: an error.
        name = context.upstream_output.asset_key.to_user_string()
        keys = list(context.asset_partition_keys)
        paths = self._get_paths_for_partitions(context)
        present = [key for key in keys if paths[key].exists()]
        if not present:
            raise FileNotFoundError(f"{name}: none of its {len(keys)} partitions has been materialized yet")
        newest = keys.index(present[-1])
        gaps = [key for key in keys[:newest] if key not in present]
        if gaps:
            shown = ", ".join(gaps[:10]) + (f" and {len(gaps) - 10} more" if len(gaps) > 10 else "")
            raise FileNotFoundError(
                f"{name} is missing {len(gaps)} partition(s) inside the window it reads: {shown}; materialize them first"
            )
        not_arrived = keys[newest + 1 :]
        if not_arrived:
            # (Input metadata would need a single partition key here; the warning is in the run's event log.)
            context.log.warning(f"{name}: read {len(present)} partitions up to {present[-1]}; {len(not_arrived)} "
                                "later ones have not arrived yet")
        frames = {key: pl.read_parquet(str(paths[key])) for key in present}
        return frames[present[0]] if len(keys) == 1 else frames


class PolarsParquetIOManager(dg.ConfigurableIOManagerFactory):
    """One parquet file per asset, or per partition: <base_dir>/<asset>/<partition>.parquet.

    An asset reading several partitions (an unpartitioned one, a look-back, a run over a range of days) receives
    {partition_key: DataFrame}; an asset run over several partitions returns one in the same shape.
    """

    base_dir: str

    def create_io_manager(self, context) -> _PolarsParquet:
        return _PolarsParquet(base_path=UPath(self.base_dir))
