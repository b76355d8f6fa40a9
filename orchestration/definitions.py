"""The one Dagster Definitions root: `dagster dev -m orchestration.definitions`."""

from __future__ import annotations

import dagster as dg

from orchestration.settings import Settings


def build_definitions(settings: Settings) -> dg.Definitions:
    from assets import ad_click, video_rec
    from assets.ad_click.training import AdClickTimeSplit
    from orchestration.io import PolarsParquetIOManager
    from orchestration.resources import (
        AdClickSource,
        BentoPackager,
        EventStream,
        MlflowTracking,
        OnlineFeatureStore,
    )

    cfg = settings.ad_click
    source = AdClickSource(
        raw_dir=cfg.raw_dir,
        landing_dir=str(settings.lake_dir / "landing" / "ad_click"),
        start_date=cfg.start_date.isoformat(),
        days=cfg.days,
        seed=cfg.seed,
        users=cfg.users,
        ads=cfg.ads,
        advertisers=cfg.advertisers,
        impressions_per_day=cfg.impressions_per_day,
        drift_kind=cfg.drift_kind,
        drift_day=cfg.drift_day,
    )
    if cfg.raw_dir and not cfg.explicit_window:
        start, days = source.data_window()
        source = source.model_copy(update={"start_date": start.isoformat(), "days": days})
    resources = {
        "io_manager": PolarsParquetIOManager(base_dir=str(settings.lake_dir / "assets")),
        "mlflow_tracking": MlflowTracking(
            tracking_uri=settings.mlflow_tracking_uri,
            artifact_root=settings.mlflow_artifact_root,
            ui_url=settings.mlflow_ui_url,
        ),
        "source": source,
        "online_store": OnlineFeatureStore(url=settings.online_store_url),
        "stream": EventStream(url=settings.stream_url, lake_dir=str(settings.lake_dir / "landing" / "ad_click_stream")),
        "packager": BentoPackager(
            bentoml_home=str(settings.bentoml_home), mlflow_tracking_uri=settings.mlflow_tracking_uri
        ),
        "time_split": AdClickTimeSplit(
            warmup_days=cfg.warmup_days, validation_days=cfg.validation_days, test_days=cfg.test_days
        ),
        **video_rec_resources(settings),
    }
    return dg.Definitions.merge(
        ad_click.build_definitions(source.start_date, source.days),
        video_rec.build_definitions(),
        dg.Definitions(resources=resources),
    )


def video_rec_resources(settings: Settings) -> dict:
    from assets.video_rec.raw import VideoRecTimeSplit
    from assets.video_rec.training import VideoRecTraining
    from orchestration.resources import VideoRecSource

    cfg = settings.video_rec
    return {
        "video_source": VideoRecSource(
            raw_dir=cfg.raw_dir,
            landing_dir=str(settings.lake_dir / "landing" / "video_rec"),
            start_date=cfg.start_date.isoformat(),
            days=cfg.days,
            seed=cfg.seed,
            users=cfg.users,
            videos=cfg.videos,
            new_videos_per_day=cfg.new_videos_per_day,
        ),
        "video_time_split": VideoRecTimeSplit(ranker_days=cfg.ranker_days, test_days=cfg.test_days),
        "video_training": VideoRecTraining(epochs=cfg.epochs, top_k=cfg.top_k),
    }


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions(Settings.from_env())
