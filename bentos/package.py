"""Package a registered MLflow model version as a bento: import it into the BentoML store, then build.

Run as its own process (the ad_click_bento_model and ad_click_bento assets do), because BentoML fixes its
store location (BENTOML_HOME) when it is imported:

    python -m bentos.package import-model ad_click --model-version 3
    python -m bentos.package build ad_click
Both print one JSON line describing what they made.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CASES = {"ad_click": {"model": "ad_click_ctr", "bentofile": "bentos/ad_click/bentofile.yaml"}}
# What a bento needs at run time, pinned to the versions installed here.
BENTO_PACKAGES = ("mlflow", "xgboost-cpu", "polars", "pandas", "numpy", "pyarrow", "pydantic", "redis", "scikit-learn")


def import_model(case: str, version: str) -> dict:
    import bentoml

    name = CASES[case]["model"]
    model = bentoml.mlflow.import_model(
        name,
        model_uri=f"models:/{name}/{version}",
        labels={"mlflow_version": str(version), "case_study": case},
        metadata={"mlflow_tracking_uri": os.environ.get("MLFLOW_TRACKING_URI", "")},
    )
    return {"model_tag": str(model.tag), "mlflow_version": str(version)}


def build(case: str) -> dict:
    import bentoml
    import yaml

    config = yaml.safe_load((ROOT / CASES[case]["bentofile"]).read_text())
    config["python"] = {
        "packages": [f"{p}=={metadata.version(p)}" for p in BENTO_PACKAGES],
        "lock_packages": False,  # pins are exact already; locking would resolve against the network
    }
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", dir=ROOT, delete=False) as handle:
        yaml.safe_dump(config, handle)
    try:
        bento = bentoml.bentos.build_bentofile(handle.name, build_ctx=str(ROOT))
    finally:
        os.unlink(handle.name)
    models = [str(m.tag) for m in bento.info.all_models]
    return {"bento_tag": str(bento.tag), "models": models, "path": bento.path}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    imp = sub.add_parser("import-model")
    imp.add_argument("case", choices=sorted(CASES))
    imp.add_argument("--model-version", required=True)
    bld = sub.add_parser("build")
    bld.add_argument("case", choices=sorted(CASES))
    args = parser.parse_args(argv)
    result = import_model(args.case, args.model_version) if args.command == "import-model" else build(args.case)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
