#!/usr/bin/env bash
# The project's commands. The README's two are `./dev.sh run` and `./dev.sh test`; both set everything up first.
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$PWD

# Production mode is one setting: MLSD_ENV_FILE names an environment file (README: "For teams") whose values win.
if [ -n "${MLSD_ENV_FILE:-}" ]; then
    [ -f "$MLSD_ENV_FILE" ] || { echo "MLSD_ENV_FILE=$MLSD_ENV_FILE does not exist (./dev.sh stack up writes one)" >&2; exit 1; }
    set -a; . "$MLSD_ENV_FILE"; set +a
fi
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
    # The Redis online store, the production stack and their tests need Debian's redis-server and PostgreSQL.
    debian_package redis-server redis-server
    # wrk: the serving benchmarks' and overload tests' load generator (bench/serving_kit.py).
    debian_package wrk wrk
    ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || command -v pg_ctl >/dev/null || debian_package postgresql pg_ctl
    mkdir -p "$DAGSTER_HOME"
    # The instance file follows the project's template while it is one of the project's (its first words say
    # so), so a new setting reaches existing state folders; a file of your own is kept.
    local template=orchestration/dagster_local.yaml instance=$DAGSTER_HOME/dagster.yaml
    [ -z "${MLSD_DAGSTER_POSTGRES_URL:-}" ] || template=orchestration/dagster_postgres.yaml
    if [ ! -f "$instance" ] || { head -1 "$instance" | grep -q '^# Dagster instance of ' && ! cmp -s "$template" "$instance"; }; then
        cp "$template" "$instance"
    fi
}

# Installs a Debian package when it is missing and we are root with apt (as in CI); otherwise says how.
debian_package() {
    local package=$1 command=$2
    command -v "$command" >/dev/null && return 0
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "installing $package (Debian package)..."
        { [ -n "${APT_UPDATED:-}" ] || apt-get update -qq; } && APT_UPDATED=1 \
            && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >/dev/null
    else
        echo "note: $package is not installed; what needs it says so (sudo apt-get install $package)" >&2
    fi
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
    serve) setup; exec "$VENV/bin/python" -m orchestration.main serve "${1:?usage: ./dev.sh serve CASE|BENTO_TAG  (./dev.sh cases lists them)}" --port "${MLSD_BENTO_PORT:-3030}" ;;
    cases) setup; exec "$VENV/bin/python" -m orchestration.main cases ;;
    settings) setup; exec "$VENV/bin/python" -m orchestration.main settings "$@" ;;
    test)
        setup
        # The browser checks of the UIs use Debian's chromium (Playwright drives it; it downloads no browser).
        debian_package chromium chromium
        exec "$VENV/bin/python" -m pytest "$@" ;;
    screenshots)
        # The README's walk-through images, taken by the browser tests against a fresh production stack.
        setup
        debian_package chromium chromium
        MLSD_SCREENSHOT_DIR=$ROOT/docs/screenshots exec "$VENV/bin/python" -m pytest -p no:cacheprovider -q \
            tests/production/test_ui_pages.py -k walkthrough "$@" ;;
    stack)
        setup
        exec "$VENV/bin/python" -m orchestration.stack "${@:-status}" ;;
    bench) setup; exec "$VENV/bin/python" -m "bench.${1:?which benchmark: see bench/}" "${@:2}" ;;
    ui)
        if [ -n "${MLSD_DAGSTER_POSTGRES_URL:-}" ]; then
            # A second daemon on the shared instance would run every schedule and sensor twice.
            echo "production mode: the stack runs the Dagster webserver at http://127.0.0.1:${MLSD_DAGSTER_PORT:-3000} (./dev.sh stack up)"; exit 0
        fi
        setup; exec "$VENV/bin/python" -m orchestration.supervise -- "$VENV/bin/dagster" dev -m orchestration.definitions -h 127.0.0.1 -p "${MLSD_DAGSTER_PORT:-3000}" "$@" ;;
    mlflow-ui)
        case "${MLSD_MLFLOW_TRACKING_URI:-}" in http://*|https://*)
            echo "production mode: the MLflow UI is the tracking server's, ${MLSD_MLFLOW_UI_URL:-$MLSD_MLFLOW_TRACKING_URI}"; exit 0 ;;
        esac
        setup
        exec env MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false "$VENV/bin/python" -m orchestration.supervise -- "$VENV/bin/mlflow" ui --workers 1 \
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
    *) echo "usage: ./dev.sh {run [CASE ...]|test|cases|settings [CASE]|train CASE|rollback CASE|live CASE|serve CASE|ui|mlflow-ui|stack up|down|status|stream-replay DAY [SPEED]|stream-consume|bench NAME|screenshots|setup|lock} [args]"
       [ "$cmd" = help ] ;;
esac
