"""Package a registered MLflow model version as a bento: import it into the BentoML store, then build.

Run as its own process (the <case>_bento_model and <case>_bento assets do), because BentoML fixes its store
location (BENTOML_HOME) when it is imported:

    python -m bentos.package import-model --name ad_click_ctr --version 3 --case ad_click
    python -m bentos.package build --bentofile bentos/ad_click/bentofile.yaml --model-tag ad_click_ctr:<v> \
        --packages mlflow xgboost-cpu ...
Both print one JSON line describing what they made. A build works in a temporary copy of the files its bentofile
includes, with `model_tag.py` written beside the service there: the source tree is never written, so two builds
at once cannot race.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import shutil
import sys
import tempfile
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def import_model(name: str, version: str, case: str) -> dict:
    import bentoml

    for existing in bentoml.models.list():  # (listing by a name that has no model yet raises)
        if existing.tag.name == name and existing.info.labels.get("mlflow_version") == str(version):
            # Already imported: reuse it rather than copy the same version again.
            return {"model_tag": str(existing.tag), "mlflow_version": str(version)}
    model = bentoml.mlflow.import_model(
        name,
        model_uri=f"models:/{name}/{version}",
        labels={"mlflow_version": str(version), "case_study": case},
        metadata={"mlflow_tracking_uri": os.environ.get("MLFLOW_TRACKING_URI", "")},
    )
    return {"model_tag": str(model.tag), "mlflow_version": str(version)}


def _copy_context(config: dict, into: Path) -> None:
    """The files the bentofile includes (and does not exclude), copied from the project root into `into`."""
    excludes = config.get("exclude", [])
    for pattern in config.get("include", []):
        for path in ROOT.glob(pattern):
            relative = path.relative_to(ROOT)
            if not path.is_file() or any(fnmatch.fnmatch(str(relative), e) or e.strip("*/") in relative.parts
                                         for e in excludes):
                continue
            target = into / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)


def build(bentofile: str, model_tag: str, packages: list[str]) -> dict:
    """Build the bento around exactly `model_tag` (never "latest": the store may hold several versions)."""
    import bentoml
    import yaml

    config = yaml.safe_load((ROOT / bentofile).read_text())
    config["python"] = {
        "packages": [f"{p}=={metadata.version(p)}" for p in packages],
        "lock_packages": False,  # pins are exact already; locking would resolve against the network
    }
    with tempfile.TemporaryDirectory(prefix="mlsd-bento-") as tmp:
        context = Path(tmp)
        _copy_context(config, context)
        service_dir = context / Path(bentofile).parent
        service_dir.mkdir(parents=True, exist_ok=True)
        (service_dir / "model_tag.py").write_text(f'"""Written by bentos/package.py for one build."""\n\nMODEL_TAG = {model_tag!r}\n')
        config["include"] = [*config.get("include", []), str(Path(bentofile).parent / "model_tag.py")]
        (context / "bentofile.yaml").write_text(yaml.safe_dump(config))
        # BentoML imports the service to find its models: it must see the copy (with model_tag.py), not the
        # packages this process already imported from the source tree.
        copied = {path.name for path in context.iterdir() if path.is_dir()}
        for module in [m for m in sys.modules if m.split(".")[0] in copied]:
            del sys.modules[module]
        sys.path.insert(0, str(context))
        bento = bentoml.bentos.build_bentofile(str(context / "bentofile.yaml"), build_ctx=str(context))
    models = [str(m.tag) for m in bento.info.all_models]
    return {"bento_tag": str(bento.tag), "models": models, "path": bento.path}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    imp = sub.add_parser("import-model")
    imp.add_argument("--name", required=True, help="the registered MLflow model")
    imp.add_argument("--version", required=True)
    imp.add_argument("--case", required=True, help="the case study, recorded as a label")
    bld = sub.add_parser("build")
    bld.add_argument("--bentofile", required=True, help="relative to the project root")
    bld.add_argument("--model-tag", required=True, help="the BentoML model to pack, e.g. ad_click_ctr:abc123")
    bld.add_argument("--packages", nargs="+", required=True, help="distributions the service needs, pinned here")
    args = parser.parse_args(argv)
    if args.command == "import-model":
        result = import_model(args.name, args.version, args.case)
    else:
        result = build(args.bentofile, args.model_tag, args.packages)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
