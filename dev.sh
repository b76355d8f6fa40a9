#!/usr/bin/env bash
# The project's commands. The README's two are `./dev.sh run` and `./dev.sh test`; both set everything up first.
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$PWD

# Everything written at run time goes under one ignored state folder; each location can be overridden.
export MLSD_STATE_DIR=${MLSD_STATE_DIR:-$ROOT/.mlsd}
export DAGSTER_HOME=${DAGSTER_HOME:-$MLSD_STATE_DIR/dagster}
export BENTOML_HOME=${BENTOML_HOME:-$MLSD_STATE_DIR/bentoml}
export DAGSTER_DISABLE_TELEMETRY=1 BENTOML_DO_NOT_TRACK=true MLFLOW_DISABLE_TELEMETRY=true GX_ANALYTICS_ENABLED=false
export MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR=false HF_HUB_OFFLINE=1 PYTHONPATH=$ROOT${PYTHONPATH:+:$PYTHONPATH}
PYTHON=${PYTHON:-python3.11}
VENV=$ROOT/.venv

setup() {
    if [ ! -x "$VENV/bin/python" ]; then
        command -v "$PYTHON" >/dev/null || { echo "needs Python 3.11 as '$PYTHON' (set PYTHON=...)" >&2; exit 1; }
        "$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
            || { echo "'$PYTHON' is not Python 3.11" >&2; exit 1; }
        "$PYTHON" -m venv "$VENV"
    fi
    local want stamp="$VENV/.mlsd-installed"
    want=$(cat pyproject.toml requirements.lock | sha256sum | cut -d' ' -f1)
    if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
        echo "installing the pinned stack into .venv (a few minutes the first time)..."
        "$VENV/bin/pip" install --quiet -c requirements.lock -e ".[dev]"
        echo "$want" > "$stamp"
    fi
    if ! command -v redis-server >/dev/null; then
        # The Redis online store and its tests need Debian's redis-server.
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            echo "installing redis-server (Debian package)..."
            apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
        else
            echo "note: redis-server is not installed; the Redis tests need it (sudo apt-get install redis-server)" >&2
        fi
    fi
    mkdir -p "$DAGSTER_HOME"
    [ -f "$DAGSTER_HOME/dagster.yaml" ] || printf 'telemetry:\n  enabled: false\n' > "$DAGSTER_HOME/dagster.yaml"
}

cmd=${1:-help}
shift || true
case "$cmd" in
    setup) setup ;;
    run) setup; exec "$VENV/bin/python" -m orchestration.main run "$@" ;;
    train) setup; exec "$VENV/bin/python" -m orchestration.main train "$@" ;;
    rollback) setup; exec "$VENV/bin/python" -m orchestration.main rollback "$@" ;;
    live) setup; exec "$VENV/bin/python" -m orchestration.main live "$@" ;;
    stream-watch) setup; exec "$VENV/bin/python" -m models.ad_click.stream watch --ad "${1:?usage: ./dev.sh stream-watch AD_ID}" ;;
    serve)
        setup
        export MLSD_ONLINE_STORE_URL=${MLSD_ONLINE_STORE_URL:-sqlite:///$MLSD_STATE_DIR/online/features.db}
        exec "$VENV/bin/bentoml" serve "${1:-ad_click_ranker:latest}" --host 127.0.0.1 --port "${MLSD_BENTO_PORT:-3030}" "${@:2}" ;;
    test) setup; exec "$VENV/bin/python" -m pytest "$@" ;;
    bench) setup; exec "$VENV/bin/python" -m "bench.${1:?which benchmark: see bench/}" "${@:2}" ;;
    ui) setup; exec "$VENV/bin/dagster" dev -m orchestration.definitions -h 127.0.0.1 -p "${MLSD_DAGSTER_PORT:-3000}" "$@" ;;
    mlflow-ui)
        setup
        exec env MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false "$VENV/bin/mlflow" ui --workers 1 \
            --backend-store-uri "${MLSD_MLFLOW_TRACKING_URI:-sqlite:///$MLSD_STATE_DIR/mlflow/mlflow.db}" \
            --host 127.0.0.1 --port "${MLSD_MLFLOW_PORT:-5000}" "$@" ;;
    stream-replay)
        setup
        day=${1:?usage: ./dev.sh stream-replay DAY [SPEED]  (a materialized ad_click_impressions day, e.g. 2026-01-28)}
        exec "$VENV/bin/python" -m models.ad_click.stream replay \
            --events "${MLSD_LAKE_DIR:-$MLSD_STATE_DIR/lake}/assets/ad_click_impressions/$day.parquet" ${2:+--speed "$2"} ;;
    stream-consume)
        setup
        exec "$VENV/bin/python" -m models.ad_click.stream consume \
            --lake-dir "${MLSD_LAKE_DIR:-$MLSD_STATE_DIR/lake}/landing/ad_click_stream" "$@" ;;
    lock) setup; "$VENV/bin/pip" freeze --exclude-editable | sed "s/^torch==\([0-9.]*\)+cpu$/torch==\1/; /^mlsd==/d" | { sed -n 1,2p requirements.lock; cat; } > requirements.lock.new \
            && mv requirements.lock.new requirements.lock ;;
    *) echo "usage: ./dev.sh {run|test|ui|mlflow-ui|serve [BENTO]|train|rollback|stream-replay DAY [SPEED]|stream-consume|bench NAME|setup|lock} [args]"
       [ "$cmd" = help ] ;;
esac
