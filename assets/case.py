"""The case-study contract: each case study package exports one `CaseStudy`, and `orchestration/cases.py` lists them.

Everything the platform does for a case (its Definitions, settings from the environment, the main command's `run`,
`train`, `rollback` and `live`, packaging, the results printout, the README's front table, the shared tests) is
read from that object, so a new case study is its folders plus one registry line.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from types import UnionType
from typing import Any, Literal

import dagster as dg


@dataclass(frozen=True)
class Platform:
    """The platform's settings (orchestration/settings.py reads them from the environment), handed to every case
    study when its definitions are built."""

    state_dir: Path
    lake_dir: Path
    mlflow_tracking_uri: str
    mlflow_artifact_root: str
    mlflow_ui_url: str
    bentoml_home: Path
    online_store_url: str
    stream_url: str
    promotion_require_interval: bool = True

    def landing_dir(self, case: str) -> str:
        return str(self.lake_dir / "landing" / case)


# --- The main command's steps, declared by each case and carried out by orchestration.main ---------------------


@dataclass(frozen=True)
class EveryPartition:
    """Run a partitioned job over all its partitions: one after another, as its daily schedule would have, or with
    `single_run` (every asset of the job takes a range of partitions) all of them in one run."""

    job: str
    what: str  # shown in progress lines, e.g. "ingest, validate and featurize"
    single_run: bool = False


@dataclass(frozen=True)
class GatedTraining:
    """Run the training job; its promotion check decides whether the champion moves (a loss is not an error)."""

    job: str
    check: str
    what: str


@dataclass(frozen=True)
class LatestPartition:
    """Run a partitioned job on the newest partition, once the champion exists."""

    job: str
    what: str
    needs_champion: bool = True


Step = EveryPartition | GatedTraining | LatestPartition


@dataclass(frozen=True)
class BentoSpec:
    """What `bentos/package.py` needs to build the case's service around the exact champion."""

    bentofile: str  # relative to the project root
    packages: tuple[str, ...]  # pinned at build time to the versions installed here


# --- Settings: every field of a case's settings dataclass is settable from MLSD_<CASE>_<FIELD> ------------------


class InvalidSetting(ValueError):
    """Raised by a settings dataclass's checks; the parser names the environment variable."""

    def __init__(self, field_name: str, message: str):
        super().__init__(message)
        self.field_name = field_name


def check_parses(settings, **parsers: typing.Callable[[Any], object]) -> None:
    """In a settings dataclass's checks: each named field's value through its parser (models' own: a window size, a
    duration, a drift); the first ValueError is an InvalidSetting naming the field."""
    for name, parse in parsers.items():
        try:
            parse(getattr(settings, name))
        except ValueError as error:
            raise InvalidSetting(name, str(error)) from None


def _parse_value(kind: Any, raw: str) -> Any:
    args = typing.get_args(kind)
    if typing.get_origin(kind) in (typing.Union, UnionType) and type(None) in args:
        if raw.strip().lower() in ("none", "null"):
            return None
        (kind,) = [a for a in args if a is not type(None)]
    if typing.get_origin(kind) is Literal:
        if raw not in typing.get_args(kind):
            raise ValueError(f"use one of {', '.join(map(str, typing.get_args(kind)))}")
        return raw
    if kind is bool:
        lowered = raw.strip().lower()
        if lowered not in ("1", "0", "true", "false", "yes", "no"):
            raise ValueError("use true or false")
        return lowered in ("1", "true", "yes")
    if kind is date:
        return date.fromisoformat(raw)
    if kind in (int, float, str):
        return kind(raw)
    raise TypeError(f"settings of type {kind} cannot be read from the environment")


def settings_fields(settings_type: type) -> list[tuple[str, Any, Any]]:
    """(field, type, default) of a settings dataclass, in declaration order."""
    hints = typing.get_type_hints(settings_type)
    return [(f.name, hints[f.name], f.default) for f in dataclasses.fields(settings_type)]


def parse_settings(settings_type: type, prefix: str, env: Mapping[str, str]):
    """The settings dataclass from MLSD_<CASE>_<FIELD> variables (empty ones are unset), each parsed by its type.

    A bad value is an error that names the variable and what it accepts.
    """
    values, raw_values = {}, {}
    for name, kind, _ in settings_fields(settings_type):
        variable = f"{prefix}{name.upper()}"
        raw = env.get(variable)
        if raw is None or raw == "":
            continue
        try:
            values[name] = _parse_value(kind, raw)
        except ValueError as error:
            raise ValueError(f"{variable}={raw!r} is not valid: {error}") from None
        raw_values[name] = raw
    try:
        return settings_type(**values)
    except InvalidSetting as error:
        variable = f"{prefix}{error.field_name.upper()}"
        shown = f"={raw_values[error.field_name]!r}" if error.field_name in raw_values else " (default)"
        raise ValueError(f"{variable}{shown} is not valid: {error}") from None


# --- The case study ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CaseStudy:
    """One of the book's case studies as the platform sees it.

    `name` is also its Dagster group, MLflow experiment, environment prefix (MLSD_<NAME>_) and resource-key prefix.
    The evaluation asset's metadata carries the front table's figures: `baseline`, `baseline_value`,
    `model_value`, `oracle_value` (None without an oracle), and `comparison` (a markdown table).
    """

    name: str
    chapter: int
    title: str
    predicts: str
    metric: str  # the book's offline metric as the front table names it, e.g. "NCE (lower is better)"
    serving: Literal["online", "batch"]
    settings_type: type
    small: Mapping[str, Any]  # test-sized settings: the shared tests run every case on them
    build_definitions: typing.Callable[[Platform, Any], dg.Definitions]
    registered_model: str
    evaluation_asset: str
    training_job: str
    rollback_job: str
    promotion_check: str
    run_steps: tuple[Step, ...]
    bento: BentoSpec
    # Partitioned ingestion and monitoring jobs: `live` plays days forward through them (cases without: None).
    daily_job: str | None = None
    monitoring_job: str | None = None
    # A valid body for each endpoint of the service, whatever the data: the shared tests send them.
    example_requests: Mapping[str, dict] = field(default_factory=dict)
    # Environment the served bento needs beyond its model (e.g. the online store), from the platform's settings.
    serving_env: typing.Callable[[Any], dict[str, str]] = field(default=lambda platform_settings: {})
    # Assets the main command's run cannot materialize on every world, each with why and the test that does (the
    # contract tests hold every other asset and check of the group to the run).
    outside_the_run: Mapping[str, str] = field(default_factory=dict)

    @property
    def env_prefix(self) -> str:
        return f"MLSD_{self.name.upper()}_"

    def settings_from_env(self, env: Mapping[str, str]):
        return parse_settings(self.settings_type, self.env_prefix, env)

    def key(self, suffix: str) -> str:
        """A name in the case's namespace: resource keys, assets, jobs."""
        return f"{self.name}_{suffix}"
