#!/usr/bin/env bash
# The bench's Temporal on Postgres: the supported script (scripts/temporal-postgres.sh, config in
# deploy/temporal/) with 4 history shards, which is all one 2-core machine can use. Same commands:
#   bench/temporal-postgres.sh [install|schema|start|drop]
# then: TEMPORAL_ADDRESS=127.0.0.1:7233 npm run bench
export TEMPORAL_HISTORY_SHARDS="${TEMPORAL_HISTORY_SHARDS:-4}"
exec "$(dirname "$0")/../scripts/temporal-postgres.sh" "$@"
