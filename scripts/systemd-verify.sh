#!/usr/bin/env bash
# Checks the systemd units of deploy/systemd/ offline, without installing them:
#  - `systemd-analyze verify` on each unit; any message fails (it warns on stderr and exits 0 for
#    unknown keys and bad values, so silence is what passes);
#  - `systemd-analyze security --offline` keeps each unit's exposure at 1.5 or lower (both units
#    are at 1.2 today), and each unit keeps the settings deploy/systemd/README.md promises
#    (REQUIRED below), so a hardening setting that goes missing is noticed;
#  - each unit's config file (ConditionFileNotEmpty=/etc/census/NAME.json) has its example next to it.
#
# Usage: scripts/systemd-verify.sh [CENSUS_BINARY]    (default: target/debug/census)
#
# `verify` needs the binary ExecStart names to exist, so each unit is checked as a copy in a temp
# dir whose ExecStart runs CENSUS_BINARY (through a symlink) instead of /usr/local/bin/census.
# Needs systemd-analyze (Debian: the systemd package), version 250 or later for --offline.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
units_dir="$repo/deploy/systemd"
binary="${1:-$repo/target/debug/census}"
# exposure x 10, as --threshold takes it: 15 = 1.5.
max_exposure=15
# Lines every unit has, as written.
REQUIRED=(
  'Type=exec'
  'User=census'
  'ExecReload=/bin/kill -HUP $MAINPID'
  'KillSignal=SIGTERM'
  'Restart=on-failure'
  'StateDirectory=census'
  'LimitNOFILE=65536'
  'NoNewPrivileges=yes'
  'CapabilityBoundingSet='
  'AmbientCapabilities='
  'ProtectSystem=strict'
  'ProtectHome=yes'
  'PrivateTmp=yes'
  'PrivateDevices=yes'
  'ProtectKernelTunables=yes'
  'ProtectKernelModules=yes'
  'ProtectKernelLogs=yes'
  'ProtectControlGroups=yes'
  'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX'
)

analyze="$(command -v systemd-analyze || true)"
if [ -z "$analyze" ]; then
  echo "systemd-verify: systemd-analyze not found; it is needed to check deploy/systemd/*.service (Debian: apt-get install systemd)" >&2
  exit 2
fi
if [ ! -x "$binary" ]; then
  echo "systemd-verify: $binary is not an executable census binary; build it (cargo build --bin census) or pass its path" >&2
  exit 2
fi
binary="$(realpath "$binary")"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/bin"
ln -s "$binary" "$tmp/bin/census"

shopt -s nullglob
units=("$units_dir"/*.service)
if [ ${#units[@]} -eq 0 ]; then
  echo "systemd-verify: no unit in $units_dir" >&2
  exit 1
fi

failed=0
for unit in "${units[@]}"; do
  name="$(basename "$unit")"
  problems=()
  if ! grep -q '^ExecStart=/usr/local/bin/census ' "$unit"; then
    problems+=("ExecStart must run /usr/local/bin/census (the install path deploy/systemd/README.md gives)")
  fi
  for line in "${REQUIRED[@]}"; do
    grep -qxF -- "$line" "$unit" || problems+=("missing the line $line")
  done
  config="$(sed -n 's#^ConditionFileNotEmpty=/etc/census/##p' "$unit")"
  if [ -z "$config" ]; then
    problems+=("no ConditionFileNotEmpty=/etc/census/NAME.json naming its config file")
  elif [ ! -s "$units_dir/$config" ]; then
    problems+=("its config file $config has no example in deploy/systemd/")
  fi
  sed "s#^ExecStart=/usr/local/bin/census #ExecStart=$tmp/bin/census #" "$unit" >"$tmp/$name"

  # Only this unit's own errors count, not those of the host's units it names (network-online.target).
  if ! verify="$(cd "$tmp" && "$analyze" verify --man=no --recursive-errors=no "$tmp/$name" 2>&1)"; then
    problems+=("systemd-analyze verify failed")
  fi
  if [ -n "$verify" ]; then
    problems+=("systemd-analyze verify says: ${verify//$tmp\//}")
  fi
  if ! security="$("$analyze" security --offline=yes --threshold="$max_exposure" --no-pager "$tmp/$name" 2>&1)"; then
    exposure="$(printf '%s\n' "$security" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')"
    problems+=("systemd-analyze security: exposure ${exposure:-unknown} is above $((max_exposure / 10)).$((max_exposure % 10)) (or the check failed): $(printf '%s\n' "$security" | tail -n 1)")
  fi

  if [ ${#problems[@]} -eq 0 ]; then
    echo "$name: ok"
  else
    failed=1
    for p in "${problems[@]}"; do
      echo "$name: $p"
    done
  fi
done

if [ "$failed" -ne 0 ]; then
  echo "systemd-verify: FAILED" >&2
  exit 1
fi
echo "systemd-verify: ${#units[@]} units ok"
