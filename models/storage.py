"""File writes that readers can never see half done."""

from __future__ import annotations

import os

import polars as pl


def write_parquet_atomically(frame: pl.DataFrame, path: os.PathLike | str) -> None:
    """Write then rename: a reader sees the old file or the new one, never half of one."""
    path = os.fspath(path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}"
    frame.write_parquet(tmp)
    os.replace(tmp, path)
