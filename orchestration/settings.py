"""Every setting the project reads from the environment, in one place, with its default.

Read when Dagster loads the definitions or a command starts, never at import time. The README lists them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from urllib.parse import urlparse

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class AdClickSettings:
    raw_dir: str | None = None  # parquet files of your own; None runs the simulator
    start_date: date = date(2026, 1, 1)
    days: int = 28
    seed: int = 7
    users: int = 20_000
    ads: int = 1_500
    advertisers: int = 150
    impressions_per_day: int = 60_000
    warmup_days: int = 7
    validation_days: int = 3
    test_days: int = 4
    drift_kind: str = "none"  # simulator only: none, covariate or concept
    drift_day: int = 0  # 0-based day the drift starts
    explicit_window: bool = False  # start date or days set by hand; else your files' dates decide


@dataclass(frozen=True)
class VideoRecSettings:
    raw_dir: str | None = None  # parquet files of your own; None runs the simulator
    start_date: date = date(2026, 1, 1)
    days: int = 28
    seed: int = 11
    users: int = 3_000
    videos: int = 3_000
    new_videos_per_day: int = 60
    ranker_days: int = 4
    test_days: int = 4
    top_k: int = 20  # batch recommendations per user
    epochs: int = 20


@dataclass(frozen=True)
class Settings:
    state_dir: Path
    lake_dir: Path
    mlflow_tracking_uri: str
    mlflow_artifact_root: str
    mlflow_ui_url: str
    bentoml_home: Path
    online_store_url: str
    stream_url: str
    ad_click: AdClickSettings = field(default_factory=AdClickSettings)
    video_rec: VideoRecSettings = field(default_factory=VideoRecSettings)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        state = Path(env.get("MLSD_STATE_DIR", PROJECT_ROOT / ".mlsd")).resolve()
        ad_click = AdClickSettings(
            raw_dir=env.get("MLSD_AD_CLICK_RAW_DIR") or None,
            **_ad_click_overrides(env),
        )
        tracking_uri = env.get("MLSD_MLFLOW_TRACKING_URI", f"sqlite:///{state / 'mlflow' / 'mlflow.db'}")
        # A tracking server stores artifacts where it was told to (it serves them over HTTP); embedded MLflow writes
        # them into the state folder.
        served = tracking_uri.startswith(("http://", "https://"))
        return cls(
            state_dir=state,
            lake_dir=Path(env.get("MLSD_LAKE_DIR", state / "lake")).resolve(),
            mlflow_tracking_uri=tracking_uri,
            mlflow_artifact_root=env.get("MLSD_MLFLOW_ARTIFACT_ROOT", "" if served else str(state / "mlflow" / "artifacts")),
            mlflow_ui_url=env.get("MLSD_MLFLOW_UI_URL", "http://127.0.0.1:5000"),
            bentoml_home=Path(env.get("BENTOML_HOME", state / "bentoml")).resolve(),
            online_store_url=env.get("MLSD_ONLINE_STORE_URL", f"sqlite:///{state / 'online' / 'features.db'}"),
            stream_url=env.get("MLSD_STREAM_URL", "redis://127.0.0.1:6379/0"),
            ad_click=ad_click,
            video_rec=VideoRecSettings(raw_dir=env.get("MLSD_VIDEO_REC_RAW_DIR") or None, **_overrides(env, _VIDEO_REC_ENV)),
        )

    def with_ad_click(self, **changes) -> Settings:
        return replace(self, ad_click=replace(self.ad_click, **changes))

    def with_video_rec(self, **changes) -> Settings:
        return replace(self, video_rec=replace(self.video_rec, **changes))


_AD_CLICK_ENV = {
    "MLSD_AD_CLICK_START_DATE": ("start_date", date.fromisoformat),
    "MLSD_AD_CLICK_DAYS": ("days", int),
    "MLSD_AD_CLICK_SEED": ("seed", int),
    "MLSD_AD_CLICK_USERS": ("users", int),
    "MLSD_AD_CLICK_ADS": ("ads", int),
    "MLSD_AD_CLICK_IMPRESSIONS_PER_DAY": ("impressions_per_day", int),
    "MLSD_AD_CLICK_WARMUP_DAYS": ("warmup_days", int),
    "MLSD_AD_CLICK_VALIDATION_DAYS": ("validation_days", int),
    "MLSD_AD_CLICK_TEST_DAYS": ("test_days", int),
}


_VIDEO_REC_ENV = {
    "MLSD_VIDEO_REC_START_DATE": ("start_date", date.fromisoformat),
    "MLSD_VIDEO_REC_DAYS": ("days", int),
    "MLSD_VIDEO_REC_SEED": ("seed", int),
    "MLSD_VIDEO_REC_USERS": ("users", int),
    "MLSD_VIDEO_REC_VIDEOS": ("videos", int),
    "MLSD_VIDEO_REC_RANKER_DAYS": ("ranker_days", int),
    "MLSD_VIDEO_REC_TEST_DAYS": ("test_days", int),
    "MLSD_VIDEO_REC_TOP_K": ("top_k", int),
    "MLSD_VIDEO_REC_EPOCHS": ("epochs", int),
}


def _overrides(env: Mapping[str, str], table: dict) -> dict:
    overrides = {}
    for name, (attribute, parse) in table.items():
        if env.get(name):
            try:
                overrides[attribute] = parse(env[name])
            except ValueError as error:
                raise ValueError(f"{name}={env[name]!r} is not valid: {error}") from None
    return overrides


def _ad_click_overrides(env: Mapping[str, str]) -> dict:
    overrides = _overrides(env, _AD_CLICK_ENV)
    overrides["explicit_window"] = "start_date" in overrides or "days" in overrides
    drift = env.get("MLSD_AD_CLICK_DRIFT")
    if drift:
        kind, _, day = drift.partition("@")
        if kind not in ("covariate", "concept") or not day.isdigit():
            raise ValueError(f"MLSD_AD_CLICK_DRIFT={drift!r} is not valid: use covariate@DAY or concept@DAY (0-based day)")
        overrides["drift_kind"], overrides["drift_day"] = kind, int(day)
    return overrides


def redact(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parsed = urlparse(url)
    if not parsed.password:
        return url
    return parsed._replace(netloc=parsed.netloc.replace(f":{parsed.password}@", ":***@")).geturl()
