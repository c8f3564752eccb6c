#!/usr/bin/env bash
# Prepares the Python side of the tests under target/, once:
#   target/py-venv     a virtualenv with py-consul and what py-consul's test suite imports (pytest,
#                      pytest-asyncio, aiohttp, packaging, requests), apart from the system's
#                      Python, where Patroni needs Debian's python3-consul;
#   target/py-consul   py-consul 1.8.0's sdist from PyPI, unpacked: tests/tests/py_consul_suite.rs
#                      runs its test suite against census. Nothing of py-consul is committed.
set -euo pipefail
cd "$(dirname "$0")/.."
version=1.8.0
venv=target/py-venv
dest=target/py-consul
if ! "$venv/bin/python" -c 'import consul, pytest, pytest_asyncio, aiohttp, packaging, requests' >/dev/null 2>&1; then
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet py-consul pytest pytest-asyncio aiohttp packaging requests
fi
if [ ! -d "$dest/py_consul-$version/tests" ]; then
  mkdir -p "$dest"
  "$venv/bin/python" -m pip download --quiet --no-deps --no-binary :all: "py-consul==$version" -d "$dest"
  tar -xzf "$dest/py_consul-$version.tar.gz" -C "$dest"
fi
