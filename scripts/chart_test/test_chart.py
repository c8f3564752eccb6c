"""charts/census, checked without a cluster: lint and render with the real Helm engine, every object
against the Kubernetes schemas, peers, Services, the restricted Pod Security profile, RBAC, the
values schema, and that kind-config.yaml matches the chart."""

from __future__ import annotations

import copy
import json
import re
import sys
import unittest

import helm_python as helm
import kubernetes_validate
import yaml

from . import checks
from .render import (
    CHART,
    KIND_CONFIG,
    KUBE_VERSION,
    SCENARIOS,
    all_containers,
    crds,
    lint,
    manifests,
    notes,
    of_kind,
    one,
    parse,
    pod_templates,
    render_raw,
    selects,
)

CUSTOM_GROUP = "census.dev"


def note(text: str) -> None:
    print(f"\n  note: {text}", file=sys.stderr)


def server(scenario: str):
    items = manifests(scenario)
    return items, one(items, "StatefulSet")


def server_container(sts) -> dict:
    return next(c for c in sts.obj["spec"]["template"]["spec"]["containers"] if c["name"] == "census")


def flag_values(args: list[str], flag: str) -> list[str]:
    """Values of `-flag=value` / `--flag=value` / `-flag value` in an argument list."""
    out = []
    for i, a in enumerate(args):
        m = re.fullmatch(rf"--?{re.escape(flag)}(?:=(.*))?", a)
        if m:
            out.append(m.group(1) if m.group(1) is not None else (args[i + 1] if i + 1 < len(args) else ""))
    return out


def expected_replicas(scenario: str) -> int:
    return SCENARIOS[scenario].values.get("server", {}).get("replicas", 3)


def expected_client_host_port(scenario: str) -> int | None:
    """The client agents' HTTP hostPort a scenario asks for (values.yaml: 8500), None for none."""
    client = SCENARIOS[scenario].values.get("client", {})
    return client.get("hostPorts", {}).get("http", 8500) if client.get("enabled") else None


class LintTest(unittest.TestCase):
    def test_lint_is_clean_in_every_scenario(self):
        for name, s in SCENARIOS.items():
            with self.subTest(scenario=name):
                report = lint(s.values)
                self.assertEqual(report["total_charts_linted"], 1)
                self.assertEqual(report["errors"], [])
                serious = [m for m in report["messages"] if m["severity"] >= 2]
                self.assertEqual(serious, [], "lint warnings or errors")

    def test_lint_reports_values_that_break_the_schema(self):
        report = lint({"server": {"replicas": "three"}})
        self.assertTrue(report["errors"], report)
        self.assertIn("/server/replicas", " ".join(report["errors"]))


class KubernetesSchemaTest(unittest.TestCase):
    def test_every_rendered_object_is_valid_against_the_kubernetes_schemas(self):
        skipped = set()
        for name in SCENARIOS:
            items = manifests(name)
            self.assertGreater(len(items), 5, name)
            for m in items:
                with self.subTest(scenario=name, object=str(m)):
                    if m.obj["apiVersion"].split("/")[0] == CUSTOM_GROUP:
                        skipped.add(str(m))
                        continue
                    try:
                        kubernetes_validate.validate(m.obj, KUBE_VERSION, strict=True)
                    except kubernetes_validate.ValidationError as e:
                        self.fail(f"{m}: {e.message} at {'/'.join(map(str, e.path))}")
        if skipped:
            note(f"census.dev custom resources have no built-in schema, not validated: {sorted(skipped)}")

    def test_the_validator_catches_broken_objects(self):
        """A control: the schemas do reject a wrong type and, strict, an unknown field."""
        _, sts = server("default")
        wrong_type = copy.deepcopy(sts.obj)
        wrong_type["spec"]["replicas"] = "three"
        typo = copy.deepcopy(sts.obj)
        typo["spec"]["template"]["spec"]["containers"][0]["imagePulPolicy"] = "Always"
        for broken in (wrong_type, typo):
            with self.assertRaises(kubernetes_validate.ValidationError):
                kubernetes_validate.validate(broken, KUBE_VERSION, strict=True)

    def test_crds_if_generated_are_valid_and_covered_by_rbac(self):
        self.assertTrue((CHART / "crds").is_dir(), "charts/census/crds/ is Helm's CRD directory")
        found = crds()
        if not found:
            self.skipTest("charts/census/crds/ holds no CRD yet (`census crd` generates them)")
        rules = one(manifests("default"), "ClusterRole").obj["rules"]
        granted = {(g, r) for rule in rules for g in rule["apiGroups"] for r in rule["resources"]}
        for filename, crd in found:
            with self.subTest(crd=filename):
                self.assertEqual(crd["apiVersion"], "apiextensions.k8s.io/v1")
                self.assertEqual(crd["kind"], "CustomResourceDefinition")
                kubernetes_validate.validate(crd, KUBE_VERSION, strict=True)
                group, plural = crd["spec"]["group"], crd["spec"]["names"]["plural"]
                self.assertEqual(group, CUSTOM_GROUP)
                self.assertIn((group, plural), granted, "the operator's Role must cover every CRD")
                if any("status" in (v.get("subresources") or {}) for v in crd["spec"]["versions"]):
                    self.assertIn((group, f"{plural}/status"), granted)


class PeersTest(unittest.TestCase):
    def test_bootstrap_expect_equals_replicas_and_retry_join_names_every_peer(self):
        for name, s in SCENARIOS.items():
            with self.subTest(scenario=name):
                items, sts = server(name)
                n = expected_replicas(name)
                self.assertEqual(sts.obj["spec"]["replicas"], n)
                args = server_container(sts)["args"]
                self.assertEqual(args[0], "agent")
                self.assertEqual(flag_values(args, "bootstrap-expect"), [str(n)])
                headless = sts.obj["spec"]["serviceName"]
                domain = s.values.get("clusterDomain")
                suffix = f"svc.{domain}" if domain else "svc"
                want = {f"{sts.name}-{i}.{headless}.{s.namespace}.{suffix}:8300" for i in range(n)}
                joins = flag_values(args, "retry-join")
                self.assertEqual(len(joins), len(set(joins)), "no peer twice")
                self.assertEqual(set(joins), want)
                self.assertEqual(flag_values(args, "platform"), ["kubernetes"])
                self.assertEqual(flag_values(args, "client"), ["0.0.0.0"], "HTTP/DNS must listen beyond loopback")

    def test_the_headless_service_publishes_not_ready_pods(self):
        for name in SCENARIOS:
            with self.subTest(scenario=name):
                items, sts = server(name)
                svc = one(items, "Service", sts.obj["spec"]["serviceName"])
                spec = svc.obj["spec"]
                self.assertEqual(spec["clusterIP"], "None")
                self.assertIs(spec["publishNotReadyAddresses"], True)
                self.assertEqual({(p["name"], p["port"]) for p in spec["ports"]}, {("raft", 8300), ("http", 8500)})
                self.assertTrue(selects(spec["selector"], sts.obj["spec"]["template"]["metadata"]["labels"]))

    def test_statefulset_shape(self):
        for name, s in SCENARIOS.items():
            with self.subTest(scenario=name):
                _, sts = server(name)
                spec = sts.obj["spec"]
                self.assertEqual(spec["podManagementPolicy"], "Parallel")
                pod_labels = spec["template"]["metadata"]["labels"]
                self.assertTrue(selects(spec["selector"]["matchLabels"], pod_labels))
                # The data dir is on the PVC.
                claims = [t["metadata"]["name"] for t in spec["volumeClaimTemplates"]]
                c = server_container(sts)
                [data_dir] = flag_values(c["args"], "data-dir")
                mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
                self.assertIn(mounts.get(data_dir), claims, f"-data-dir={data_dir} must be a volumeClaimTemplate")
                # Anti-affinity over hosts, selecting the servers themselves.
                anti = spec["template"]["spec"]["affinity"]["podAntiAffinity"]
                hard = s.values.get("server", {}).get("podAntiAffinity") == "hard"
                if hard:
                    [term] = anti["requiredDuringSchedulingIgnoredDuringExecution"]
                else:
                    [weighted] = anti["preferredDuringSchedulingIgnoredDuringExecution"]
                    term = weighted["podAffinityTerm"]
                self.assertEqual(term["topologyKey"], "kubernetes.io/hostname")
                self.assertTrue(selects(term["labelSelector"]["matchLabels"], pod_labels))
                # The advertised address and node name come from the downward API.
                env = {e["name"]: e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") for e in c["env"]}
                self.assertEqual(flag_values(c["args"], "advertise"), ["$(POD_IP)"])
                self.assertEqual(env["POD_IP"], "status.podIP")
                self.assertEqual(flag_values(c["args"], "node"), ["$(POD_NAME)"])
                self.assertEqual(env["POD_NAME"], "metadata.name")

    def test_probes_prestop_and_scrape_annotations(self):
        _, sts = server("default")
        c = server_container(sts)
        self.assertIn("readinessProbe", c)
        self.assertIn("livenessProbe", c)
        pre_stop = c["lifecycle"]["preStop"]["exec"]["command"]
        self.assertEqual(pre_stop[0], "/census")
        annotations = sts.obj["spec"]["template"]["metadata"]["annotations"]
        self.assertEqual(annotations["prometheus.io/scrape"], "true")
        self.assertEqual(annotations["prometheus.io/port"], "8500")
        self.assertTrue(annotations["prometheus.io/path"].startswith("/"))
        ports = {(p["containerPort"], p["protocol"]) for p in c["ports"]}
        self.assertEqual(ports, {(8300, "TCP"), (8301, "UDP"), (8500, "TCP"), (8600, "UDP"), (8600, "TCP")})

    def test_pod_disruption_budget_allows_one_server_down(self):
        for name in SCENARIOS:
            with self.subTest(scenario=name):
                items, sts = server(name)
                pdb = one(items, "PodDisruptionBudget").obj["spec"]
                self.assertEqual(pdb["maxUnavailable"], 1)
                self.assertTrue(selects(pdb["selector"]["matchLabels"], sts.obj["spec"]["template"]["metadata"]["labels"]))


class ServicesTest(unittest.TestCase):
    def client_service(self, scenario: str):
        items, sts = server(scenario)
        candidates = [
            m for m in of_kind(items, "Service")
            if m.name != sts.obj["spec"]["serviceName"]
            and selects(m.obj["spec"].get("selector", {}), sts.obj["spec"]["template"]["metadata"]["labels"])
        ]
        self.assertEqual(len(candidates), 1, [str(m) for m in candidates])
        return candidates[0]

    def test_client_service_serves_http_and_dns_over_udp_and_tcp(self):
        for name in SCENARIOS:
            with self.subTest(scenario=name):
                ports = self.client_service(name).obj["spec"]["ports"]
                self.assertEqual(
                    sorted((p["port"], p["protocol"]) for p in ports),
                    [(8500, "TCP"), (8600, "TCP"), (8600, "UDP")],
                )

    def test_client_service_type_and_node_port_are_settable(self):
        self.assertEqual(self.client_service("default").obj["spec"]["type"], "ClusterIP")
        svc = self.client_service("five-nodeport").obj["spec"]
        self.assertEqual(svc["type"], "NodePort")
        http = next(p for p in svc["ports"] if p["port"] == 8500)
        self.assertEqual(http["nodePort"], 30500)

    def test_every_service_selects_pods_that_have_its_target_ports(self):
        for name in SCENARIOS:
            items = manifests(name)
            pods = [(m, m.obj["spec"]["template"]) for m in of_kind(items, "Deployment", "StatefulSet", "DaemonSet")]
            for svc in of_kind(items, "Service"):
                with self.subTest(scenario=name, service=svc.name):
                    selector = svc.obj["spec"]["selector"]
                    selected = [t for _, t in pods if selects(selector, t["metadata"]["labels"])]
                    self.assertTrue(selected, "selects no pod template")
                    for t in selected:
                        ports = [p for c in t["spec"]["containers"] for p in c.get("ports", [])]
                        for sp in svc.obj["spec"]["ports"]:
                            target = sp.get("targetPort", sp["port"])
                            key = "name" if isinstance(target, str) else "containerPort"
                            matching = [p for p in ports if p.get(key) == target]
                            self.assertTrue(matching, f"port {sp['name']}: no container port {target}")
                            self.assertEqual(matching[0].get("protocol", "TCP"), sp.get("protocol", "TCP"))

    def test_kind_config_matches_the_chart(self):
        kind = yaml.safe_load(KIND_CONFIG.read_text())
        self.assertEqual(kind["kind"], "Cluster")
        self.assertEqual(kind["apiVersion"], "kind.x-k8s.io/v1alpha4")
        roles = sorted(n["role"] for n in kind["nodes"])
        self.assertEqual(roles, ["control-plane", "worker", "worker"])
        mappings = {m["hostPort"]: m for n in kind["nodes"] for m in n.get("extraPortMappings", [])}
        self.assertEqual(set(mappings), {80, 8500})
        items = manifests("kind")
        client = self.client_service("kind").obj["spec"]
        self.assertEqual(mappings[8500]["containerPort"], next(p["nodePort"] for p in client["ports"] if p["port"] == 8500))
        lb = [m for m in of_kind(items, "Service") if m.obj["spec"].get("type") == "NodePort" and m.name.endswith("-lb")]
        self.assertEqual(len(lb), 1)
        [lb_port] = lb[0].obj["spec"]["ports"]
        self.assertEqual(lb_port["port"], 80)
        self.assertEqual(mappings[80]["containerPort"], lb_port["nodePort"])
        for m in mappings.values():
            self.assertEqual(m.get("protocol", "TCP"), "TCP")

    def test_acls_reach_every_agent_and_the_management_token_stays_in_a_secret(self):
        for name in ("acl", "acl-own-secret", "default"):
            with self.subTest(scenario=name):
                items = manifests(name)
                acl = SCENARIOS[name].values.get("acl", {})
                secrets = [m for m in of_kind(items, "Secret") if m.name.endswith("-acl-management")]
                agents = [c for _, pod in pod_templates(items) for c in all_containers(pod) if c["name"] == "census"]
                self.assertTrue(agents)
                if not acl.get("enabled"):
                    self.assertEqual(secrets, [])
                    for c in agents:
                        self.assertNotIn("CENSUS_LOCAL_CONFIG", {e["name"] for e in c.get("env", [])})
                    continue
                own = acl.get("managementTokenSecret")
                self.assertEqual(len(secrets), 0 if own else 1)
                secret_name = own or secrets[0].name
                for c in agents:
                    env = {e["name"]: e for e in c.get("env", [])}
                    config = json.loads(env["CENSUS_LOCAL_CONFIG"]["value"])
                    self.assertEqual(config["acl"]["enabled"], True)
                    self.assertEqual(config["acl"]["default_policy"], acl.get("defaultPolicy", "deny"))
                    server = "-server" in c.get("args", [])
                    if server:
                        ref = env["CENSUS_ACL_MANAGEMENT_TOKEN"]["valueFrom"]["secretKeyRef"]
                        self.assertEqual((ref["name"], ref["key"]), (secret_name, "token"))
                        self.assertEqual(config["acl"]["tokens"]["initial_management"], "$(CENSUS_ACL_MANAGEMENT_TOKEN)")
                        self.assertEqual(env["CONSUL_HTTP_TOKEN"]["value"], "$(CENSUS_ACL_MANAGEMENT_TOKEN)")
                        # Kubernetes expands $(VAR) only from variables defined before it.
                        names = [e["name"] for e in c["env"]]
                        self.assertLess(names.index("CENSUS_ACL_MANAGEMENT_TOKEN"), names.index("CENSUS_LOCAL_CONFIG"))
                    else:
                        self.assertNotIn("tokens", config["acl"], "client agents never hold the management token")
                        self.assertNotIn("CENSUS_ACL_MANAGEMENT_TOKEN", env)

    def test_network_policy_keeps_raft_between_servers(self):
        for name, s in SCENARIOS.items():
            with self.subTest(scenario=name):
                items, sts = server(name)
                labels = sts.obj["spec"]["template"]["metadata"]["labels"]
                [policy] = [
                    m.obj["spec"] for m in of_kind(items, "NetworkPolicy")
                    if selects(m.obj["spec"]["podSelector"]["matchLabels"], labels)
                ]
                self.assertEqual(policy["policyTypes"], ["Ingress"])
                # Raft and gossip: the server pods themselves, and the client agents when enabled.
                census_pods = [sts.obj["spec"]["selector"]["matchLabels"]]
                agents = of_kind(items, "DaemonSet")
                census_pods += [d.obj["spec"]["selector"]["matchLabels"] for d in agents]
                open_ports = set()
                for rule in policy["ingress"]:
                    ports = {(p["port"], p.get("protocol", "TCP")) for p in rule["ports"]}
                    if (8300, "TCP") in ports:
                        self.assertEqual(ports, {(8300, "TCP"), (8301, "UDP"), (8500, "TCP")})
                        for peer in rule["from"]:
                            self.assertEqual(set(peer), {"podSelector"})
                        self.assertEqual([p["podSelector"]["matchLabels"] for p in rule["from"]], census_pods)
                        self.assertTrue(selects(census_pods[0], labels))
                    else:
                        open_ports |= ports
                        exposed = SCENARIOS[name].values.get("client", {}).get("service", {}).get("type", "ClusterIP") != "ClusterIP"
                        if exposed:
                            self.assertNotIn("from", rule, "a NodePort client Service needs 8500 open beyond pods")
                        else:
                            want = s.values.get("networkPolicy", {}).get("clientFrom", [{"namespaceSelector": {}}])
                            self.assertEqual(rule["from"], want)
                self.assertEqual(open_ports, {(8500, "TCP"), (8600, "UDP"), (8600, "TCP")})


class RestrictedProfileTest(unittest.TestCase):
    def test_every_pod_template_meets_the_restricted_profile(self):
        """Every pod, except the client agents' hostPort (client.hostPorts.http), which Pod Security
        forbids from "baseline" up: that and nothing else, and nothing at all without it."""
        seen = set()
        for name in SCENARIOS:
            for owner, pod in pod_templates(manifests(name)):
                seen.add(f"{owner.kind}/{owner.name}")
                with self.subTest(scenario=name, workload=str(owner)):
                    expected = []
                    if owner.kind == "DaemonSet" and expected_client_host_port(name) is not None:
                        expected = [f"container census: hostPort {expected_client_host_port(name)}"]
                    self.assertEqual(checks.restricted_violations(pod), expected)
        # The server, the client agents and both demo workloads were among them.
        self.assertIn("StatefulSet/census-server", seen)
        self.assertIn("DaemonSet/census-client", seen)
        self.assertIn("DaemonSet/edge-census-client", seen)
        self.assertIn("Deployment/census-web", seen)
        self.assertIn("Deployment/census-lb", seen)

    def test_the_check_catches_violations(self):
        """A control: each break of the profile is reported."""
        _, sts = server("default")
        pod = sts.obj["spec"]["template"]["spec"]
        self.assertEqual(checks.restricted_violations(pod), [])
        breaks = {
            "privileged": lambda p: p["containers"][0]["securityContext"].update(privileged=True),
            "escalation": lambda p: p["containers"][0]["securityContext"].pop("allowPrivilegeEscalation"),
            "drop ALL": lambda p: p["containers"][0]["securityContext"]["capabilities"].update(drop=["NET_RAW"]),
            "add caps": lambda p: p["containers"][0]["securityContext"]["capabilities"].update(add=["SYS_ADMIN"]),
            "root": lambda p: (p["securityContext"].pop("runAsNonRoot"), p["containers"][0]["securityContext"].pop("runAsNonRoot")),
            "uid 0": lambda p: p["containers"][0]["securityContext"].update(runAsUser=0),
            "seccomp": lambda p: (p["securityContext"].pop("seccompProfile"), p["containers"][0]["securityContext"].pop("seccompProfile")),
            "unconfined": lambda p: p["containers"][0]["securityContext"].update(seccompProfile={"type": "Unconfined"}),
            "hostNetwork": lambda p: p.update(hostNetwork=True),
            "hostPID": lambda p: p.update(hostPID=True),
            "hostPath": lambda p: p["volumes"].append({"name": "h", "hostPath": {"path": "/"}}),
            "hostPort": lambda p: p["containers"][0]["ports"][0].update(hostPort=8500),
            "writable root": lambda p: p["containers"][0]["securityContext"].update(readOnlyRootFilesystem=False),
            "sidecar": lambda p: p["containers"].append({"name": "x", "image": "x"}),
        }
        for what, mutate in breaks.items():
            with self.subTest(mutation=what):
                broken = copy.deepcopy(pod)
                mutate(broken)
                self.assertNotEqual(checks.restricted_violations(broken), [], what)


class RbacTest(unittest.TestCase):
    def roles(self, scenario: str):
        return of_kind(manifests(scenario), "Role", "ClusterRole")

    def test_no_wildcards_and_secrets_are_read_only(self):
        for name in SCENARIOS:
            roles = self.roles(name)
            self.assertTrue(roles, name)
            for role in roles:
                with self.subTest(scenario=name, role=str(role)):
                    self.assertEqual(checks.rbac_violations(role.kind, role.name, role.obj["rules"]), [])

    def test_the_check_catches_wildcards_and_secret_writes(self):
        for rule in (
            {"apiGroups": ["*"], "resources": ["pods"], "verbs": ["get"]},
            {"apiGroups": [""], "resources": ["*"], "verbs": ["get"]},
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["*"]},
            {"apiGroups": ["census.dev"], "resources": ["services/*"], "verbs": ["get"]},
            {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "update"]},
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["delete"]},
            {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"], "verbs": ["escalate"]},
        ):
            with self.subTest(rule=rule):
                self.assertNotEqual(checks.rbac_violations("Role", "x", [rule]), [])

    def grants(self, role) -> dict[tuple[str, str], set[str]]:
        out: dict[tuple[str, str], set[str]] = {}
        for rule in role.obj["rules"]:
            for g in rule["apiGroups"]:
                for r in rule["resources"]:
                    out.setdefault((g, r), set()).update(rule["verbs"])
        return out

    def test_the_operator_gets_exactly_what_it_needs(self):
        [role] = self.roles("default")
        self.assertEqual(role.kind, "ClusterRole")
        read = {"get", "list", "watch"}
        want = {
            ("census.dev", "services"): read | {"patch", "update"},
            ("census.dev", "kventries"): read | {"patch", "update"},
            ("census.dev", "services/status"): {"get", "patch", "update"},
            ("census.dev", "kventries/status"): {"get", "patch", "update"},
            ("census.dev", "services/finalizers"): {"update"},
            ("census.dev", "kventries/finalizers"): {"update"},
            ("", "pods"): read,
            ("discovery.k8s.io", "endpointslices"): read,
            ("", "configmaps"): read,
            ("", "secrets"): read,
            ("", "events"): {"create", "patch"},
            ("events.k8s.io", "events"): {"create", "patch"},
        }
        self.assertEqual(self.grants(role), want)
        self.assertNotIn(("", "secrets"), self.grants(self.roles("namespaced")[0]), "rbac.readSecrets=false")

    def test_bindings_give_the_role_to_the_servers_service_account(self):
        for name, s in SCENARIOS.items():
            with self.subTest(scenario=name):
                items, sts = server(name)
                account = sts.obj["spec"]["template"]["spec"]["serviceAccountName"]
                one(items, "ServiceAccount", account)
                [role] = of_kind(items, "Role", "ClusterRole")
                [binding] = of_kind(items, "RoleBinding", "ClusterRoleBinding")
                self.assertEqual(binding.obj["roleRef"], {"apiGroup": "rbac.authorization.k8s.io", "kind": role.kind, "name": role.name})
                self.assertEqual(binding.obj["subjects"], [{"kind": "ServiceAccount", "name": account, "namespace": s.namespace}])

    def test_namespace_scope_has_no_cluster_objects_and_tells_the_agent(self):
        items, sts = server("namespaced")
        self.assertEqual(of_kind(items, "ClusterRole", "ClusterRoleBinding"), [])
        self.assertEqual(flag_values(server_container(sts)["args"], "watch-namespace"), ["$(POD_NAMESPACE)"])
        _, sts = server("default")
        self.assertEqual(flag_values(server_container(sts)["args"], "watch-namespace"), [])

    def test_only_the_server_mounts_an_api_token(self):
        for name in SCENARIOS:
            for owner, pod in pod_templates(manifests(name)):
                with self.subTest(scenario=name, workload=str(owner)):
                    if owner.kind == "StatefulSet":
                        self.assertIs(pod.get("automountServiceAccountToken"), True)
                    else:
                        self.assertIs(pod.get("automountServiceAccountToken"), False)


class ValuesSchemaTest(unittest.TestCase):
    def test_bad_values_fail_to_render(self):
        for bad in (
            {"server": {"replicas": "three"}},
            {"server": {"replicas": 0}},
            {"replicas": 3},
            {"server": {"replica": 3}},
            {"server": {"runAsUser": 0}},
            {"client": {"service": {"type": "Ingress"}}},
            {"client": {"service": {"nodePorts": {"http": 8500}}}},
            {"rbac": {"scope": "everything"}},
            {"demo": {"web": {"port": 80}}},
            {"demo": {"enabled": "yes"}},
            {"image": {"pullPolicy": "Sometimes"}},
            {"client": {"enabled": "yes"}},
            {"client": {"hostPorts": {"http": 70000}}},
            {"client": {"hostPorts": {"serfLan": 8301}}},
            {"client": {"tolerations": {"operator": "Exists"}}},
            {"client": {"agent": True}},
        ):
            with self.subTest(values=bad), self.assertRaises(helm.HelmValuesError):
                render_raw(bad)

    def test_good_values_render(self):
        for good in (
            {"server": {"replicas": 1}},
            {"server": {"replicas": 7}},
            {"image": {"tag": "1.2.3"}},
            {"client": {"enabled": True, "hostPorts": {"http": 18500}, "nodeSelector": {"kubernetes.io/os": "linux"}}},
        ):
            with self.subTest(values=good):
                self.assertTrue(render_raw(good))


class ChartConventionsTest(unittest.TestCase):
    LABELS = ("app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/version",
              "app.kubernetes.io/managed-by", "app.kubernetes.io/component", "app.kubernetes.io/part-of",
              "helm.sh/chart")

    def test_labels_namespaces_and_names(self):
        for name, s in SCENARIOS.items():
            items = manifests(name)
            seen = set()
            for m in items:
                with self.subTest(scenario=name, object=str(m)):
                    labels = m.obj["metadata"].get("labels", {})
                    for label in self.LABELS:
                        self.assertIn(label, labels)
                    self.assertEqual(labels["app.kubernetes.io/instance"], s.release)
                    self.assertEqual(labels["app.kubernetes.io/managed-by"], "Helm")
                    if m.kind in ("ClusterRole", "ClusterRoleBinding"):
                        self.assertNotIn("namespace", m.obj["metadata"])
                    else:
                        self.assertEqual(m.obj["metadata"].get("namespace"), s.namespace)
                    self.assertLessEqual(len(m.name), 63)
                    self.assertNotIn((m.kind, m.name), seen, "duplicate object")
                    seen.add((m.kind, m.name))
            for owner, _ in pod_templates(items):
                labels = owner.obj["spec"]["template"]["metadata"]["labels"]
                for label in self.LABELS:
                    self.assertIn(label, labels, f"{owner} pod template")

    def test_release_name_prefixes_object_names(self):
        _, sts = server("namespaced")
        self.assertEqual(sts.name, "prod-census-server")
        _, sts = server("default")
        self.assertEqual(sts.name, "census-server")

    def test_default_install_has_no_demo(self):
        self.assertEqual(of_kind(manifests("default"), "Deployment"), [])
        self.assertNotIn("Demo", notes("default"))

    def test_notes_render(self):
        text = notes("kind")
        self.assertIn("census-server", text)
        self.assertIn("localhost:8500", text)
        self.assertIn("curl -s localhost:80/", text)


CLIENT_SCENARIOS = ("clients", "clients-restricted")


def client_agents(scenario: str):
    """(objects, server StatefulSet, client-agent DaemonSet, its census container)."""
    items = manifests(scenario)
    sts = one(items, "StatefulSet")
    ds = one(items, "DaemonSet")
    container = next(c for c in ds.obj["spec"]["template"]["spec"]["containers"] if c["name"] == "census")
    return items, sts, ds, container


def downward(container: dict) -> dict[str, str]:
    """Environment variable -> the pod field it comes from."""
    return {e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"] for e in container["env"] if "valueFrom" in e}


class ClientAgentTest(unittest.TestCase):
    def test_off_by_default(self):
        for name in ("default", "demo", "kind", "namespaced"):
            with self.subTest(scenario=name):
                items = manifests(name)
                self.assertEqual(of_kind(items, "DaemonSet"), [])
                self.assertEqual(len(of_kind(items, "NetworkPolicy")), 1, "the servers' only")
                self.assertEqual([m for m in of_kind(items, "Service") if "internalTrafficPolicy" in m.obj["spec"]], [])
                self.assertNotIn("Client agents", notes(name))

    def test_the_agent_is_a_client_that_joins_every_server(self):
        for name in CLIENT_SCENARIOS:
            with self.subTest(scenario=name):
                s = SCENARIOS[name]
                items, sts, ds, c = client_agents(name)
                args = c["args"]
                self.assertEqual(args[0], "agent")
                for server_only in ("server", "bootstrap-expect", "bootstrap", "platform", "dev"):
                    self.assertEqual(flag_values(args, server_only), [], f"-{server_only} on a client agent")
                # The same peers as the servers join: each server pod's stable name, Raft port, which
                # the headless Service publishes before the pods are ready.
                joins = flag_values(args, "retry-join")
                self.assertEqual(len(joins), len(set(joins)))
                self.assertEqual(set(joins), set(flag_values(server_container(sts)["args"], "retry-join")))
                self.assertEqual(len(joins), expected_replicas(name))
                headless = sts.obj["spec"]["serviceName"]
                domain = s.values.get("clusterDomain")
                suffix = f"svc.{domain}" if domain else "svc"
                for i in range(expected_replicas(name)):
                    self.assertIn(f"{sts.name}-{i}.{headless}.{s.namespace}.{suffix}:8300", joins)
                svc = one(items, "Service", headless).obj["spec"]
                self.assertIn(8300, [p["port"] for p in svc["ports"]])
                # Identity from the downward API: the node's name, the pod's IP.
                env = downward(c)
                self.assertEqual(flag_values(args, "node"), ["$(NODE_NAME)"])
                self.assertEqual(env["NODE_NAME"], "spec.nodeName")
                self.assertEqual(flag_values(args, "advertise"), ["$(POD_IP)"])
                self.assertEqual(env["POD_IP"], "status.podIP")
                self.assertEqual(env["HOST_IP"], "status.hostIP")
                self.assertEqual(flag_values(args, "client"), ["0.0.0.0"], "HTTP must listen beyond loopback")
                self.assertEqual(flag_values(args, "datacenter"), flag_values(server_container(sts)["args"], "datacenter"))
                # The data dir is an emptyDir of the pod (no hostPath: restricted profile).
                [data_dir] = flag_values(args, "data-dir")
                mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
                volumes = {v["name"]: v for v in ds.obj["spec"]["template"]["spec"]["volumes"]}
                self.assertIn("emptyDir", volumes[mounts[data_dir]])
                extra = s.values["client"].get("extraArgs", [])
                self.assertEqual(args[len(args) - len(extra):], extra)

    def test_ports_host_ports_and_no_host_network(self):
        for name in CLIENT_SCENARIOS:
            with self.subTest(scenario=name):
                _, _, ds, c = client_agents(name)
                pod = ds.obj["spec"]["template"]["spec"]
                self.assertFalse(pod.get("hostNetwork", False))
                ports = {(p["name"], p["containerPort"], p["protocol"], p.get("hostPort")) for p in c["ports"]}
                self.assertEqual(ports, {("http", 8500, "TCP", expected_client_host_port(name)), ("serf-lan", 8301, "UDP", None)})

    def test_same_security_context_as_the_servers_and_graceful_leave(self):
        for name in CLIENT_SCENARIOS:
            with self.subTest(scenario=name):
                _, sts, ds, c = client_agents(name)
                pod, server_pod = ds.obj["spec"]["template"]["spec"], sts.obj["spec"]["template"]["spec"]
                self.assertEqual(pod["securityContext"], server_pod["securityContext"])
                self.assertEqual(c["securityContext"], server_container(sts)["securityContext"])
                self.assertIs(pod["automountServiceAccountToken"], False)
                # SIGTERM makes a client agent leave (at most 15 s): no preStop, time to finish.
                self.assertNotIn("lifecycle", c)
                self.assertGreater(pod["terminationGracePeriodSeconds"], 15)
                self.assertEqual(c["readinessProbe"]["httpGet"]["path"], "/v1/agent/ready")
                self.assertTrue(c["livenessProbe"]["httpGet"]["path"].startswith("/v1/agent/"), "answered by the agent itself")

    def test_values_reach_the_pods(self):
        _, _, ds, c = client_agents("clients-restricted")
        pod = ds.obj["spec"]["template"]["spec"]
        self.assertEqual(pod["tolerations"], [{"operator": "Exists"}])
        self.assertEqual(c["resources"], {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "256Mi"}})
        _, _, ds, c = client_agents("clients")
        self.assertNotIn("tolerations", ds.obj["spec"]["template"]["spec"])
        self.assertIn("resources", c)

    def test_node_local_service(self):
        for name in CLIENT_SCENARIOS:
            with self.subTest(scenario=name):
                items, _, ds, c = client_agents(name)
                labels = ds.obj["spec"]["template"]["metadata"]["labels"]
                [svc] = [m for m in of_kind(items, "Service") if selects(m.obj["spec"]["selector"], labels)]
                self.assertEqual(svc.obj["spec"]["internalTrafficPolicy"], "Local")
                self.assertEqual([(p["port"], p["targetPort"]) for p in svc.obj["spec"]["ports"]], [(8500, "http")])
                text = notes(name)
                self.assertIn(f"{svc.name}.{SCENARIOS[name].namespace}.", text)
                self.assertEqual("$(HOST_IP):8500" in text, expected_client_host_port(name) is not None)

    def test_network_policies_open_gossip_both_ways_and_raft_to_the_servers(self):
        def allowed(policy: dict, labels: dict[str, str]) -> set[tuple[int, str]]:
            """What a pod with `labels` in the release namespace may reach under `policy`."""
            out = set()
            for rule in policy["ingress"]:
                peers = rule.get("from")
                if peers is None or any(
                    "podSelector" in p and "namespaceSelector" not in p and selects(p["podSelector"].get("matchLabels", {}), labels)
                    or p == {"namespaceSelector": {}}
                    for p in peers
                ):
                    out |= {(p["port"], p.get("protocol", "TCP")) for p in rule["ports"]}
            return out

        for name in CLIENT_SCENARIOS:
            with self.subTest(scenario=name):
                items, sts, ds, _ = client_agents(name)
                server_labels = sts.obj["spec"]["template"]["metadata"]["labels"]
                client_labels = ds.obj["spec"]["template"]["metadata"]["labels"]
                policies = of_kind(items, "NetworkPolicy")
                [to_servers] = [m.obj["spec"] for m in policies if selects(m.obj["spec"]["podSelector"]["matchLabels"], server_labels)]
                [to_clients] = [m.obj["spec"] for m in policies if selects(m.obj["spec"]["podSelector"]["matchLabels"], client_labels)]
                self.assertFalse(selects(to_clients["podSelector"]["matchLabels"], server_labels))
                self.assertEqual(to_clients["policyTypes"], ["Ingress"])
                # Client agents reach the servers' Raft port, gossip and HTTP (forwarded requests).
                self.assertLessEqual({(8300, "TCP"), (8301, "UDP"), (8500, "TCP")}, allowed(to_servers, client_labels))
                # Servers and other agents gossip with an agent; nothing else of theirs is needed.
                self.assertEqual(allowed(to_clients, server_labels) & {(8301, "UDP"), (8300, "TCP")}, {(8301, "UDP")})
                self.assertIn((8301, "UDP"), allowed(to_clients, client_labels))
                # An app pod: the agent's HTTP API, never gossip or Raft.
                app = {"census-client": "true", "app": "shop"}
                self.assertEqual(allowed(to_clients, app), {(8500, "TCP")})
                self.assertNotIn((8300, "TCP"), allowed(to_servers, app))
                self.assertNotIn((8301, "UDP"), allowed(to_servers, app))
                # Gossip rules name exactly the census pods.
                gossip = [r for r in to_clients["ingress"] if (8301, "UDP") in {(p["port"], p.get("protocol", "TCP")) for p in r["ports"]}]
                [rule] = gossip
                self.assertEqual(
                    [p["podSelector"]["matchLabels"] for p in rule["from"]],
                    [sts.obj["spec"]["selector"]["matchLabels"], ds.obj["spec"]["selector"]["matchLabels"]],
                )
                http = [r for r in to_clients["ingress"] if r is not rule]
                [http_rule] = http
                want = SCENARIOS[name].values.get("networkPolicy", {}).get("clientFrom", [{"namespaceSelector": {}}])
                self.assertEqual(http_rule["from"], want)

    def test_allow_external_opens_the_agents_http_port_to_anyone(self):
        items = parse(render_raw({"client": {"enabled": True}, "networkPolicy": {"allowExternal": True}}))
        [policy] = [m for m in of_kind(items, "NetworkPolicy") if m.name.endswith("-client")]
        [http_rule] = [r for r in policy.obj["spec"]["ingress"] if r["ports"] == [{"port": 8500, "protocol": "TCP"}]]
        self.assertNotIn("from", http_rule)

    def test_no_network_policy_when_disabled(self):
        items = parse(render_raw({"client": {"enabled": True}, "networkPolicy": {"enabled": False}}))
        self.assertEqual(of_kind(items, "NetworkPolicy"), [])
        self.assertEqual(len(of_kind(items, "DaemonSet")), 1)


class DemoTest(unittest.TestCase):
    def demo(self, scenario: str = "demo"):
        items = manifests(scenario)
        web = next(m for m in of_kind(items, "Deployment") if m.name.endswith("-web"))
        lb = next(m for m in of_kind(items, "Deployment") if m.name.endswith("-lb"))
        return items, web, lb

    def test_web_pods_register_themselves(self):
        for scenario in ("demo", "namespaced"):
            s = SCENARIOS[scenario]
            items, web, _ = self.demo(scenario)
            self.assertEqual(web.obj["spec"]["replicas"], 3)
            pod = web.obj["spec"]["template"]["spec"]
            app = next(c for c in pod["containers"] if c["name"] == "web")
            [app_port] = app["ports"]
            sidecar = next(c for c in pod["containers"] if c["name"] == "register")
            args = sidecar["args"]
            self.assertEqual(args[0], "register")
            self.assertEqual(flag_values(args, "platform"), ["kubernetes"])
            self.assertEqual(flag_values(args, "port"), [str(app_port["containerPort"])])
            self.assertEqual({e["name"]: e["value"] for e in app["env"]}["PORT"], str(app_port["containerPort"]))
            self.assertEqual(flag_values(args, "check-http"), [app["readinessProbe"]["httpGet"]["path"]])
            # The sidecar reaches census through the client Service.
            [addr] = flag_values(args, "consul-addr")
            host, port = addr.rsplit(":", 1)
            client = one(items, "Service", host.split(".")[0])
            self.assertEqual(host.split(".")[1], s.namespace)
            self.assertEqual(port, "8500")
            self.assertIn(8500, [p["port"] for p in client.obj["spec"]["ports"]])
            # Identity from the downward API, as the sidecar reads it.
            env = {e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"] for e in sidecar["env"]}
            self.assertEqual(env["POD_NAME"], "metadata.name")
            self.assertEqual(env["POD_NAMESPACE"], "metadata.namespace")
            self.assertEqual(env["POD_IP"], "status.podIP")

    def test_lb_renders_into_a_shared_dir_and_reloads_nginx(self):
        items, _, lb = self.demo()
        pod = lb.obj["spec"]["template"]["spec"]
        self.assertIs(pod["shareProcessNamespace"], True)
        containers = {c["name"]: c for c in all_containers(pod)}
        nginx, render = containers["nginx"], containers["render"]
        self.assertEqual(render["args"][0], "render")
        [template] = flag_values(render["args"], "template")
        source, dest = template.split(":")[:2]
        dest_dir = dest.rsplit("/", 1)[0]
        empty_dirs = {v["name"] for v in pod["volumes"] if "emptyDir" in v}

        def mount(container, path):
            hits = [m for m in container["volumeMounts"] if path == m["mountPath"] or path.startswith(m["mountPath"].rstrip("/") + "/")]
            self.assertTrue(hits, f"{container['name']}: nothing mounted at {path}")
            return max(hits, key=lambda m: len(m["mountPath"]))

        self.assertEqual(mount(render, dest_dir)["name"], mount(nginx, dest_dir)["name"])
        self.assertIn(mount(render, dest_dir)["name"], empty_dirs)
        self.assertTrue(mount(render, source))
        [pid_file] = flag_values(render["args"], "nginx-pid")
        self.assertEqual(mount(render, pid_file)["name"], mount(nginx, pid_file)["name"])
        # nginx writes its pid where the sidecar looks, and includes what the sidecar renders.
        config_map = one(items, "ConfigMap", lb.name).obj["data"]
        nginx_conf = config_map["nginx.conf"]
        self.assertIn(f"pid {pid_file};", nginx_conf)
        self.assertIn(f"include {dest_dir}/*.conf;", nginx_conf)
        self.assertIn(source.rsplit("/", 1)[1], config_map)
        # The Service's port 80 reaches the port nginx listens on.
        [http] = nginx["ports"]
        listen = {e["name"]: e.get("value") for e in render["env"]}["NGINX_LISTEN"]
        self.assertEqual(listen, str(http["containerPort"]))
        self.assertGreaterEqual(http["containerPort"], 1024, "unprivileged port: no NET_BIND_SERVICE")
        svc = one(items, "Service", lb.name).obj["spec"]
        self.assertEqual([(p["port"], p["targetPort"]) for p in svc["ports"]], [(80, http["name"])])


if __name__ == "__main__":
    unittest.main()
