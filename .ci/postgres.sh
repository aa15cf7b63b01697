#!/usr/bin/env bash
# Start a throwaway PostgreSQL server on 127.0.0.1 for the shared-study test, and print the
# line that hands its URL to the tests:
#
#   eval "$(.ci/postgres.sh)"        # exports LAUNCHER_TEST_POSTGRES_URL
#   .ci/postgres.sh stop             # stops it
#
# Installs PostgreSQL with apt-get when no server binaries are found (needs root). The server
# runs as the "postgres" user (or the current user when not root) with its data in
# $PGTEST_DIR (default /tmp/launcher-postgres), port $PGTEST_PORT (default 54329). The password
# is random per data directory and only printed in the export line.
set -euo pipefail

DIR="${PGTEST_DIR:-/tmp/launcher-postgres}"
PORT="${PGTEST_PORT:-54329}"
DB=launcher_test
USER_NAME=launcher

log() { echo "postgres.sh: $*" >&2; }

find_bin() {
  local found
  found=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -n "$found" ] && [ -x "$found/initdb" ]; then echo "$found"; return; fi
  if command -v initdb >/dev/null 2>&1; then dirname "$(command -v initdb)"; return; fi
}

BIN=$(find_bin)
if [ -z "$BIN" ]; then
  if [ "$(id -u)" != 0 ]; then log "PostgreSQL is not installed and this is not root"; exit 1; fi
  log "installing PostgreSQL with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >&2
  BIN=$(find_bin)
fi

if [ "$(id -u)" = 0 ]; then
  RUN_AS=(runuser -u postgres --)
else
  RUN_AS=()
fi
as_server() { "${RUN_AS[@]}" "$@"; }

if [ "${1:-start}" = stop ]; then
  as_server "$BIN/pg_ctl" -D "$DIR/data" -m fast stop >&2 || true
  exit 0
fi

mkdir -p "$DIR"
[ "$(id -u)" = 0 ] && chown postgres "$DIR"
if [ ! -f "$DIR/password" ]; then
  as_server sh -c "umask 077; head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n' > '$DIR/password'"
fi
PASSWORD=$(cat "$DIR/password")

if [ ! -f "$DIR/data/PG_VERSION" ]; then
  log "initdb in $DIR/data"
  as_server "$BIN/initdb" -D "$DIR/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 >/dev/null
fi

if ! as_server "$BIN/pg_ctl" -D "$DIR/data" status >/dev/null 2>&1; then
  log "starting the server on 127.0.0.1:$PORT"
  as_server "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $PORT -k $DIR -c max_connections=200" start >/dev/null
fi

PSQL=("$BIN/psql" -h "$DIR" -p "$PORT" -U postgres -v ON_ERROR_STOP=1 -q)
if ! as_server "${PSQL[@]}" -tAc "SELECT 1 FROM pg_roles WHERE rolname='$USER_NAME'" | grep -q 1; then
  as_server "${PSQL[@]}" -c "CREATE ROLE $USER_NAME LOGIN PASSWORD '$PASSWORD'"
fi
if ! as_server "${PSQL[@]}" -tAc "SELECT 1 FROM pg_database WHERE datname='$DB'" | grep -q 1; then
  as_server "${PSQL[@]}" -c "CREATE DATABASE $DB OWNER $USER_NAME"
fi

echo "export LAUNCHER_TEST_POSTGRES_URL=postgresql+psycopg://$USER_NAME:$PASSWORD@127.0.0.1:$PORT/$DB"
