#!/usr/bin/env bash
# The pipeline tests against Temporal server 1.29.1 on Postgres instead of the dev server:
# scripts/temporal-postgres.sh sets up throwaway databases and starts the server on a free port,
# then vitest runs submit → deliver → retry → dead letter → replay (test/pipeline.test.ts,
# test/retries.test.ts, including a worker killed mid-backoff) and 2 APIs + 2 relays + 2 workers
# with a rolling restart (test/replicas.test.ts) through TEST_TEMPORAL_ADDRESS; then, last because
# it kills and restarts the server (through TEMPORAL_PID_FILE), test/tpg/*.tpg.ts: chaos on
# Temporal + Postgres (own vitest config, so plain `npm test` never runs them).
# Needs the server binaries (scripts/temporal-postgres.sh install); .ci/run builds them.
#   scripts/test-temporal-postgres.sh [vitest files…]
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
export TEMPORAL_BIN_DIR="${TEMPORAL_BIN_DIR:-$REPO/.tools/bin}"
for b in temporal-server temporal-sql-tool; do
  [[ -x "$TEMPORAL_BIN_DIR/$b" ]] || { echo "missing $TEMPORAL_BIN_DIR/$b: run scripts/temporal-postgres.sh install" >&2; exit 1; }
done

suffix="$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')"
export TEMPORAL_DB="temporal_test_$suffix" TEMPORAL_VISIBILITY_DB="temporal_visibility_test_$suffix"
# 4 shards: all two cores can use (deploy/temporal/postgres.yaml explains 512 for production).
export TEMPORAL_HISTORY_SHARDS=4
# Each of the server's four services opens its own pool: keep them small on a shared Postgres.
export SQL_MAX_CONNS="${SQL_MAX_CONNS:-4}"
# A free block of ports: the server takes PORT…PORT+10 and PORT-1000…PORT-994. Below 32767: the
# SQL schema stores membership ports as smallint.
export TEMPORAL_PORT="${TEMPORAL_PORT:-$(( 12000 + RANDOM % 18000 ))}"

log="$(mktemp)"
export TEMPORAL_PID_FILE="$log.pid"
server=""
cleanup() {
  local pid
  pid="$(cat "$TEMPORAL_PID_FILE" 2>/dev/null || true)"
  [[ -n "$server" ]] && kill -TERM "$server" 2>/dev/null || true
  [[ -n "$pid" ]] && kill -TERM "$pid" 2>/dev/null || true
  # The databases can only be dropped once the server has closed its connections.
  for _ in $(seq 1 60); do [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  scripts/temporal-postgres.sh drop >/dev/null 2>&1 || true
  rm -f "$log" "$TEMPORAL_PID_FILE"
}
trap cleanup EXIT

scripts/temporal-postgres.sh schema
scripts/temporal-postgres.sh start >"$log" 2>&1 &
server=$!
for _ in $(seq 1 240); do
  grep -q ' is up: ' "$log" && break
  kill -0 "$server" 2>/dev/null || { cat "$log" >&2; echo "Temporal on Postgres did not start" >&2; exit 1; }
  sleep 0.5
done
grep -q ' is up: ' "$log" || { cat "$log" >&2; echo "Temporal on Postgres was not up after 120 s" >&2; exit 1; }
echo "Temporal $TEMPORAL_DB on 127.0.0.1:$TEMPORAL_PORT is up; running the pipeline tests against it" >&2

files=() tpg=()
for f in "$@"; do if [[ $f == *.tpg.ts ]]; then tpg+=("$f"); else files+=("$f"); fi; done
if [[ $# -eq 0 ]]; then
  files=(test/pipeline.test.ts test/retries.test.ts test/replicas.test.ts)
  tpg=(test/tpg/)
fi
export TEST_TEMPORAL_ADDRESS="127.0.0.1:$TEMPORAL_PORT" TEMPORAL_BIN_DIR
if [[ ${#files[@]} -gt 0 ]]; then npx vitest run "${files[@]}" --maxWorkers=1; fi
if [[ ${#tpg[@]} -gt 0 ]]; then npx vitest run --config test/tpg/vitest.config.ts "${tpg[@]}"; fi
