"""The shared resources, configured from the platform's settings in one place (each case adds its own)."""

from __future__ import annotations

from assets.case import Platform


def shared_resources(platform: Platform) -> dict:
    from assets.release import PromotionSettings
    from assets.resources import BentoPackager, MlflowTracking, OnlineFeatureStore, TextEmbeddings
    from orchestration.io import PolarsParquetIOManager

    return {
        "io_manager": PolarsParquetIOManager(base_dir=str(platform.lake_dir / "assets")),
        "mlflow_tracking": MlflowTracking(
            tracking_uri=platform.mlflow_tracking_uri,
            artifact_root=platform.mlflow_artifact_root,
            ui_url=platform.mlflow_ui_url,
        ),
        "online_store": OnlineFeatureStore(url=platform.online_store_url),
        "packager": BentoPackager(bentoml_home=str(platform.bentoml_home), mlflow_tracking_uri=platform.mlflow_tracking_uri),
        "promotion": PromotionSettings(require_interval=platform.promotion_require_interval),
        "text_embeddings": TextEmbeddings(cache_dir=str(platform.state_dir / "text_embeddings")),
    }
