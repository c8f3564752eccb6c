#!/usr/bin/env bash
# Fails when something the test suite started outlived it: a process of the kinds the tests run
# (census, its sidecar, nginx, haproxy, etcd, the Kubernetes servers, Patroni and PostgreSQL,
# the browser and its driver, the suite's Python), a network namespace, a small disk mounted by
# tests/src/disk_faults.rs, or a Docker container. Usage: leftovers.sh EPOCH (when the suite began).
set -uo pipefail
since=${1:?usage: leftovers.sh EPOCH_SECONDS}
age=$(( $(date +%s) - since ))
found=0

names='^(census|census-sidecar|nginx|haproxy|etcd|kube-apiserver|kube-controller|patroni|postgres|chromium|chrome|chromedriver|python3|python)$'
while read -r pid etimes comm args; do
  [ "$etimes" -le "$age" ] || continue
  [[ "$comm" =~ $names ]] || continue
  echo "leftover process: $pid ($comm, started ${etimes}s ago): $args"
  found=1
done < <(ps -eo pid=,etimes=,comm=,args=)

while read -r ns _; do
  [ -n "$ns" ] || continue
  echo "leftover network namespace: $ns"
  found=1
done < <(ip netns list 2>/dev/null)

if grep -q census-small-disk /proc/mounts; then
  grep census-small-disk /proc/mounts | sed 's/^/leftover mount: /'
  found=1
fi

if command -v docker >/dev/null 2>&1; then
  while read -r id name; do
    [ -n "$id" ] || continue
    echo "leftover container: $id $name"
    found=1
  done < <(docker ps --format '{{.ID}} {{.Names}}' 2>/dev/null | head -50)
fi

if [ "$found" = 1 ]; then
  echo "the test suite left the above behind: a test does not clean up after itself" >&2
  exit 1
fi
echo "leftovers: none"
