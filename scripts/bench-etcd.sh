#!/usr/bin/env bash
# etcd side of the KV benchmark (issue 2), for side-by-side runs with census-bench: a fresh
# 3-member etcd 3.4 cluster (Debian etcd-server) on loopback, the Go driver bench/etcd-load at
# 1/16/64/256 clients for put and 64 clients for serializable and linearizable gets, server CPU
# per operation from /proc. Usage: scripts/bench-etcd.sh [SECONDS_PER_STEP]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-3}
work=$(mktemp -d --tmpdir=/work 2>/dev/null || mktemp -d)   # on the same disk as census' data dirs
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
source scripts/etcd-cluster.sh
cpu() { local t=0; for p in $pids; do t=$((t + $(awk '{print $14+$15}' /proc/$p/stat))); done; echo $t; }
hz=$(getconf CLK_TCK)
step() { # op clients endpoints
  local before after line ops
  before=$(cpu)
  line=$(target/etcd-load -op "$1" -clients "$2" -endpoints "$3" -seconds "$secs")
  after=$(cpu)
  ops=$(sed -E 's/.*ops_s=([0-9]+).*/\1/' <<<"$line")
  echo "$line cpu_us_per_op=$(( (after - before) * 1000000 / hz / (ops * ${secs%.*} + 1) ))"
}
for c in 1 16 64 256; do step put $c "$leader"; done
step get-stale 64 "$eps"
step get-consistent 64 "$eps"
echo "etcd RSS KiB: $(for p in $pids; do awk '/VmRSS/{printf "%s ", $2}' /proc/$p/status; done)"

# Leader-kill write gap, 3 rounds: SIGKILL the leader, time the first acknowledged put through the
# two survivors, restart the killed member from its data dir and wait for a healthy cluster.
for round in 1 2 3; do
  leader=$(ETCDCTL_API=3 etcdctl --endpoints=$eps endpoint status -w simple | awk -F', ' '$5=="true"{print $1}')
  i=${leader:10:1}                                   # 127.0.0.1:N2379 → N
  pid=$(pgrep -f "etcd --name m$i ")
  survivors=$(tr ',' '\n' <<<"$eps" | grep -v "$leader" | paste -sd,)
  since=$(date +%s%N); kill -9 "$pid"
  target/etcd-load -op gap -endpoints "$survivors" -since "$since" 2>/dev/null   # clientv3 logs every retry
  # shellcheck disable=SC2046
  etcd $(member_args "$i") >>"$work/m$i.log" 2>&1 &
  for _ in $(seq 100); do ETCDCTL_API=3 etcdctl --endpoints=$eps endpoint health >/dev/null 2>&1 && break; sleep 0.1; done
done
