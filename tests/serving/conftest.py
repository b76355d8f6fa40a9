import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import httpx
import pytest

from tests.conftest import free_port
from tests.pipeline.conftest import pipeline  # noqa: F401  (the small pipeline run the bento comes from)


def _bentoml(home: Path, *args: str, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "BENTOML_HOME": str(home), "BENTOML_DO_NOT_TRACK": "true"}
    return subprocess.run([str(Path(sys.executable).parent / "bentoml"), *args], env=env, check=True,
                          capture_output=True, text=True, **kwargs)


@pytest.fixture(scope="session")
def deployed_bento(pipeline, tmp_path_factory):  # noqa: F811
    """The built bento exported and imported into a fresh BentoML home, as a deploy would: no project state."""
    settings, _, instance, _ = pipeline
    bento = instance.get_latest_materialization_event(dg.AssetKey("ad_click_bento")).asset_materialization
    tag = bento.metadata["bento_tag"].value
    archive = tmp_path_factory.mktemp("export") / "ad_click.bento"
    _bentoml(settings.bentoml_home, "export", tag, str(archive))
    home = tmp_path_factory.mktemp("bentoml_home")
    _bentoml(home, "import", str(archive))
    return tag, home, bento.metadata["mlflow_version"].value


@pytest.fixture(scope="session", params=["sqlite", "redis"])
def served(request, pipeline, deployed_bento, tmp_path_factory):  # noqa: F811
    """`bentoml serve` of the deployed bento on a free loopback port, against each online-store backend."""
    settings, defs, instance, _ = pipeline
    tag, home, version = deployed_bento
    store_url = settings.online_store_url
    if request.param == "redis":
        from orchestration.definitions import build_definitions

        store_url = request.getfixturevalue("redis_url")
        redis_defs = build_definitions(__import__("dataclasses").replace(settings, online_store_url=store_url))
        result = redis_defs.resolve_implicit_global_asset_job_def().execute_in_process(
            instance=instance, asset_selection=[dg.AssetKey("ad_click_online_features")]
        )
        assert result.success
    port = free_port()
    workdir = tmp_path_factory.mktemp("serve")  # not the project: the bento brings its own code
    log = open(workdir / "serve.log", "w")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env |= {"BENTOML_HOME": str(home), "BENTOML_DO_NOT_TRACK": "true", "MLSD_ONLINE_STORE_URL": store_url}
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "bentoml"), "serve", tag, "--host", "127.0.0.1", "--port", str(port)],
        cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"bentoml serve did not become ready:\n{(workdir / 'serve.log').read_text()[-3000:]}")
            time.sleep(0.3)
        yield {"url": base, "process": process, "port": port, "version": version, "backend": request.param,
               "store_url": store_url, "settings": settings, "log": workdir / "serve.log"}
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        log.close()
