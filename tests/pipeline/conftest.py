import dagster as dg
import pytest

from orchestration.definitions import build_definitions
from orchestration.main import run_ad_click, run_video_rec


@pytest.fixture(scope="session")
def pipeline(tmp_path_factory):
    """One full run of the ad click group on a small simulation, shared by the tests that build on it."""
    from orchestration.settings import Settings
    from tests.conftest import SMALL

    state = tmp_path_factory.mktemp("state")
    settings = Settings.from_env({"MLSD_STATE_DIR": str(state)}).with_ad_click(**SMALL)
    defs = build_definitions(settings)
    instance = dg.DagsterInstance.ephemeral()
    evaluation = run_ad_click(defs, instance)
    return settings, defs, instance, evaluation


@pytest.fixture(scope="session")
def video_pipeline(tmp_path_factory):
    """One run of the video recommendation group on a small simulation, shared by the tests that build on it."""
    from orchestration.settings import Settings
    from tests.conftest import VIDEO_SMALL

    state = tmp_path_factory.mktemp("video_state")
    settings = Settings.from_env({"MLSD_STATE_DIR": str(state)}).with_video_rec(**VIDEO_SMALL)
    defs = build_definitions(settings)
    instance = dg.DagsterInstance.ephemeral()
    outcome = run_video_rec(defs, instance)
    return settings, defs, instance, outcome
