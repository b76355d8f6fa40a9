"""The root Definitions as `dagster dev` and the daemon load them."""

import os
from pathlib import Path


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
