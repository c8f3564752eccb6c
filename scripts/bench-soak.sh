#!/usr/bin/env bash
# Sustained writes, census and etcd side by side (issue 19): a fresh 3-member cluster of each on
# loopback, alternating (etcd, census, etcd, census, ...), each loaded by its own closed-loop
# driver with the same shape: PUTs of 256-byte values over 10,000 keys from CLIENTS clients for
# SECONDS. Prints each driver's RESULT line (ops/s, p50/p99/p999/max) and one WINDOW line per
# WINDOW seconds (the same figures within the window, and each server's RSS at its end).
# Usage: scripts/bench-soak.sh [SECONDS] [CLIENTS] [ROUNDS] [WINDOW]   (defaults 60 64 1 10)
# Needs: apt-get install etcd-server etcd-client golang-go golang-etcd-server-dev, and
#   cargo build --release --bin census -p census-controller
#   cargo build --release -p census-e2e --bin census-bench
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60} clients=${2:-64} rounds=${3:-1} window=${4:-10}
etcd_round() {
  work=$(mktemp -d --tmpdir=/work 2>/dev/null || mktemp -d)
  (
    trap 'kill $(jobs -p) 2>/dev/null || true; wait; rm -rf "$work"' EXIT
    source scripts/etcd-cluster.sh
    target/etcd-load -op put -clients "$clients" -endpoints "$leader" -seconds "$secs" \
      -value-bytes 256 -keys 10000 -window "$window" -pids "$(tr ' ' ',' <<<"$pids")"
  )
}
census_round() {
  CENSUS_BIN=${CENSUS_BIN:-target/release/census} target/release/census-bench soak "$secs" "$clients" "$window"
}
for _ in $(seq "$rounds"); do
  etcd_round
  census_round
done
