"""Launches from the Dagster UI against the same work run in-process: where a UI launch spends its time.

On a fresh state folder (the cases' small settings unless --full), the main command builds each case's world and
champion; then each scenario runs in-process in one warm process (as `./dev.sh run` runs it) and is launched the way
the UI launches it: a GraphQL `launchRun` to a real `dagster-webserver`, queued, dequeued by a real `dagster-daemon`
and run in a run worker with the Definitions' executor. The UI figure is the wall time from the launch to the run's
end as the UI sees it (polled every 0.2 s), with the run worker's start-up (queued to started) shown apart.

Scenarios: "Materialize all" of the ad click group for the latest day (every asset and check of the group, one run),
and each case's training job.

    ./dev.sh bench ui_launch [--full] [--repeat 1] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GROUP_SCENARIO = "ad_click group, latest day"
LOCATION, REPOSITORY, IMPLICIT_JOB = "mlsd", "__repository__", "__ASSET_JOB"


def bench_env(state: Path, full: bool) -> dict[str, str]:
    from orchestration.cases import registered

    env = {**os.environ, "MLSD_STATE_DIR": str(state), "DAGSTER_HOME": str(state / "dagster"),
           "BENTOML_HOME": str(state / "bentoml"), "PYTHONPATH": str(ROOT)}
    for key in [k for k in env if k.startswith("MLSD_") and k not in ("MLSD_STATE_DIR",)]:
        env.pop(key)  # the bench's own world, whatever the caller's shell sets
    if not full:
        for case in registered():
            env |= {f"{case.env_prefix}{name.upper()}": str(value) for name, value in case.small.items()}
    return env


# --- In-process: one warm process, as the main command runs jobs ---------------------------------------------------


def scenarios(defs):
    """(name, job, partition key) of each scenario; the group's job is the implicit asset job's subset the UI runs."""
    import dagster as dg

    from orchestration.cases import registered

    graph = defs.resolve_asset_graph()
    group = dg.AssetSelection.groups("ad_click").resolve(graph)
    checks = {key for key in graph.asset_check_keys if key.asset_key in group}
    job = defs.resolve_implicit_global_asset_job_def().get_subset(asset_selection=group, asset_check_selection=checks)
    latest = defs.resolve_job_def("ad_click_daily_job").partitions_def.get_last_partition_key()
    found = [(GROUP_SCENARIO, job, latest, sorted(group), sorted(checks))]
    for case in registered():
        found.append((f"{case.name} training job", defs.resolve_job_def(case.training_job), None, None, None))
    return found


def in_process(repeat: int) -> None:
    """Prints one JSON line: each scenario's in-process seconds and how the UI must launch it."""
    from orchestration.definitions import defs
    from orchestration.main import QUIET, quiet_libraries
    from orchestration.settings import Settings

    import dagster as dg

    quiet_libraries(Settings.from_env().platform.state_dir)
    definitions = defs()
    instance = dg.DagsterInstance.get()
    out = []
    for name, job, partition, assets, checks in scenarios(definitions):
        seconds = []
        for _ in range(repeat):
            started = time.monotonic()
            result = job.execute_in_process(instance=instance, partition_key=partition, raise_on_error=False,
                                            run_config=QUIET)
            seconds.append(time.monotonic() - started)
            if not result.success:
                raise SystemExit(f"{name} failed in-process (run {result.run_id})")
        out.append({"name": name, "seconds": seconds, "job": IMPLICIT_JOB if assets else job.name,
                    "partition": partition,
                    "assets": [key.path for key in assets] if assets else None,
                    "checks": [{"assetKey": {"path": c.asset_key.path}, "name": c.name} for c in checks] if checks else None})
    print("RESULT " + json.dumps(out), flush=True)


# --- Through the UI's API ------------------------------------------------------------------------------------------


class Dagster:
    """A real webserver and daemon on the bench's instance, stopped on exit."""

    def __init__(self, env: dict[str, str], logs: Path):
        from bentos.server import free_port

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/graphql"
        workspace = str(ROOT / "orchestration" / "workspace.yaml")
        binaries = Path(sys.executable).parent
        logs.mkdir(parents=True, exist_ok=True)
        self.processes = [
            subprocess.Popen([str(binaries / "dagster-webserver"), "-w", workspace, "-h", "127.0.0.1", "-p", str(self.port)],
                             env=env, cwd=ROOT, stdout=(logs / "webserver.log").open("w"), stderr=subprocess.STDOUT,
                             start_new_session=True),
            subprocess.Popen([str(binaries / "dagster-daemon"), "run", "-w", workspace], env=env, cwd=ROOT,
                             stdout=(logs / "daemon.log").open("w"), stderr=subprocess.STDOUT, start_new_session=True),
        ]

    def query(self, text: str, variables: dict | None = None) -> dict:
        body = json.dumps({"query": text, "variables": variables or {}}).encode()
        request = urllib.request.Request(self.url, body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            answer = json.loads(response.read())
        if answer.get("errors"):
            raise RuntimeError(answer["errors"])
        return answer["data"]

    def wait_ready(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                data = self.query("{ repositoriesOrError { __typename ... on RepositoryConnection { nodes { name } } } }")
                if data["repositoriesOrError"].get("nodes"):
                    return
            except OSError:
                pass
            time.sleep(0.5)
        raise SystemExit("the Dagster webserver did not load the code location in time (see its log)")

    def launch(self, scenario: dict) -> str:
        selector = {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY, "pipelineName": scenario["job"]}
        if scenario["assets"]:
            selector |= {"assetSelection": [{"path": p} for p in scenario["assets"]],
                         "assetCheckSelection": scenario["checks"]}
        tags = [{"key": "dagster/partition", "value": scenario["partition"]}] if scenario["partition"] else []
        data = self.query(
            """mutation($params: ExecutionParams!) { launchRun(executionParams: $params) {
                 __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message }
                 ... on RunConfigValidationInvalid { errors { message } } ... on InvalidSubsetError { message } } }""",
            {"params": {"selector": selector, "runConfigData": {}, "mode": "default",
                        "executionMetadata": {"tags": tags}}},
        )["launchRun"]
        if data["__typename"] != "LaunchRunSuccess":
            raise SystemExit(f"launch of {scenario['name']} refused: {data}")
        return data["run"]["runId"]

    def wait_run(self, run_id: str, timeout: float = 1800) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = self.query("""query($id: ID!) { runOrError(runId: $id) { ... on Run {
                                 status creationTime startTime endTime } } }""", {"id": run_id})["runOrError"]
            if run["status"] in ("SUCCESS", "FAILURE", "CANCELED"):
                return run
            time.sleep(0.2)
        raise SystemExit(f"run {run_id} did not end in {timeout:.0f} s")

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGINT)
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def step_seconds(env: dict[str, str], run_id: str) -> dict[str, float]:
    code = ("import dagster as dg, json, sys; i = dg.DagsterInstance.get(); "
            "print(json.dumps({s.step_key: round(s.end_time - s.start_time, 1) for s in i.get_run_step_stats(sys.argv[1]) "
            "if s.end_time and s.start_time}))")
    completed = subprocess.run([sys.executable, "-c", code, run_id], env=env, capture_output=True, text=True, check=True)
    return json.loads(completed.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="the main command's default settings, not the small ones")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--keep", type=Path, help="state folder to use and keep (default: a temporary one)")
    parser.add_argument("--reuse", action="store_true", help="the --keep folder already has its world: skip the main command")
    parser.add_argument("--in-process", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.in_process:
        return in_process(args.repeat)

    state = args.keep or Path(tempfile.mkdtemp(prefix="mlsd-ui-launch-"))
    env = bench_env(state.resolve(), args.full)
    (state / "dagster").mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "orchestration" / "dagster_local.yaml", state / "dagster" / "dagster.yaml")
    try:
        started = time.monotonic()
        if not (args.reuse and args.keep):
            print(f"world: the main command on {'default' if args.full else 'small'} settings in {state}...", flush=True)
            subprocess.run([sys.executable, "-m", "orchestration.main", "run"], env=env, cwd=ROOT, check=True,
                           stdout=subprocess.DEVNULL)
            print(f"world ready ({time.monotonic() - started:.0f} s)", flush=True)
        print("in-process runs...", flush=True)
        completed = subprocess.run([sys.executable, "-m", "bench.ui_launch", "--in-process", "--repeat", str(args.repeat)],
                                   env=env, cwd=ROOT, check=True, capture_output=True, text=True)
        measured = json.loads(next(l for l in completed.stdout.splitlines() if l.startswith("RESULT "))[7:])
        for scenario in measured:
            print(f"  in-process {scenario['name']}: " + ", ".join(f"{s:.1f} s" for s in scenario["seconds"]), flush=True)

        dagster = Dagster(env, state / "logs")
        try:
            dagster.wait_ready()
            print("webserver and daemon up; UI launches...", flush=True)
            for scenario in measured:
                scenario["ui"], scenario["startup"], scenario["steps"] = [], [], {}
                for _ in range(args.repeat):
                    launched = time.time()
                    run_id = dagster.launch(scenario)
                    run = dagster.wait_run(run_id)
                    seen = time.time()
                    if run["status"] != "SUCCESS":
                        raise SystemExit(f"{scenario['name']} launched from the UI ended {run['status']} (run {run_id})")
                    scenario["ui"].append(seen - launched)
                    scenario["startup"].append(run["startTime"] - launched)
                    scenario["steps"] = step_seconds(env, run_id)
                    print(f"  UI {scenario['name']}: {seen - launched:.1f} s (run started {run['startTime'] - launched:.1f} s "
                          f"after the launch)", flush=True)
        finally:
            dagster.stop()
    finally:
        if not args.keep:
            shutil.rmtree(state, ignore_errors=True)

    print(f"\n| scenario | in-process | from the UI | UI / in-process | run start-up |\n|---|---|---|---|---|")
    for s in measured:
        best_in, best_ui = min(s["seconds"]), min(s["ui"])
        print(f"| {s['name']} | {best_in:.1f} s | {best_ui:.1f} s | {best_ui / best_in:.2f}x | {min(s['startup']):.1f} s |")
    for s in measured:
        slowest = sorted(s["steps"].items(), key=lambda item: -item[1])[:6]
        print(f"slowest steps from the UI, {s['name']}: " + ", ".join(f"{k} {v:.1f} s" for k, v in slowest))


if __name__ == "__main__":
    main()
