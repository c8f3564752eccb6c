#!/usr/bin/env bash
# Fetches py-consul 1.8.0's sdist from PyPI (once) and unpacks it under target/py-consul/, with
# what its test suite imports (pytest, pytest-asyncio, aiohttp, packaging). tests/tests/py_consul_suite.rs
# runs that suite against census. Nothing of py-consul is committed.
set -euo pipefail
cd "$(dirname "$0")/.."
version=1.8.0
dest=target/py-consul
pip_install() {
  python3 -m pip install --quiet "$@" 2>/dev/null || python3 -m pip install --quiet --break-system-packages "$@"
}
python3 -c 'import pytest, pytest_asyncio, aiohttp, packaging, requests' >/dev/null 2>&1 \
  || pip_install pytest pytest-asyncio aiohttp packaging requests
if [ ! -d "$dest/py_consul-$version/tests" ]; then
  mkdir -p "$dest"
  python3 -m pip download --quiet --no-deps --no-binary :all: "py-consul==$version" -d "$dest"
  tar -xzf "$dest/py_consul-$version.tar.gz" -C "$dest"
fi
