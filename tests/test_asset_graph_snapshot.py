"""The asset graph as users see it in the UI: a change to it shows up here as a diff to review.

Regenerate after an intended change: MLSD_UPDATE_SNAPSHOTS=1 ./dev.sh test tests/test_asset_graph_snapshot.py
"""

import json
import os
from pathlib import Path

import dagster as dg

from orchestration.definitions import build_definitions

SNAPSHOT = Path(__file__).parent / "snapshots" / "asset_graph.json"


def _graph(defs: dg.Definitions) -> dict:
    graph = defs.resolve_asset_graph()
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        assets[key.to_user_string()] = {
            "group": node.group_name,
            "kinds": sorted(node.kinds),
            "upstream": sorted(k.to_user_string() for k in node.parent_keys),
            "partitioned": type(node.partitions_def).__name__ if node.partitions_def else None,
            "has_description": bool(node.description),
        }
    checks = {}
    for check_key in sorted(graph.asset_check_keys, key=lambda k: k.name):
        spec = graph.get_check_spec(check_key)
        checks[check_key.name] = {"asset": check_key.asset_key.to_user_string(), "blocking": spec.blocking}
    jobs = sorted(job.name for job in defs.resolve_all_job_defs() if not job.name.startswith("__"))
    return {"assets": assets, "checks": checks, "jobs": jobs}


def test_asset_graph_matches_the_snapshot(small_settings):
    defs = build_definitions(small_settings)
    dg.Definitions.validate_loadable(defs)
    current = _graph(defs)
    if os.environ.get("MLSD_UPDATE_SNAPSHOTS") == "1" or not SNAPSHOT.exists():
        SNAPSHOT.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
    assert current == json.loads(SNAPSHOT.read_text())


def test_every_asset_has_a_group_kinds_and_a_docstring(small_settings):
    for name, node in _graph(build_definitions(small_settings))["assets"].items():
        assert node["group"] and node["group"] != "default", name
        assert node["kinds"], name
        assert node["has_description"], name


def test_the_module_dagster_dev_loads_validates(tmp_path):
    """`dagster dev -m orchestration.definitions` loads this module; validate it the same way."""
    import subprocess
    import sys

    env = {**os.environ, "MLSD_STATE_DIR": str(tmp_path), "DAGSTER_HOME": str(tmp_path)}
    dagster = Path(sys.executable).parent / "dagster"
    result = subprocess.run(
        [str(dagster), "definitions", "validate", "-m", "orchestration.definitions"],
        cwd=Path(__file__).parents[1],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
