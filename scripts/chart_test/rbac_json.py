"""Prints the chart's RBAC objects, rendered by the real Helm engine, as one JSON list, for the
tests that bind the operator to exactly them on a real API server (tests/tests/kube_real_*.rs).

    python3 -m chart_test.rbac_json [cluster|namespace] [NAMESPACE]

Release `census`; `rbac.scope` and the release namespace from the arguments (default: cluster,
census). Run from scripts/ (or with scripts/ on PYTHONPATH).
"""

from __future__ import annotations

import json
import sys

from .render import parse, render_raw

RBAC_KINDS = {"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"}


def main(argv: list[str]) -> int:
    scope = argv[0] if argv else "cluster"
    namespace = argv[1] if len(argv) > 1 else "census"
    rendered = render_raw({"rbac": {"scope": scope}}, release="census", namespace=namespace)
    objects = [m.obj for m in parse(rendered) if m.kind in RBAC_KINDS]
    json.dump(objects, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
