#!/usr/bin/env bash
# Client agents at scale (issue 16): 3 census servers + N client agents on loopback.
#
#   bash bench/agents/run.sh            # N=200 (use a release binary for figures: cargo build --release --bin census)
#   bash bench/agents/run.sh --quick    # smoke run: N=20, short windows
#   bash bench/agents/run.sh --help     # every option (N, windows, phases, output paths)
#
# The binary is $CENSUS_BIN, else target/release/census if it exists, else target/debug/census.
# Prints a table, writes bench/agents/results-<timestamp>.json and docs/img/agents-*.png.
# Every process it starts is killed on exit (also on Ctrl-C or an error), and the agents' data
# dirs (under a temp dir) are removed. See docs/benchmarks.md, "Client agents at scale".
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

if [[ -z "${CENSUS_BIN:-}" ]]; then
  if [[ -x target/release/census ]]; then CENSUS_BIN="$root/target/release/census"
  else CENSUS_BIN="$root/target/debug/census"; fi
fi
export CENSUS_BIN
if [[ ! -x "$CENSUS_BIN" ]]; then
  echo "no census binary at $CENSUS_BIN: cargo build --release --bin census, or set CENSUS_BIN" >&2
  exit 2
fi
case "$(readlink -f "$CENSUS_BIN")" in
  */release/*) ;;
  *) echo "note: $CENSUS_BIN is not a release build; its figures are smoke figures, not for the docs" >&2 ;;
esac
command -v python3 >/dev/null || { echo "python3 is needed" >&2; exit 2; }
if ! python3 -c 'import matplotlib' 2>/dev/null; then
  echo "note: matplotlib is not installed, so no charts (python3 -m pip install matplotlib)" >&2
fi

work="$(mktemp -d /tmp/census-agents-bench.XXXXXX)"
py_pid=""

cleanup() {
  trap - EXIT INT TERM HUP
  # The Python script kills what it started; this is the backstop for when it could not
  # (killed itself, say). Only PIDs it recorded, and only while they still run our binaries.
  if [[ -n "$py_pid" ]] && kill -0 "$py_pid" 2>/dev/null; then
    kill -TERM "$py_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$py_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$py_pid" 2>/dev/null || true
  fi
  if [[ -f "$work/pids" ]]; then
    while read -r pid; do
      [[ -n "$pid" && -r "/proc/$pid/cmdline" ]] || continue
      cmd="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)"
      case "$cmd" in
        "$CENSUS_BIN agent "*|*python3*"while time.time()<e"*|*python3*"bytearray(n)"*) kill -KILL "$pid" 2>/dev/null || true ;;
      esac
    done <"$work/pids"
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

python3 "$root/bench/agents/agents.py" --workdir "$work" "$@" &
py_pid=$!
wait "$py_pid"
