"""Renders charts/census with the real Helm engine, offline, and parses what it gives.

The engine is Helm's own Go SDK (v4), which the PyPI package helm-python-sdk ships as a shared
library (libhelm_c) and calls through ctypes: no helm binary, no cluster, no network.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import helm_python as helm
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "census"
KIND_CONFIG = ROOT / "kind-config.yaml"
# The Kubernetes version whose schemas every object is validated against (kubernetes-validate
# ships 1.25 to 1.37); the chart's kubeVersion allows >= 1.26.
KUBE_VERSION = "1.30.0"
NAMESPACE = "census-system"


@dataclass(frozen=True)
class Scenario:
    name: str
    values: dict[str, Any]
    release: str = "census"
    namespace: str = NAMESPACE


SCENARIOS = {
    s.name: s
    for s in [
        Scenario("default", {}),
        Scenario("demo", {"demo": {"enabled": True}}),
        Scenario("five-nodeport", {"server": {"replicas": 5}, "client": {"service": {"type": "NodePort"}}}),
        # What kind-config.yaml's instructions install.
        Scenario("kind", {"client": {"service": {"type": "NodePort"}}, "demo": {"enabled": True}}),
        # Another release name, a namespaced operator, hard anti-affinity, a cluster domain, no
        # Secret access, demo on: the other branches of the templates.
        Scenario(
            "namespaced",
            {
                "rbac": {"scope": "namespace", "readSecrets": False},
                "clusterDomain": "cluster.local",
                "server": {"replicas": 1, "podAntiAffinity": "hard"},
                "networkPolicy": {"clientFrom": [{"podSelector": {"matchLabels": {"census-client": "true"}}}]},
                "demo": {"enabled": True},
            },
            release="prod",
            namespace="shop",
        ),
        # A client agent on every node, reached at the node's IP (hostPort 8500).
        Scenario("clients", {"client": {"enabled": True}}),
        # ACLs on servers and client agents, the management token made by the chart.
        Scenario("acl", {"acl": {"enabled": True}, "client": {"enabled": True}}),
        # ACLs with a management token the operator keeps in a Secret of their own.
        Scenario("acl-own-secret", {"acl": {"enabled": True, "managementTokenSecret": "ops-census-root", "defaultPolicy": "allow"}}),
        # Client agents without hostPorts (so the restricted profile holds), with tolerations, a
        # restricted clientFrom, five servers, a cluster domain and another release name.
        Scenario(
            "clients-restricted",
            {
                "client": {
                    "enabled": True,
                    "hostPorts": {"http": None},
                    "tolerations": [{"operator": "Exists"}],
                    "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}},
                    "extraArgs": ["-anti-entropy-interval=30s"],
                },
                "clusterDomain": "cluster.local",
                "server": {"replicas": 5, "datacenter": "east"},
                "networkPolicy": {"clientFrom": [{"podSelector": {"matchLabels": {"census-client": "true"}}}]},
            },
            release="edge",
            namespace="mesh",
        ),
    ]
}


@dataclass(frozen=True)
class Manifest:
    source: str
    obj: dict[str, Any]

    @property
    def kind(self) -> str:
        return self.obj["kind"]

    @property
    def name(self) -> str:
        return self.obj["metadata"]["name"]

    def __str__(self) -> str:
        return f"{self.kind}/{self.name} ({self.source})"


@functools.lru_cache(maxsize=None)
def chart() -> helm.Chart:
    return helm.Chart.load(str(CHART))


def render_raw(values: dict[str, Any] | None, *, release: str = "census", namespace: str = NAMESPACE) -> dict[str, str]:
    """`helm template`: template path -> rendered text. Raises helm.HelmValuesError when the values
    break values.schema.json, helm.HelmRenderError when a template fails."""
    return chart().render(copy.deepcopy(values) if values else None, name=release, namespace=namespace, is_install=True)


def parse(rendered: dict[str, str]) -> list[Manifest]:
    out = []
    for source, text in sorted(rendered.items()):
        if source.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc is not None:
                out.append(Manifest(source, doc))
    return out


@functools.lru_cache(maxsize=None)
def _rendered(name: str) -> tuple[Manifest, ...]:
    s = SCENARIOS[name]
    return tuple(parse(render_raw(s.values, release=s.release, namespace=s.namespace)))


def manifests(scenario: str) -> list[Manifest]:
    """The objects of a scenario, as fresh copies (tests may change them)."""
    return [Manifest(m.source, copy.deepcopy(m.obj)) for m in _rendered(scenario)]


def notes(scenario: str) -> str:
    s = SCENARIOS[scenario]
    rendered = render_raw(s.values, release=s.release, namespace=s.namespace)
    return next(text for path, text in rendered.items() if path.endswith("NOTES.txt"))


def crds() -> list[tuple[str, dict[str, Any]]]:
    """The objects under charts/census/crds/ (what `census crd` generates), as Helm loads them."""
    out = []
    for crd in chart().crds:
        for doc in yaml.safe_load_all(crd["data"]):
            if doc is not None:
                out.append((crd.get("filename") or crd.get("name", "?"), doc))
    return out


def lint(values: dict[str, Any] | None) -> dict[str, Any]:
    return helm.lint(str(CHART), copy.deepcopy(values) if values else None, strict=True, kube_version=f"v{KUBE_VERSION}")


def one(items: list[Manifest], kind: str, name: str | None = None) -> Manifest:
    found = [m for m in items if m.kind == kind and (name is None or m.name == name)]
    if len(found) != 1:
        raise AssertionError(f"expected exactly one {kind} {name or ''}, found {[str(m) for m in found]}")
    return found[0]


def of_kind(items: list[Manifest], *kinds: str) -> list[Manifest]:
    return [m for m in items if m.kind in kinds]


def pod_templates(items: list[Manifest]) -> Iterator[tuple[Manifest, dict[str, Any]]]:
    """(owner, pod spec) of every Pod and workload template."""
    for m in items:
        if m.kind == "Pod":
            yield m, m.obj["spec"]
        elif m.kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
            yield m, m.obj["spec"]["template"]["spec"]
        elif m.kind == "CronJob":
            yield m, m.obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def all_containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return [*pod.get("initContainers", []), *pod.get("containers", []), *pod.get("ephemeralContainers", [])]


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())
