"""What every case study delivers, tested the same way for each registered case and for the fixture case that only the
tests register (proof that a new case needs no edit outside its own folders and the registry line)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import dagster as dg
import httpx
import mlflow
import pytest

from tests.conftest import copy_run, registry_with_fixture

CASES = [case.name for case in registry_with_fixture()]
SNAPSHOTS = Path(__file__).parent / "snapshots"


def _client(run):
    uri = run.settings.mlflow_tracking_uri
    return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)


def _champion(run) -> str:
    return str(_client(run).get_model_version_by_alias(run.case.registered_model, "champion").version)


def _group_keys(run) -> set:
    """The group's assets that the case's run materializes (all but those it declares outside the run)."""
    outside = {dg.AssetKey(name) for name in run.case.outside_the_run}
    return {spec.key for spec in run.defs.resolve_all_asset_specs() if spec.group_name == run.case.name} - outside


@pytest.fixture(scope="module", params=CASES)
def run(request, case_runs):
    return case_runs.get(request.param)


def test_every_asset_and_check_materializes_and_passes(run):
    # An asset outside the run is the case's own, and says why and where it is tested.
    assets = {spec.key.to_user_string() for spec in run.defs.resolve_all_asset_specs()}
    assert all(name in assets and reason for name, reason in run.case.outside_the_run.items())
    for key in _group_keys(run):
        assert run.instance.get_latest_materialization_event(key) is not None, key
    records = run.instance.get_event_records(dg.EventRecordsFilter(dg.DagsterEventType.ASSET_CHECK_EVALUATION))
    evaluations = [r.event_log_entry.dagster_event.event_specific_data for r in records]
    expected = {c.name for c in run.defs.resolve_asset_graph().asset_check_keys if c.asset_key in _group_keys(run)}
    assert {e.check_name for e in evaluations} == expected
    failed = [e.check_name for e in evaluations if not e.passed]
    assert not failed, failed


def test_the_first_champion_is_version_1_with_its_decision_recorded(run):
    assert _champion(run) == "1"
    tags = _client(run).get_model_version(run.case.registered_model, "1").tags
    assert tags["promotion_decision"] == "promote"
    assert tags["compared_with_champion_version"] == "none"
    assert tags["promotion_mode"] == "superiority"
    evaluation = run.instance.get_latest_materialization_event(dg.AssetKey(run.case.evaluation_asset))
    metadata = evaluation.asset_materialization.metadata
    for key in ("comparison", "baseline", "baseline_value", "model_value", "oracle_value"):
        assert key in metadata, key
    # The training run names its case, its trigger and the version it registered (the Dagster UI's run tags).
    training = run.instance.get_run_by_id(evaluation.run_id)
    assert training.tags["mlsd/case"] == run.case.name
    assert training.tags["mlsd/trigger"] == "manual"
    assert training.tags["mlsd/model_version"] == f"{run.case.registered_model}/v1"
    assert _client(run).get_model_version(run.case.registered_model, "1").tags["dagster_run_id"] == training.run_id


def test_every_job_sensor_and_schedule_says_what_it_does(run):
    repository = run.defs.get_repository_def()
    mine = [j for j in repository.get_all_jobs() if j.name.startswith(run.case.name)]
    assert mine
    for definition in [*mine, *repository.sensor_defs, *repository.schedule_defs]:
        if definition.name.startswith(run.case.name):
            assert definition.description and len(definition.description) > 30, definition.name
    for job in mine:
        assert job.run_tags.get("mlsd/case") == run.case.name, job.name


def test_a_no_better_challenger_keeps_the_champion_and_rollback_moves_the_alias_back(run, tmp_path):
    from orchestration.main import Runner

    copy = copy_run(run, tmp_path / "state")
    runner = Runner(copy.defs, copy.instance)
    # The same data again: a challenger that cannot be better beyond the bootstrap interval.
    decision = runner.train(copy.case)
    assert decision.startswith("champion kept"), decision
    client, model = _client(copy), copy.case.registered_model
    assert _champion(copy) == "1"
    challenger = client.get_model_version_by_alias(model, "challenger")
    assert str(challenger.version) == "2"
    assert challenger.tags["promotion_decision"] == "keep_champion"
    assert challenger.tags["compared_with_champion_version"] == "1"
    metric = next(k.removesuffix("_difference_ci_low") for k in challenger.tags if k.endswith("_difference_ci_low"))
    low, high = float(challenger.tags[f"{metric}_difference_ci_low"]), float(challenger.tags[f"{metric}_difference_ci_high"])
    assert low <= high
    assert int(challenger.tags["bootstrap_units"]) > 1
    # MLflow's compare view lines the challenger up with the champion it was judged against: one run each, with the
    # same parameter and metric names, linked from the challenger's version description.
    judged = client.search_runs([client.get_experiment_by_name(copy.case.name).experiment_id],
                                filter_string="tags.model = 'promotion_check' and tags.challenger_version = '2'")
    sides = {r.data.tags["role"]: r for r in judged}
    assert set(sides) == {"challenger", "champion"}
    assert sides["champion"].data.tags["registered_version"] == "1"
    assert set(sides["challenger"].data.metrics) == set(sides["champion"].data.metrics) and sides["champion"].data.metrics
    assert set(sides["challenger"].data.params) == set(sides["champion"].data.params)
    for side in sides.values():
        assert side.info.run_id in challenger.description
    assert "compare-runs" in challenger.description
    # The session's run is untouched by what the copy did.
    assert _champion(run) == "1" and len(_client(run).search_model_versions(f"name='{model}'")) == 1

    # A challenger that passed the gate (stand-in: its tag set by hand), promoted through the champion asset...
    client.set_model_version_tag(model, "2", "promotion_decision", "promote")
    job = copy.defs.resolve_implicit_global_asset_job_def()
    keys = [dg.AssetKey(copy.case.key(s)) for s in ("champion", "bento_model", "bento")]
    assert job.execute_in_process(instance=copy.instance, asset_selection=keys).success
    assert _champion(copy) == "2"
    assert client.get_model_version(model, "2").tags["previous_champion"] == "1"
    # ...and rolled back: the alias returns to v1 and the bento is rebuilt with v1's model.
    assert runner.rollback(copy.case) == "rolled back from v2 to v1"
    assert _champion(copy) == "1"
    bento = copy.instance.get_latest_materialization_event(dg.AssetKey(copy.case.key("bento"))).asset_materialization
    assert bento.metadata["mlflow_version"].value == "1"


def _graph(defs: dg.Definitions, group: str) -> dict:
    graph = defs.resolve_asset_graph()
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        if node.group_name != group:
            continue
        assets[key.to_user_string()] = {
            "kinds": sorted(node.kinds),
            "upstream": sorted(k.to_user_string() for k in node.parent_keys),
            "partitioned": type(node.partitions_def).__name__ if node.partitions_def else None,
            "has_description": bool(node.description),
        }
    checks = {}
    for check_key in sorted(graph.asset_check_keys, key=lambda k: k.name):
        if check_key.asset_key.to_user_string() in assets:
            spec = graph.get_check_spec(check_key)
            checks[check_key.name] = {"asset": check_key.asset_key.to_user_string(), "blocking": spec.blocking}
    jobs = sorted(job.name for job in defs.resolve_all_job_defs() if job.name.startswith(f"{group}_"))
    return {"assets": assets, "checks": checks, "jobs": jobs}


@pytest.mark.parametrize("name", CASES)
def test_the_asset_graph_matches_the_case_snapshot(name, tmp_path):
    """A change to the graph shows up as a diff to review. After an intended change:
    MLSD_UPDATE_SNAPSHOTS=1 ./dev.sh test tests/test_case_contract.py -k snapshot"""
    from orchestration.definitions import build_definitions
    from tests.conftest import case_named, small_settings_for

    case = case_named(name)
    defs = build_definitions(small_settings_for(case, tmp_path))
    dg.Definitions.validate_loadable(defs)
    current = _graph(defs, name)
    snapshot = SNAPSHOTS / f"{name}.json"
    if os.environ.get("MLSD_UPDATE_SNAPSHOTS") == "1":
        snapshot.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
    assert snapshot.exists(), f"no snapshot {snapshot}: write it with MLSD_UPDATE_SNAPSHOTS=1 and review it"
    assert current == json.loads(snapshot.read_text())
    for asset, node in current["assets"].items():
        assert node["kinds"] and node["has_description"], asset


@pytest.fixture(scope="module")
def served(run, served_cases):
    return served_cases.get(run.case.name)


def test_the_exported_bento_serves_readyz_openapi_and_a_valid_request(served, run):
    assert httpx.get(f"{served.url}/readyz", timeout=10).status_code == 200
    spec = httpx.get(f"{served.url}/docs.json", timeout=10).json()
    assert set(run.case.example_requests) <= set(spec["paths"])
    for path, body in run.case.example_requests.items():
        response = httpx.post(f"{served.url}{path}", json=body, timeout=30)
        assert response.status_code == 200, (path, response.text)
        assert response.json()["model_version"] == served.version


def test_malformed_requests_get_a_4xx_naming_the_field(served, run):
    spec = httpx.get(f"{served.url}/docs.json", timeout=10).json()
    for path, body in run.case.example_requests.items():
        required = _required_fields(spec, path)
        response = httpx.post(f"{served.url}{path}", json={}, timeout=30)
        assert 400 <= response.status_code < 500, (path, response.text)
        assert any(field in response.text for field in required), (path, required, response.text)
        response = httpx.post(f"{served.url}{path}", json={**body, "unexpected_field": 1}, timeout=30)
        assert 400 <= response.status_code < 500 and "unexpected_field" in response.text, (path, response.text)


def _required_fields(spec: dict, path: str) -> list[str]:
    schema = spec["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
    if "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema.get("required", [])


def test_twice_its_capacity_is_answered_200_or_503_with_retry_after_and_no_dropped_connection(served, run, tmp_path):
    """The serving kit's overload behaviour, on every online case: a 5-second open-loop burst at twice the capacity
    measured just before (bench/ has the 30-second version and the latency aims)."""
    from bench.serving_kit import bodies_file, capacity, overload

    path, body = next(iter(run.case.example_requests.items()))
    bodies = bodies_file([json.dumps(body).encode()], tmp_path)
    rate, _ = capacity(f"{served.url}{path}", bodies, runs=1, seconds=2)
    burst = overload(served.url, path, bodies, 2 * rate, 5)
    assert burst.connection_errors == 0, burst.line()
    assert set(burst.statuses) <= {200, 503}, burst.line()
    assert burst.statuses.get(503, 0) > 0 and burst.rejected_without_retry_after == 0, burst.line()
    # It keeps serving: the load generator shares the 2 cores, so what is left for accepted requests varies.
    assert burst.ok >= 0.1 * rate * 5, f"capacity {rate:.0f}/s; {burst.line()}"


def test_generated_requests_from_the_openapi_document_never_get_a_5xx(served):
    from tests.serving.openapi_contract import assert_no_server_errors

    counts = assert_no_server_errors(served.url, min_requests_per_endpoint=500)
    assert counts and all(sum(by_status.values()) >= 500 for by_status in counts.values()), counts


def test_a_served_bento_stops_cleanly_on_sigint(served_cases):
    """The fixture case's bento on a server of its own (the others stay up for the session's tests)."""
    import signal
    import socket

    served = served_cases.get("fixture_case", MLSD_SERVER_PURPOSE="stopped-by-this-test")
    os.killpg(served.process.pid, signal.SIGINT)
    served.process.wait(timeout=30)  # raises if it has not stopped by then
    with socket.socket() as s:  # and the port is free again
        s.bind(("127.0.0.1", served.port))
