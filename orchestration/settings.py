"""Every setting the project reads from the environment, in one place, with its default: the platform's here, each
case study's from its own settings dataclass (MLSD_<CASE>_<FIELD>).

Read when Dagster loads the definitions or a command starts, never at import time. `./dev.sh settings` lists them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from assets.case import CaseStudy, Platform, settings_fields

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Settings:
    platform: Platform
    cases: tuple[CaseStudy, ...]
    case_settings: Mapping[str, Any]  # case name -> its settings dataclass

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, cases: tuple[CaseStudy, ...] | None = None) -> Settings:
        from orchestration.cases import registered

        env = os.environ if environ is None else environ
        cases = registered() if cases is None else cases
        state = Path(env.get("MLSD_STATE_DIR", PROJECT_ROOT / ".mlsd")).resolve()
        tracking_uri = env.get("MLSD_MLFLOW_TRACKING_URI", f"sqlite:///{state / 'mlflow' / 'mlflow.db'}")
        # A tracking server stores artifacts where it was told to (it serves them over HTTP); embedded MLflow writes
        # them into the state folder.
        served = tracking_uri.startswith(("http://", "https://"))
        require_interval = env.get("MLSD_PROMOTION_REQUIRE_INTERVAL", "true").strip().lower()
        if require_interval not in ("true", "false", "1", "0"):
            raise ValueError(f"MLSD_PROMOTION_REQUIRE_INTERVAL={require_interval!r} is not valid: use true or false")
        platform = Platform(
            state_dir=state,
            lake_dir=Path(env.get("MLSD_LAKE_DIR", state / "lake")).resolve(),
            mlflow_tracking_uri=tracking_uri,
            mlflow_artifact_root=env.get("MLSD_MLFLOW_ARTIFACT_ROOT", "" if served else str(state / "mlflow" / "artifacts")),
            mlflow_ui_url=env.get("MLSD_MLFLOW_UI_URL", "http://127.0.0.1:5000"),
            bentoml_home=Path(env.get("BENTOML_HOME", state / "bentoml")).resolve(),
            online_store_url=env.get("MLSD_ONLINE_STORE_URL", f"sqlite:///{state / 'online' / 'features.db'}"),
            stream_url=env.get("MLSD_STREAM_URL", "redis://127.0.0.1:6379/0"),
            promotion_require_interval=require_interval in ("true", "1"),
        )
        return cls(platform, cases, {case.name: case.settings_from_env(env) for case in cases})

    def of(self, case: str):
        return self.case_settings[case]

    def with_case(self, case: str, **changes) -> Settings:
        return replace(self, case_settings={**self.case_settings, case: replace(self.case_settings[case], **changes)})

    def with_platform(self, **changes) -> Settings:
        return replace(self, platform=replace(self.platform, **changes))

    # The platform's locations, read often enough to deserve a name.
    @property
    def lake_dir(self) -> Path:
        return self.platform.lake_dir

    @property
    def mlflow_tracking_uri(self) -> str:
        return self.platform.mlflow_tracking_uri

    @property
    def bentoml_home(self) -> Path:
        return self.platform.bentoml_home


PLATFORM_ENV = {
    "MLSD_STATE_DIR": "everything written at run time (default .mlsd/)",
    "MLSD_LAKE_DIR": "the parquet lake (default $MLSD_STATE_DIR/lake)",
    "MLSD_MLFLOW_TRACKING_URI": "sqlite:///... (embedded default) or http://host:port (a tracking server)",
    "MLSD_MLFLOW_ARTIFACT_ROOT": "artifact location for embedded MLflow (default $MLSD_STATE_DIR/mlflow/artifacts)",
    "MLSD_MLFLOW_UI_URL": "where links in Dagster's metadata point (default http://127.0.0.1:5000)",
    "BENTOML_HOME": "the BentoML store (default $MLSD_STATE_DIR/bentoml)",
    "MLSD_ONLINE_STORE_URL": "sqlite:///<file> (default) or redis://host:port/db",
    "MLSD_STREAM_URL": "Redis of the event stream (default redis://127.0.0.1:6379/0)",
    "MLSD_PROMOTION_REQUIRE_INTERVAL": "true (default): a challenger must beat the champion beyond a 95% bootstrap interval",
}


def settings_table(cases: tuple[CaseStudy, ...]) -> str:
    """Every variable, its type and default: the platform's, then each case study's."""
    lines = ["| variable | type | default / meaning |", "|---|---|---|"]
    lines += [f"| `{name}` | | {meaning} |" for name, meaning in PLATFORM_ENV.items()]
    for case in cases:
        for name, kind, default in settings_fields(case.settings_type):
            # "int | None" would split a markdown cell in two.
            shown = getattr(kind, "__name__", str(kind)).replace("typing.", "").replace(" | ", " or ")
            lines.append(f"| `{case.env_prefix}{name.upper()}` | {shown} | {default} |")
    return "\n".join(lines)
