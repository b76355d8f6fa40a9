"""The pages people use, checked in a real headless browser (Debian's chromium driven by Playwright): the Dagster UI,
the MLflow UI and the bento's OpenAPI page, all served by the production stack. Screenshots go to
.mlsd/test-artifacts/screenshots/."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from tests.production.conftest import ARTIFACTS, ROOT, RUN_NAMES, dagster_runs, query_dagster_db

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps dialling Google's hosts, which this network refuses.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
SCREENSHOTS = ARTIFACTS / "screenshots"


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is not installed: `./dev.sh test` installs it as root (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, request):
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(30_000)
    # Dagster's first visit may open a newsletter dialog over the page; dismiss it whenever it shows.
    page.add_locator_handler(page.get_by_text("Join the Dagster community"),
                             lambda _: page.get_by_role("button", name="Skip").click())
    yield page
    page.screenshot(path=str(SCREENSHOTS / f"{request.node.name}-final.png"), full_page=True)
    context.close()


def shot(page, name: str) -> None:
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def _graph() -> dict:
    """Every registered case's snapshot, with its group: what the UI must show."""
    from orchestration.cases import registered

    merged = {"assets": {}, "checks": {}}
    for case in registered():
        snapshot = json.loads((ROOT / "tests" / "snapshots" / f"{case.name}.json").read_text())
        merged["assets"] |= {name: {**node, "group": case.name} for name, node in snapshot["assets"].items()}
        merged["checks"] |= snapshot["checks"]
    return merged


def dagster_url(stack) -> str:
    return f"http://127.0.0.1:{stack.env['MLSD_DAGSTER_PORT']}"


def test_dagster_ui_lists_every_group_with_its_checks(production_stack, page):
    graph = _graph()
    groups = sorted({a["group"] for a in graph["assets"].values()})
    page.goto(f"{dagster_url(production_stack)}/catalog", wait_until="networkidle")
    # The asset list renders only the rows on screen: a window tall enough for the largest group shows them all.
    page.set_viewport_size({"width": 1600, "height": 3000})
    for group in groups:
        page.goto(f"{dagster_url(production_stack)}/locations/mlsd/asset-groups/{group}/list", wait_until="networkidle")
        for asset in (name for name, a in graph["assets"].items() if a["group"] == group):
            page.get_by_text(asset, exact=True).first.wait_for()
        shot(page, f"dagster-group-{group}")
    checked_assets = sorted({c["asset"] for c in graph["checks"].values()})
    for asset in checked_assets:
        page.goto(f"{dagster_url(production_stack)}/assets/{asset}?view=checks", wait_until="networkidle")
        checks = [name for name, c in graph["checks"].items() if c["asset"] == asset]
        page.get_by_text(f"Checks ({len(checks)})", exact=True).wait_for()
        for check in checks:
            # The list truncates long names on screen; the full name is in the list item all the same.
            page.get_by_text(check, exact=True).first.wait_for(state="attached")
    shot(page, "dagster-checks-last-asset")


def test_materialize_an_asset_from_the_ui(production_stack, production_ad_click, page):
    """The launch path a user takes: asset page, Materialize, the latest day, Launch; the daemon runs it in its own
    process on the stack. One asset (the champion's batch scores of the latest day) exercises all of it: the whole
    group would retrain every model, which the main command and the daemon test already do."""
    runs_before = len(dagster_runs(production_stack))
    page.goto(f"{dagster_url(production_stack)}/assets/ad_click_batch_predictions", wait_until="networkidle")
    page.get_by_text("Materialize…", exact=True).click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("button", name="Latest").click()
    shot(page, "dagster-materialize-dialog")
    dialog.get_by_role("button", name=re.compile(r"^Launch")).click()
    launched = page.get_by_text(re.compile(r"Launched run [0-9a-f]{8}"))
    launched.wait_for()
    run_prefix = re.search(r"Launched run ([0-9a-f]{8})", launched.inner_text()).group(1)

    run_id, status = _wait_for_run(production_stack, run_prefix, timeout=900)
    page.goto(f"{dagster_url(production_stack)}/runs/{run_id}", wait_until="networkidle")
    page.get_by_text("Success", exact=True).first.wait_for()
    shot(page, "dagster-ui-run")
    assert status == "SUCCESS"
    assert len(dagster_runs(production_stack)) == runs_before + 1


def _wait_for_run(stack, prefix: str, timeout: float) -> tuple[str, str]:
    deadline = time.monotonic() + timeout
    while True:
        rows = query_dagster_db(stack, "SELECT run_id, status FROM runs WHERE run_id LIKE %s", (prefix + "%",))
        if rows and rows[0][1] in ("SUCCESS", "FAILURE", "CANCELED"):
            return rows[0]
        assert time.monotonic() < deadline, f"run {prefix} launched from the UI: {rows} after {timeout}s"
        time.sleep(3)


def test_mlflow_ui_shows_runs_and_the_champion(production_stack, production_ad_click, page):
    from mlflow import MlflowClient

    uri = production_stack.url("MLSD_MLFLOW_TRACKING_URI")
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.get_experiment_by_name("ad_click")
    # MLflow's single-page app keeps polling, so the page never goes network-idle: wait for what must show.
    page.goto(f"{uri}/#/experiments/{experiment.experiment_id}/runs", wait_until="domcontentloaded")
    for run_name in RUN_NAMES:
        page.get_by_text(run_name, exact=True).first.wait_for()
    shot(page, "mlflow-experiment-runs")

    champion = client.get_model_version_by_alias("ad_click_ctr", "champion").version
    page.goto(f"{uri}/#/models/ad_click_ctr", wait_until="domcontentloaded")
    row = page.get_by_role("row").filter(has_text=f"Version {champion}")
    row.get_by_text("@ champion", exact=True).wait_for()
    shot(page, "mlflow-registered-model")


def test_bento_openapi_page_loads(production_stack, production_ad_click, page, tmp_path):
    from bentos.server import serving

    # The production BentoML store and Redis online store.
    with serving("ad_click_ranker:latest", env=production_stack.client_env(), cwd=tmp_path, log=tmp_path / "serve.log") as server:
        page.goto(f"{server.url}/", wait_until="networkidle")  # BentoML serves its Swagger UI at the root
        paths = page.locator(".opblock-summary-path")
        paths.first.wait_for()
        shown = {text.replace("\u200b", "") for text in paths.all_inner_texts()}
        shot(page, "bento-openapi")
        spec = page.request.get(f"{server.url}/docs.json").json()
    assert {"/rank", "/score"} <= shown
    assert {"/rank", "/score"} <= set(spec["paths"])
