"""The one Dagster Definitions root: `dagster dev -m orchestration.definitions`. Every registered case study's
definitions, merged with the shared resources."""

from __future__ import annotations

import dagster as dg

from orchestration.settings import Settings


def build_definitions(settings: Settings) -> dg.Definitions:
    from orchestration.resources import shared_resources

    return dg.Definitions.merge(
        *(case.build_definitions(settings.platform, settings.of(case.name)) for case in settings.cases),
        dg.Definitions(resources=shared_resources(settings.platform)),
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions(Settings.from_env())
