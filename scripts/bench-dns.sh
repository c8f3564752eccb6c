#!/usr/bin/env bash
# DNS benchmark: dnsperf against census and dnsmasq (one static A record), interleaved A/B/A/B/A/B
# in the same run, at 200 outstanding queries over 8 sockets and at 1 outstanding query.
# Needs: dnsperf, dnsmasq (Debian: dnsperf dnsmasq-base), a release build of census.
# Usage: scripts/bench-dns.sh [rounds]     (results go to stdout; copy them to docs/benchmarks.md)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}

for tool in dnsperf dnsmasq curl; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install dnsperf dnsmasq-base curl)"; exit 1; }
done
cargo build --release --bin census -q
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

census_dns=18600 census_http=18500 dnsmasq_port=18653
target/release/census agent -dev -node=bench -http-port=$census_http -dns-port=$census_dns \
  -server-port=18300 -log-level=warn >"$work/census.log" 2>&1 &
dnsmasq -k --port=$dnsmasq_port --listen-address=127.0.0.1 --bind-interfaces --no-resolv --no-hosts \
  --address=/web.service.consul/10.0.0.1 --user=root --pid-file="$work/dnsmasq.pid" >"$work/dnsmasq.log" 2>&1 &

for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$census_http/v1/status/leader" | grep -q . && break
  sleep 0.1
done
curl -sf -X PUT "http://127.0.0.1:$census_http/v1/catalog/register" \
  -d '{"Node":"web-node","Address":"10.0.0.1","Service":{"ID":"web1","Service":"web","Port":80}}' >/dev/null
for _ in $(seq 50); do
  dig +short -p $census_dns @127.0.0.1 web.service.consul | grep -q 10.0.0.1 && break
  sleep 0.1
done

printf 'web.service.consul A\n' >"$work/q.txt"
run() { # name port clients outstanding seconds
  local out
  out=$(dnsperf -s 127.0.0.1 -p "$2" -d "$work/q.txt" -c "$3" -q "$4" -l "$5" 2>&1)
  local qps lat lost
  qps=$(awk '/Queries per second/ {print $4}' <<<"$out")
  lat=$(awk '/Average Latency/ {print $4}' <<<"$out")
  lost=$(awk '/Queries lost/ {print $3}' <<<"$out")
  echo "RESULT server=$1 clients=$3 outstanding=$4 qps=$qps avg_latency_s=$lat lost=$lost"
}

for round in $(seq "$rounds"); do
  echo "# round $round"
  run dnsmasq $dnsmasq_port 8 200 8
  run census $census_dns 8 200 8
  run dnsmasq $dnsmasq_port 1 1 5
  run census $census_dns 1 1 5
done
echo "census RSS: $(ps -o rss= -C census | head -1) KiB"
