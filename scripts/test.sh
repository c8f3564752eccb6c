#!/usr/bin/env bash
# Runs every test tier of census (unit, crate integration, end to end) on a fresh Debian machine,
# installing what the tests need first. Benchmarks are separate (docs/benchmarks.md).
set -euo pipefail
cd "$(dirname "$0")/.."
# Debian keeps nginx in /usr/sbin, which a non-login shell may not have on PATH.
export PATH="$PATH:/usr/sbin:/sbin"

apt_packages=()
command -v python3 >/dev/null 2>&1 || apt_packages+=(python3 python3-pip)
# py-consul and pytest live in a virtualenv (target/py-venv), apart from Debian's python3-consul
# that Patroni imports.
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || apt_packages+=(python3-venv)
command -v curl >/dev/null 2>&1 || apt_packages+=(curl)
command -v dig >/dev/null 2>&1 || apt_packages+=(dnsutils)
# The TLS tests (tests/tests/tls.rs) read the certificate an HTTPS port presents with openssl.
command -v openssl >/dev/null 2>&1 || apt_packages+=(openssl)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || apt_packages+=(nginx)
# The render sidecar's haproxy template is checked by a real haproxy (tests/tests/render_haproxy.rs).
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || apt_packages+=(haproxy)
# sidecar/templates/haproxy-reload.sh finds haproxy's workers with pgrep.
command -v pgrep >/dev/null 2>&1 || apt_packages+=(procps)
# The web UI tests (tests/tests/ui.rs) drive a real headless Chromium over WebDriver.
command -v chromium >/dev/null 2>&1 || apt_packages+=(chromium)
command -v chromedriver >/dev/null 2>&1 || apt_packages+=(chromium-driver)
# The Docker demo test (tests/tests/docker.rs) drives docker/compose.yml; it fails, saying why,
# when no Docker engine answers.
if command -v docker >/dev/null 2>&1 && ! docker compose version >/dev/null 2>&1; then
  command -v docker-compose >/dev/null 2>&1 || apt_packages+=(docker-compose)
fi
# Network namespaces and silent partitions (tests/tests/agents_netns.rs): iproute2 and nftables.
command -v ip >/dev/null 2>&1 || apt_packages+=(iproute2)
command -v nft >/dev/null 2>&1 || apt_packages+=(nftables)
# systemd-analyze checks deploy/systemd/*.service (tests/tests/systemd_units.rs fails without it).
command -v systemd-analyze >/dev/null 2>&1 || apt_packages+=(systemd)
# Patroni with census as its DCS (tests/tests/patroni.rs): Debian's patroni runs on Debian's
# python3 with Debian's python3-consul, and PostgreSQL 15.
command -v patroni >/dev/null 2>&1 || apt_packages+=(patroni)
dpkg -s python3-consul >/dev/null 2>&1 || apt_packages+=(python3-consul)
[ -x /usr/lib/postgresql/15/bin/postgres ] || apt_packages+=(postgresql-15)
if [ ${#apt_packages[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${apt_packages[@]}"
fi

# py-consul (a third-party Consul client from PyPI that the end-to-end tests drive census with) in
# target/py-venv, and its own test suite (its sdist, unpacked under target/py-consul), run against
# census by tests/tests/py_consul_suite.rs.
bash scripts/py-consul-suite.sh

# The Helm chart and kind config, checked offline with the real Helm engine and the Kubernetes
# schemas (no cluster, no helm binary).
bash scripts/chart-test.sh

# The operator's tests against a real Kubernetes API server (tests/tests/kube_real_*.rs): Debian's
# etcd and a kube-apiserver built from Debian's kubernetes source package, once (about 8 minutes
# on 2 cores), then cached under ~/.cache/census.
bash scripts/kube-build.sh >/dev/null

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
# The end-to-end tests run the built binaries as separate processes.
cargo build --workspace --bins
# A hung test fails the run here, naming itself in the output, instead of running into CI's limit
# (timeout signals its whole process group: the test binaries and the servers they started).
suite_began=$(date +%s)
status=0
timeout --kill-after=60 55m cargo test --workspace --no-fail-fast || status=$?
# Whatever the outcome, nothing a test started may outlive the suite (scripts/leftovers.sh).
bash scripts/leftovers.sh "$suite_began" || status=1
exit "$status"
