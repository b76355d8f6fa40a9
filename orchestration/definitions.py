"""The one Dagster Definitions root: `dagster dev -m orchestration.definitions`. Every registered case study's
definitions, merged with the shared resources."""

from __future__ import annotations

import dagster as dg

from orchestration.settings import Settings


# Runs launched from the UI, by schedules and by sensors run their steps in the run worker's process, one after
# another, as the main command does. Measured on 2 cores (`./dev.sh bench ui_launch --full`, README "The Dagster UI
# as the front door"): a process per step, even forked from a server that had imported the stack, made the ad click
# training job 1.59x and the video one 1.79x their in-process time (parallel steps contend for the two cores that
# XGBoost and torch already use, and each step pays its imports again); in the run worker they take 1.07x and 1.26x.
# Where many cores make parallel steps pay, `dg.multiprocess_executor` with a forkserver is the one line to change.
EXECUTOR = dg.in_process_executor


def build_definitions(settings: Settings) -> dg.Definitions:
    from orchestration.resources import shared_resources

    return dg.Definitions.merge(
        *(case.build_definitions(settings.platform, settings.of(case.name)) for case in settings.cases),
        dg.Definitions(resources=shared_resources(settings.platform), executor=EXECUTOR),
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions(Settings.from_env())
