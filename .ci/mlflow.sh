#!/usr/bin/env bash
# Start a throwaway MLflow tracking server on 127.0.0.1 (SQLite backend, local artifact store,
# artifacts served through the server), and print the line that hands its URI to the tests:
#
#   eval "$(.ci/mlflow.sh)"        # exports MLFLOW_TRACKING_URI
#   .ci/mlflow.sh stop             # stops it
#
# Installs nothing: the `mlflow` command must be on PATH or beside this Python (.venv/bin).
# The tests start a server of their own (tests/test_tracking_mlflow.py); this one is for trying
# logger=mlflow by hand and for CI jobs that want one server for several test runs.
# Data in $MLFLOWTEST_DIR (default /tmp/launcher-mlflow), port $MLFLOWTEST_PORT (default 54330).
set -euo pipefail

DIR="${MLFLOWTEST_DIR:-/tmp/launcher-mlflow}"
PORT="${MLFLOWTEST_PORT:-54330}"
HERE="$(cd "$(dirname "$0")/.." && pwd)"

log() { echo "mlflow.sh: $*" >&2; }

MLFLOW=$(command -v mlflow || true)
[ -z "$MLFLOW" ] && [ -x "$HERE/.venv/bin/mlflow" ] && MLFLOW="$HERE/.venv/bin/mlflow"
if [ -z "$MLFLOW" ]; then log 'mlflow is not installed: pip install "launcher[mlflow]"'; exit 1; fi

if [ "${1:-start}" = stop ]; then
  if [ -f "$DIR/server.pid" ]; then kill "$(cat "$DIR/server.pid")" 2>/dev/null || true; rm -f "$DIR/server.pid"; fi
  exit 0
fi

mkdir -p "$DIR/artifacts"
URI="http://127.0.0.1:$PORT"
if ! curl -fsS "$URI/health" >/dev/null 2>&1; then
  log "starting the server on $URI (data in $DIR)"
  nohup "$MLFLOW" server --host 127.0.0.1 --port "$PORT" --workers 1 \
    --backend-store-uri "sqlite:///$DIR/mlflow.db" --artifacts-destination "$DIR/artifacts" \
    >"$DIR/server.log" 2>&1 &
  echo $! > "$DIR/server.pid"
  for _ in $(seq 1 120); do
    curl -fsS "$URI/health" >/dev/null 2>&1 && break
    if ! kill -0 "$(cat "$DIR/server.pid")" 2>/dev/null; then log "the server exited; see $DIR/server.log"; exit 1; fi
    sleep 0.5
  done
  curl -fsS "$URI/health" >/dev/null 2>&1 || { log "no answer from $URI after 60 s; see $DIR/server.log"; exit 1; }
fi

echo "export MLFLOW_TRACKING_URI=$URI"
