#!/usr/bin/env bash
# Temporal server 1.29.1 (the version the pinned CLI's dev server bundles) on Postgres: the
# production engine for Hookline (docs/production.md). Config: deploy/temporal/.
#
#   scripts/temporal-postgres.sh            install (if missing) + schema + start, in the foreground
#   scripts/temporal-postgres.sh install    go install the server and temporal-sql-tool into $TEMPORAL_BIN_DIR
#   scripts/temporal-postgres.sh schema     create + migrate databases temporal and temporal_visibility (idempotent)
#   scripts/temporal-postgres.sh start      run the server; creates the namespace and Hookline's search attributes
#   scripts/temporal-postgres.sh drop       drop both databases (asks no questions)
#
# Needs Go >= 1.25 for `install` (a large build: minutes and ~1 GiB of module downloads the first
# time), a Postgres 12+ reachable as below, and the Temporal CLI (TEMPORAL_CLI_PATH, `temporal` on
# PATH or .tools/bin/temporal) for the namespace and search attributes. Environment, with defaults:
#   SQL_HOST=127.0.0.1 SQL_PORT=5432 SQL_USER=postgres SQL_PASSWORD=   the Postgres to use
#   TEMPORAL_PORT=7233          frontend gRPC port; the server also takes the next few ports and
#                               TEMPORAL_PORT-1000…-994 for membership (see deploy/temporal/postgres.yaml)
#   TEMPORAL_HISTORY_SHARDS=512 fixed when the databases are created; see the config for why
#   TEMPORAL_NAMESPACE=default  TEMPORAL_RETENTION=72h (closed workflows kept this long)
#   TEMPORAL_BIN_DIR=.tools/bin where `install` puts temporal-server and temporal-sql-tool
#   TEMPORAL_CONFIG_DIR=deploy/temporal  (postgres.yaml and dynamicconfig.yaml)
#   TEMPORAL_DB=temporal TEMPORAL_VISIBILITY_DB=temporal_visibility   the two databases
set -euo pipefail

TEMPORAL_SERVER_VERSION=v1.29.1
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${TEMPORAL_BIN_DIR:-$REPO/.tools/bin}"
CONFIG_DIR="$(cd "${TEMPORAL_CONFIG_DIR:-$REPO/deploy/temporal}" && pwd)"
NAMESPACE="${TEMPORAL_NAMESPACE:-default}"
RETENTION="${TEMPORAL_RETENTION:-72h}"
export SQL_HOST="${SQL_HOST:-127.0.0.1}" SQL_PORT="${SQL_PORT:-5432}" SQL_USER="${SQL_USER:-postgres}" SQL_PASSWORD="${SQL_PASSWORD:-}"
export TEMPORAL_PORT="${TEMPORAL_PORT:-7233}"
export TEMPORAL_DB="${TEMPORAL_DB:-temporal}" TEMPORAL_VISIBILITY_DB="${TEMPORAL_VISIBILITY_DB:-temporal_visibility}"
export TEMPORAL_HISTORY_SHARDS="${TEMPORAL_HISTORY_SHARDS:-512}"
export TEMPORAL_DYNAMIC_CONFIG="$CONFIG_DIR/dynamicconfig.yaml"
# Hookline's search attributes (DESIGN: find deliveries in the Web UI); the same list as
# src/search-attributes.ts.
SEARCH_ATTRIBUTES=(EventType=Keyword EndpointIds=KeywordList DeadLetteredEndpoints=KeywordList DeliveryStatus=Keyword TenantId=Keyword)

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
    db="$TEMPORAL_DB"; [[ $kind == visibility ]] && db="$TEMPORAL_VISIBILITY_DB"
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
  sqltool --db "$TEMPORAL_DB" drop-database -f || true
  sqltool --db "$TEMPORAL_VISIBILITY_DB" drop-database -f || true
}

temporal_cli() {
  if [[ -n "${TEMPORAL_CLI_PATH:-}" ]]; then echo "$TEMPORAL_CLI_PATH"
  elif command -v temporal >/dev/null; then command -v temporal
  elif [[ -x "$BIN/temporal" ]]; then echo "$BIN/temporal"
  elif [[ -x "$REPO/.tools/bin/temporal" ]]; then echo "$REPO/.tools/bin/temporal"
  else say "no Temporal CLI (needed to create the namespace); see README"; exit 1
  fi
}

# Registers each missing attribute; an existing one with the same type is left alone.
search_attributes() {
  local cli="$1" address="$2" existing="" a
  # A namespace created a moment ago reaches the frontend's cache within ~10 s: wait for it.
  for _ in $(seq 1 60); do
    existing="$("$cli" operator search-attribute list --namespace "$NAMESPACE" --address "$address" 2>/dev/null)" && break
    existing=""
    sleep 0.5
  done
  [[ -n "$existing" ]] || { say "namespace $NAMESPACE is not usable"; return 1; }
  for a in "${SEARCH_ATTRIBUTES[@]}"; do
    if ! grep -qw "${a%%=*}" <<<"$existing"; then
      "$cli" operator search-attribute create --namespace "$NAMESPACE" --name "${a%%=*}" --type "${a##*=}" --address "$address" >/dev/null
      say "registered search attribute ${a%%=*} (${a##*=})"
    fi
  done
}

start() {
  [[ -x "$BIN/temporal-server" ]] || { say "not installed (run: $0 install)"; exit 1; }
  local cli address="127.0.0.1:$TEMPORAL_PORT"
  cli="$(temporal_cli)"
  "$BIN/temporal-server" --root "$(dirname "$CONFIG_DIR")" --config "$(basename "$CONFIG_DIR")" --env postgres --allow-no-auth start &
  local pid=$!
  [[ -n "${TEMPORAL_PID_FILE:-}" ]] && echo "$pid" >"$TEMPORAL_PID_FILE"
  # The server goes with this script, however it ends (signal, failed setup step below).
  trap 'kill -TERM $pid 2>/dev/null; wait $pid' EXIT INT TERM
  for _ in $(seq 1 120); do
    "$cli" operator cluster health --address "$address" >/dev/null 2>&1 && break
    kill -0 "$pid" 2>/dev/null || { say "server exited during start"; exit 1; }
    sleep 0.5
  done
  "$cli" operator cluster health --address "$address" >/dev/null 2>&1 || { say "server did not become healthy"; exit 1; }
  if ! "$cli" operator namespace describe --namespace "$NAMESPACE" --address "$address" >/dev/null 2>&1; then
    "$cli" operator namespace create --namespace "$NAMESPACE" --retention "$RETENTION" --address "$address" >/dev/null
    say "created namespace $NAMESPACE (retention $RETENTION)"
  fi
  search_attributes "$cli" "$address"
  say "Temporal $TEMPORAL_SERVER_VERSION on Postgres ${SQL_HOST}:${SQL_PORT} is up: TEMPORAL_ADDRESS=$address TEMPORAL_NAMESPACE=$NAMESPACE"
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
