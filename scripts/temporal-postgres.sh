#!/usr/bin/env bash
# The scale path: Temporal server 1.29.1 (the version the pinned CLI's dev server bundles) on
# Postgres instead of the dev server's SQLite file, to benchmark Hookline against it:
#
#   bench/temporal-postgres.sh            install (if missing) + schema + start, in the foreground
#   bench/temporal-postgres.sh install    go install the server and temporal-sql-tool into .tools/bin
#   bench/temporal-postgres.sh schema     create + migrate databases temporal and temporal_visibility
#   bench/temporal-postgres.sh start      run the server (Ctrl-C stops it); creates namespace default
#   bench/temporal-postgres.sh drop       drop both databases (asks no questions)
#
# then, in another terminal:  TEMPORAL_ADDRESS=127.0.0.1:7233 npm run bench
#
# Needs Go >= 1.25 for `install` (a large build: a few minutes and ~1 GiB of module downloads the
# first time), a Postgres 12+ reachable as below, and the Temporal CLI (.tools/bin/temporal, or on
# PATH) to create the namespace. Environment, with defaults:
#   SQL_HOST=127.0.0.1 SQL_PORT=5432 SQL_USER=postgres SQL_PASSWORD=   the Postgres to use
#   TEMPORAL_PORT=7233          frontend gRPC port; the server also takes the next few ports and
#                               TEMPORAL_PORT-1000…-994 for membership (see bench/temporal/postgres.yaml)
#   TEMPORAL_HISTORY_SHARDS=4   fixed when the databases are created; `drop` to change it
set -euo pipefail

TEMPORAL_SERVER_VERSION=v1.29.1
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="$REPO/.tools/bin"
export SQL_HOST="${SQL_HOST:-127.0.0.1}" SQL_PORT="${SQL_PORT:-5432}" SQL_USER="${SQL_USER:-postgres}" SQL_PASSWORD="${SQL_PASSWORD:-}"
export TEMPORAL_PORT="${TEMPORAL_PORT:-7233}"
export TEMPORAL_DYNAMIC_CONFIG="$REPO/bench/temporal/dynamicconfig.yaml"

say() { echo "[temporal-postgres] $*" >&2; }

install() {
  if [[ -x "$BIN/temporal-server" && -x "$BIN/temporal-sql-tool" ]]; then
    say "already installed: $BIN/temporal-server, $BIN/temporal-sql-tool"
    return
  fi
  command -v go >/dev/null || { say "go is not on PATH: install Go >= 1.25 (https://go.dev/dl/)"; exit 1; }
  mkdir -p "$BIN"
  local tmp
  tmp="$(mktemp -d)"
  say "building go.temporal.io/server/cmd/server and cmd/tools/sql @$TEMPORAL_SERVER_VERSION (takes minutes)…"
  # go install names binaries after their package directories (server, sql): build into a temp
  # GOBIN and give them their usual names.
  GOBIN="$tmp" go install \
    "go.temporal.io/server/cmd/server@$TEMPORAL_SERVER_VERSION" \
    "go.temporal.io/server/cmd/tools/sql@$TEMPORAL_SERVER_VERSION"
  mv "$tmp/server" "$BIN/temporal-server"
  mv "$tmp/sql" "$BIN/temporal-sql-tool"
  rmdir "$tmp"
  say "installed $BIN/temporal-server and $BIN/temporal-sql-tool"
}

schema_dir() {
  # update-schema embeds only the MySQL versioned schemas; Postgres's come from the module source
  # that `go install` downloaded.
  local dir
  dir="$(go env GOMODCACHE)/go.temporal.io/server@$TEMPORAL_SERVER_VERSION/schema/postgresql/v12/$1/versioned"
  [[ -d "$dir" ]] || { say "missing $dir (run: $0 install)"; exit 1; }
  echo "$dir"
}

sqltool() {
  "$BIN/temporal-sql-tool" --plugin postgres12 --ep "$SQL_HOST" -p "$SQL_PORT" -u "$SQL_USER" ${SQL_PASSWORD:+--pw "$SQL_PASSWORD"} "$@"
}

schema() {
  local db kind
  for kind in temporal visibility; do
    db=temporal; [[ $kind == visibility ]] && db=temporal_visibility
    # create-database is a no-op (exit 0) when the database exists.
    sqltool --db "$db" create-database >/dev/null
    # update-schema brings an initialised database to the latest version and is idempotent; on a
    # new one it fails (no version table) and the database is initialised first.
    if ! sqltool --db "$db" update-schema -d "$(schema_dir "$kind")" >/dev/null 2>&1; then
      local out
      out="$(mktemp)"
      if ! { sqltool --db "$db" setup-schema -v 0.0 && sqltool --db "$db" update-schema -d "$(schema_dir "$kind")"; } >"$out" 2>&1; then
        cat "$out" >&2
        say "schema setup of $db failed"
        exit 1
      fi
      rm -f "$out"
    fi
    say "database $db is at the latest $TEMPORAL_SERVER_VERSION schema"
  done
}

drop() {
  sqltool --db temporal drop-database -f || true
  sqltool --db temporal_visibility drop-database -f || true
}

temporal_cli() {
  if [[ -n "${TEMPORAL_CLI_PATH:-}" ]]; then echo "$TEMPORAL_CLI_PATH"
  elif command -v temporal >/dev/null; then command -v temporal
  elif [[ -x "$BIN/temporal" ]]; then echo "$BIN/temporal"
  else say "no Temporal CLI (needed to create the namespace); see README"; exit 1
  fi
}

start() {
  [[ -x "$BIN/temporal-server" ]] || { say "not installed (run: $0 install)"; exit 1; }
  local cli address="127.0.0.1:$TEMPORAL_PORT"
  cli="$(temporal_cli)"
  "$BIN/temporal-server" --root "$REPO/bench" --config temporal --env postgres --allow-no-auth start &
  local pid=$!
  trap 'kill -TERM $pid 2>/dev/null; wait $pid' INT TERM
  for _ in $(seq 1 120); do
    "$cli" operator cluster health --address "$address" >/dev/null 2>&1 && break
    kill -0 "$pid" 2>/dev/null || { say "server exited during start"; exit 1; }
    sleep 0.5
  done
  if ! "$cli" operator namespace describe --namespace default --address "$address" >/dev/null 2>&1; then
    "$cli" operator namespace create --namespace default --retention 72h --address "$address" >/dev/null
    say "created namespace default"
  fi
  say "Temporal $TEMPORAL_SERVER_VERSION on Postgres ${SQL_HOST}:${SQL_PORT} is up: TEMPORAL_ADDRESS=$address"
  wait "$pid"
}

case "${1:-all}" in
  install) install ;;
  schema) schema ;;
  start) start ;;
  drop) drop ;;
  all) install; schema; start ;;
  *) say "usage: $0 [install|schema|start|drop|all]"; exit 2 ;;
esac
