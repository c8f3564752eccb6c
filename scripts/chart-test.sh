#!/usr/bin/env bash
# Checks charts/census and kind-config.yaml without a cluster, a helm binary or a network beyond
# PyPI (once): lints and renders the chart with the real Helm engine (Helm's Go SDK, shipped by
# helm-python-sdk as a shared library), validates every rendered object (and the CRDs in
# charts/census/crds/, when `census crd` has put some there) against the Kubernetes 1.30 JSON
# schemas (kubernetes-validate), and checks peers, the restricted Pod Security profile, RBAC
# without wildcards, the values schema and the kind port mappings (scripts/chart_test/).
# Idempotent; a few seconds once the packages are installed.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v python3 >/dev/null 2>&1 || ! python3 -m pip --version >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-pip
fi

# Pinned: the Helm engine (helm-python-sdk 0.2.2 bundles Helm v4.2.3) and the schemas
# (kubernetes-validate 1.37.0 ships Kubernetes 1.25 to 1.37).
want=(helm-python-sdk==0.2.2 kubernetes-validate==1.37.0)
missing=()
for req in "${want[@]}"; do
  name="${req%%==*}" version="${req##*==}"
  have="$(python3 -c 'import importlib.metadata as m, sys
try: print(m.version(sys.argv[1]))
except m.PackageNotFoundError: pass' "$name")"
  [ "$have" = "$version" ] || missing+=("$req")
done
if [ ${#missing[@]} -gt 0 ]; then
  python3 -m pip install --quiet "${missing[@]}" 2>/dev/null \
    || python3 -m pip install --quiet --break-system-packages "${missing[@]}"
fi

cd scripts
PYTHONDONTWRITEBYTECODE=1 exec python3 -m chart_test
