"""Policy checks on rendered objects; each returns the violations it found (empty = compliant)."""

from __future__ import annotations

from typing import Any

from .render import all_containers

# Pod Security Standards, "restricted" (Kubernetes 1.30):
# https://kubernetes.io/docs/concepts/security/pod-security-standards/
RESTRICTED_VOLUME_TYPES = {
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret",
}
SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}
SELINUX_TYPES = {None, "", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}


def restricted_violations(pod: dict[str, Any]) -> list[str]:
    """What in a pod spec breaks the restricted profile, plus this chart's own rule that every
    container's root filesystem is read-only."""
    bad: list[str] = []
    psc = pod.get("securityContext") or {}
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(field):
            bad.append(f"pod: {field} is set")
    if psc.get("windowsOptions", {}).get("hostProcess"):
        bad.append("pod: windowsOptions.hostProcess")
    for volume in pod.get("volumes", []):
        types = set(volume) - {"name"}
        if not types <= RESTRICTED_VOLUME_TYPES:
            bad.append(f"volume {volume.get('name')}: type {sorted(types - RESTRICTED_VOLUME_TYPES)} not allowed")
    for sysctl in psc.get("sysctls", []):
        if sysctl.get("name") not in SAFE_SYSCTLS:
            bad.append(f"pod: unsafe sysctl {sysctl.get('name')}")
    if psc.get("runAsUser") == 0:
        bad.append("pod: runAsUser 0")
    bad += _selinux("pod", psc)
    pod_seccomp = (psc.get("seccompProfile") or {}).get("type")
    if pod_seccomp not in (None, "RuntimeDefault", "Localhost"):
        bad.append(f"pod: seccompProfile {pod_seccomp}")

    containers = all_containers(pod)
    if not containers:
        bad.append("pod: no containers")
    for c in containers:
        where = f"container {c.get('name')}"
        sc = c.get("securityContext") or {}
        if sc.get("privileged"):
            bad.append(f"{where}: privileged")
        if sc.get("allowPrivilegeEscalation") is not False:
            bad.append(f"{where}: allowPrivilegeEscalation is not false")
        caps = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            bad.append(f"{where}: capabilities.drop lacks ALL")
        added = set(caps.get("add") or []) - {"NET_BIND_SERVICE"}
        if added:
            bad.append(f"{where}: capabilities.add {sorted(added)}")
        run_as_non_root = sc.get("runAsNonRoot", psc.get("runAsNonRoot"))
        if run_as_non_root is not True:
            bad.append(f"{where}: runAsNonRoot is not true (container or pod)")
        if sc.get("runAsUser") == 0:
            bad.append(f"{where}: runAsUser 0")
        seccomp = (sc.get("seccompProfile") or {}).get("type", pod_seccomp)
        if seccomp not in ("RuntimeDefault", "Localhost"):
            bad.append(f"{where}: seccompProfile is {seccomp}, not RuntimeDefault or Localhost")
        if sc.get("procMount") not in (None, "Default"):
            bad.append(f"{where}: procMount {sc.get('procMount')}")
        if sc.get("windowsOptions", {}).get("hostProcess"):
            bad.append(f"{where}: windowsOptions.hostProcess")
        bad += _selinux(where, sc)
        for port in c.get("ports", []):
            if port.get("hostPort"):
                bad.append(f"{where}: hostPort {port['hostPort']}")
        if sc.get("readOnlyRootFilesystem") is not True:
            bad.append(f"{where}: readOnlyRootFilesystem is not true")
    return bad


def _selinux(where: str, sc: dict[str, Any]) -> list[str]:
    opts = sc.get("seLinuxOptions") or {}
    bad = []
    if opts.get("type") not in SELINUX_TYPES:
        bad.append(f"{where}: seLinuxOptions.type {opts.get('type')}")
    if opts.get("user") or opts.get("role"):
        bad.append(f"{where}: seLinuxOptions.user/role set")
    return bad


READ_VERBS = {"get", "list", "watch"}
# Verbs that hand out more than the rule names.
ESCALATING_VERBS = {"escalate", "bind", "impersonate"}


def rbac_violations(kind: str, name: str, rules: list[dict[str, Any]]) -> list[str]:
    bad = []
    for n, rule in enumerate(rules):
        where = f"{kind}/{name} rule {n}"
        for field in ("apiGroups", "resources", "verbs", "resourceNames", "nonResourceURLs"):
            values = rule.get(field) or []
            if any("*" in v for v in values):
                bad.append(f"{where}: wildcard in {field}: {values}")
        verbs = set(rule.get("verbs") or [])
        if verbs & ESCALATING_VERBS:
            bad.append(f"{where}: escalating verbs {sorted(verbs & ESCALATING_VERBS)}")
        if rule.get("nonResourceURLs"):
            bad.append(f"{where}: nonResourceURLs")
        resources = rule.get("resources") or []
        core = "" in (rule.get("apiGroups") or [])
        for res in resources:
            if core and res.split("/")[0] == "secrets" and not verbs <= READ_VERBS:
                bad.append(f"{where}: write verbs on secrets: {sorted(verbs - READ_VERBS)}")
            if core and res.split("/")[0] == "pods" and not verbs <= READ_VERBS:
                bad.append(f"{where}: write verbs on {res}: {sorted(verbs - READ_VERBS)}")
    return bad
