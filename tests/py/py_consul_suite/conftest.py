"""py-consul's own test suite, run against census instead of a `hashicorp/consul` container.

This file replaces the suite's top-level conftest.py (which starts Consul in Docker); the tests
themselves are py-consul's, unchanged. Every test gets a fresh `census agent -dev`, as it would get
a fresh `consul agent -dev` container. The agent listens on 127.0.0.1:8500 because the suite's
HTTP checks point at `http://localhost:8500` (Consul itself, inside its container).

Environment: CENSUS_BIN (the census binary), CENSUS_PY_PORT (default 8500).
"""

from __future__ import annotations

import collections
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid

import pytest
import requests

ConsulInstance = collections.namedtuple("ConsulInstance", ["container", "port", "version"])

CENSUS_BIN = os.environ.get("CENSUS_BIN", "census")
PORT = int(os.environ.get("CENSUS_PY_PORT", "8500"))
LOGS_DIR = os.environ.get("CENSUS_PY_LOGS", os.path.join(os.path.dirname(__file__), "logs"))
os.makedirs(LOGS_DIR, exist_ok=True)


@pytest.fixture(scope="session", autouse=True)
def _unset_consul_token():
    if "CONSUL_HTTP_TOKEN" in os.environ:
        del os.environ["CONSUL_HTTP_TOKEN"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class CensusAgent:
    """One `census agent -dev` process, what the suite calls a container."""

    def __init__(self, name: str, acl_master_token: str | None):
        self.port = PORT
        self.dir = tempfile.mkdtemp(prefix="census-py-")
        config = {"enable_script_checks": True}
        if acl_master_token:
            config["acl"] = {"enabled": True, "tokens": {"initial_management": acl_master_token}}
        env = dict(os.environ, CONSUL_LOCAL_CONFIG=__import__("json").dumps(config))
        self.log_path = os.path.join(LOGS_DIR, f"{name}.log")
        self.log = open(self.log_path, "w", encoding="utf-8")
        self.proc = subprocess.Popen(
            [
                CENSUS_BIN, "agent", "-dev", "-node", "census-py",
                "-http-port", str(self.port), "-dns-port", "-1",
                "-server-port", str(_free_port()),
                "-enable-script-checks",
                "-log-level", "debug",
            ],
            stdout=self.log, stderr=subprocess.STDOUT, env=env,
        )

    def wait_ready(self) -> None:
        base = f"http://127.0.0.1:{self.port}/v1/"
        deadline = time.time() + 15
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"census exited with {self.proc.returncode}; see {self.log_path}")
            try:
                r = requests.get(base + "status/leader", timeout=2)
                if r.status_code == 200 and r.json():
                    return
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"census did not elect itself within 15 s; see {self.log_path}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def _instance(request, acl_master_token: str | None = None):
    agent = CensusAgent(request.node.name, acl_master_token)
    try:
        agent.wait_ready()
        version = requests.get(f"http://127.0.0.1:{agent.port}/v1/agent/self", timeout=10).json()["Config"]["Version"]
        instance = ConsulInstance(agent, agent.port, version.strip())
        yield instance if acl_master_token is None else (instance, acl_master_token)
    finally:
        agent.stop()


@pytest.fixture
def consul_instance(request):
    yield from _instance(request)


@pytest.fixture
def acl_consul_instance(request):
    yield from _instance(request, acl_master_token=uuid.uuid4().hex)


@pytest.fixture
def consul_port(consul_instance):
    return consul_instance.port, consul_instance.version
