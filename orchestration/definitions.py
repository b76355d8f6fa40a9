"""The one Dagster Definitions root: `dagster dev -m orchestration.definitions`. Every registered case study's
definitions, merged with the shared resources."""

from __future__ import annotations

import dagster as dg

from orchestration.settings import Settings


# Runs launched from the UI, by schedules and by sensors execute each step in its own process. Started from a
# forkserver that has already imported the stack and the case studies, a step starts in well under a second instead
# of re-importing Dagster, MLflow, GX, XGBoost and torch (about 14 s a step on 2 cores). The main command runs
# in-process either way.
PRELOADED = ["orchestration.definitions", "orchestration.preload", "mlflow", "mlflow.pyfunc", "great_expectations", "xgboost", "sklearn", "polars"]
EXECUTOR = dg.multiprocess_executor.configured(
    {"max_concurrent": 2, "start_method": {"forkserver": {"preload_modules": PRELOADED}}}
)


def build_definitions(settings: Settings) -> dg.Definitions:
    from orchestration.resources import shared_resources

    return dg.Definitions.merge(
        *(case.build_definitions(settings.platform, settings.of(case.name)) for case in settings.cases),
        dg.Definitions(resources=shared_resources(settings.platform), executor=EXECUTOR),
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions(Settings.from_env())
