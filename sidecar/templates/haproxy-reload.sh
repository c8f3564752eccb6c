#!/bin/sh
# Reloads a master-worker haproxy (-W) and returns once the new worker runs, for census-sidecar
# render's reload command:  -template "haproxy.cfg.ctmpl:haproxy.cfg:haproxy-reload.sh PIDFILE"
#
# haproxy's master loses a SIGUSR2 that arrives while it re-executes itself for the previous one
# (two catalog changes 80 ms apart left haproxy on the first config), so a reload must not begin
# before the last has forked its worker. The sidecar runs reload commands one at a time and waits
# for each: waiting here serializes the reloads.
set -eu
command -v pgrep >/dev/null 2>&1 || { echo "haproxy-reload.sh: pgrep not found (Debian: procps)" >&2; exit 1; }
pid_file=${1:?usage: haproxy-reload.sh MASTER_PID_FILE}
master=$(cat "$pid_file")
workers() { pgrep -P "$master" | sort | tr '\n' ' '; }
before=" $(workers) "
kill -USR2 "$master"
tries=0
while [ "$tries" -lt 200 ]; do
  for p in $(workers); do
    case "$before" in *" $p "*) ;; *) exit 0 ;; esac
  done
  sleep 0.05
  tries=$((tries + 1))
done
echo "haproxy-reload.sh: haproxy $master started no new worker within 10 s" >&2
exit 1
