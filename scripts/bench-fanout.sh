#!/usr/bin/env bash
# Blocking-query fan-out, census and etcd side by side (issue 19): WATCHERS watchers of one key on
# a follower (etcd: a Watch per client connection, then all on one connection as gRPC streams;
# census: a blocking GET per connection, ?stale then default), one
# put through the leader, the time from the put's answer to the last watcher's event; ROUNDS
# rounds each, medians printed. Usage: scripts/bench-fanout.sh [WATCHERS] [ROUNDS] (1000 10)
# Needs what scripts/bench-soak.sh needs.
set -euo pipefail
cd "$(dirname "$0")/.."
watchers=${1:-1000} rounds=${2:-10}
work=$(mktemp -d --tmpdir=/work 2>/dev/null || mktemp -d)
(
  trap 'kill $(jobs -p) 2>/dev/null || true; wait; rm -rf "$work"' EXIT
  source scripts/etcd-cluster.sh
  follower=$(tr ',' '\n' <<<"$eps" | grep -v "$leader" | head -1)
  target/etcd-load -op fanout -endpoints "$leader,$follower" -watchers "$watchers" -rounds "$rounds"
  target/etcd-load -op fanout -endpoints "$leader,$follower" -watchers "$watchers" -rounds "$rounds" -shared
)
CENSUS_BIN=${CENSUS_BIN:-target/release/census} target/release/census-bench fanout "$watchers" "$rounds"
CENSUS_BIN=${CENSUS_BIN:-target/release/census} target/release/census-bench fanout "$watchers" "$rounds" default
