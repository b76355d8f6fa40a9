import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from bentos.server import serving
from tests.pipeline.conftest import pipeline, video_pipeline  # noqa: F401  (the small runs the bentos come from)


def _bentoml(home: Path, *args: str, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "BENTOML_HOME": str(home), "BENTOML_DO_NOT_TRACK": "true"}
    return subprocess.run([str(Path(sys.executable).parent / "bentoml"), *args], env=env, check=True,
                          capture_output=True, text=True, **kwargs)


def deploy(run, asset: str, tmp_path_factory) -> tuple[str, Path, str]:
    """The built bento exported and imported into a fresh BentoML home, as a deploy would: no project state."""
    settings, _, instance, _ = run
    bento = instance.get_latest_materialization_event(dg.AssetKey(asset)).asset_materialization
    tag = bento.metadata["bento_tag"].value
    archive = tmp_path_factory.mktemp("export") / f"{asset}.bento"
    _bentoml(settings.bentoml_home, "export", tag, str(archive))
    home = tmp_path_factory.mktemp("bentoml_home")
    _bentoml(home, "import", str(archive))
    return tag, home, bento.metadata["mlflow_version"].value


@pytest.fixture(scope="session")
def deployed_bento(pipeline, tmp_path_factory):  # noqa: F811
    return deploy(pipeline, "ad_click_bento", tmp_path_factory)


@pytest.fixture(scope="session")
def served_video_rec(video_pipeline, tmp_path_factory):  # noqa: F811
    """The video recommender bento, deployed to a fresh BentoML home and served on a free loopback port."""
    tag, home, version = deploy(video_pipeline, "video_rec_bento", tmp_path_factory)
    workdir = tmp_path_factory.mktemp("serve_video")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env |= {"BENTOML_HOME": str(home), "BENTOML_DO_NOT_TRACK": "true"}
    with serving(tag, env=env, cwd=workdir, log=workdir / "serve.log") as server:
        yield {"url": server.url, "process": server.process, "version": version, "settings": video_pipeline[0]}


@pytest.fixture(scope="session", params=["sqlite", "redis"])
def served(request, pipeline, deployed_bento, tmp_path_factory):  # noqa: F811
    """`bentoml serve` of the deployed bento on a free loopback port, against each online-store backend."""
    settings, defs, instance, _ = pipeline
    tag, home, version = deployed_bento
    store_url = settings.online_store_url
    if request.param == "redis":
        from orchestration.definitions import build_definitions

        store_url = request.getfixturevalue("redis_url")
        redis_defs = build_definitions(dataclasses.replace(settings, online_store_url=store_url))
        result = redis_defs.resolve_implicit_global_asset_job_def().execute_in_process(
            instance=instance, asset_selection=[dg.AssetKey("ad_click_online_features")]
        )
        assert result.success
    workdir = tmp_path_factory.mktemp("serve")  # not the project: the bento brings its own code
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env |= {"BENTOML_HOME": str(home), "BENTOML_DO_NOT_TRACK": "true", "MLSD_ONLINE_STORE_URL": store_url}
    with serving(tag, env=env, cwd=workdir, log=workdir / "serve.log") as server:
        yield {"url": server.url, "process": server.process, "port": server.port, "version": version,
               "backend": request.param, "store_url": store_url, "settings": settings}
