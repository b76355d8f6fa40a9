"""The case-specific HTTP tests reuse the session's deployed bentos (tests/conftest.py `served_cases`)."""

import dagster as dg
import pytest


@pytest.fixture(scope="session")
def served_video_rec(served_cases):
    served = served_cases.get("video_rec")
    return {"url": served.url, "process": served.process, "version": served.version, "settings": served.settings}


def _served_ad_click(served_cases, case_runs, store_url: str | None):
    run = case_runs.get("ad_click")
    if store_url is None:
        served, store_url = served_cases.get("ad_click"), run.settings.platform.online_store_url
    else:
        from orchestration.definitions import build_definitions

        # The same online features published to Redis; the bento reads them there.
        redis_defs = build_definitions(run.settings.with_platform(online_store_url=store_url))
        result = redis_defs.resolve_implicit_global_asset_job_def().execute_in_process(
            instance=run.instance, asset_selection=[dg.AssetKey("ad_click_online_features")]
        )
        assert result.success
        served = served_cases.get("ad_click", MLSD_ONLINE_STORE_URL=store_url)
    return {"url": served.url, "process": served.process, "port": served.port, "version": served.version,
            "store_url": store_url, "settings": run.settings}


@pytest.fixture(scope="session", params=["sqlite", "redis"])
def served(request, served_cases, case_runs):
    """`bentoml serve` of the deployed ad click bento, against each online-store backend."""
    store_url = request.getfixturevalue("redis_url") if request.param == "redis" else None
    return {**_served_ad_click(served_cases, case_runs, store_url), "backend": request.param}


@pytest.fixture(scope="session")
def served_similar_listings(served_cases):
    served = served_cases.get("similar_listings")
    return {"url": served.url, "process": served.process, "version": served.version, "settings": served.settings}


@pytest.fixture(scope="session")
def served_event_recommendation(served_cases):
    served = served_cases.get("event_recommendation")
    return {"url": served.url, "process": served.process, "version": served.version, "settings": served.settings}


@pytest.fixture(scope="session")
def served_news_feed(served_cases):
    served = served_cases.get("news_feed")
    return {"url": served.url, "process": served.process, "version": served.version, "settings": served.settings}


@pytest.fixture(scope="session")
def served_video_search(served_cases):
    served = served_cases.get("video_search")
    return {"url": served.url, "process": served.process, "version": served.version, "settings": served.settings}


@pytest.fixture(scope="session")
def served_people_you_may_know(served_cases):
    served = served_cases.get("people_you_may_know")
    return {"url": served.url, "process": served.process, "version": served.version, "settings": served.settings}
