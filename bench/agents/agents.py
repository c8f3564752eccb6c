#!/usr/bin/env python3
"""Client agents at scale (issue 16): 3 census servers and N client agents on loopback.

Measures, in this order:
  1. convergence: time until every agent is seen alive (status 1) by a sample of agents (all
     servers + 10 random clients), counted from the moment the last agent was started; then the
     time until one extra agent, started afterwards, is seen alive by every sampled agent;
  2. idle cost: after a quiet period (no requests at all), RSS and CPU of every agent over a
     window, read from /proc;
  3. failure detection: SIGKILL a few random client agents one at a time, time until every
     sampled agent reports it failed (status 4) and until its serfHealth check is critical on a
     server;
  4. false failure marks under load: busy loops on every core (and a memory churner) while
     every agent's /v1/agent/members is polled; any live agent reported failed, leaving or left
     is a false mark. The agents' own logs ("serf: EventMemberFailed: NAME") are scanned too,
     since a false mark can be refuted before a poll sees it.

Standard library only; charts if matplotlib imports. Run through bench/agents/run.sh, which also
kills whatever this script started if it dies without cleaning up. See docs/benchmarks.md.
"""

import argparse
import atexit
import datetime as dt
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")
NCPU = os.cpu_count() or 1
MB = 1_000_000
MIB = 1024 * 1024

GOAL_RSS_MB = 15.0  # per client agent, issue 16
GOAL_CPU_PCT = 0.2  # % of one core per client agent, issue 16


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ---------------------------------------------------------------------------------------------
# ports


class PortPicker:
    """Distinct ports, free for TCP and UDP on 127.0.0.1 when picked (checked by binding).

    Picked below the kernel's ephemeral range (outgoing connections take ports from that range,
    so a port picked there could be taken by a connection before the agent binds it)."""

    def __init__(self, rng):
        lo, _hi = 32768, 60999
        try:
            with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
                lo, _hi = (int(x) for x in f.read().split())
        except OSError:
            pass
        self.lo, self.hi = 15000, max(15000 + 4000, min(lo, 32768)) - 1
        self.next = rng.randrange(self.lo, self.hi)
        self.used = set()

    @staticmethod
    def _free(port):
        for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
            s = socket.socket(socket.AF_INET, kind)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return False
            finally:
                s.close()
        return True

    def pick(self):
        for _ in range(self.hi - self.lo):
            p = self.next
            self.next = self.lo if self.next >= self.hi else self.next + 1
            if p not in self.used and self._free(p):
                self.used.add(p)
                return p
        raise RuntimeError("no free port left")


# ---------------------------------------------------------------------------------------------
# agents


class Agent:
    def __init__(self, name, server, ports, workdir):
        self.name = name
        self.server = server
        self.http_port, self.server_port, self.serf_port = ports
        self.data_dir = os.path.join(workdir, name)
        self.log_path = os.path.join(workdir, "logs", name + ".log")
        self.proc = None
        self.conn = None
        self.started_at = None

    def args(self, binary, join, bootstrap_expect):
        a = [binary, "agent"]
        if self.server:
            a += ["-server", f"-bootstrap-expect={bootstrap_expect}"]
        a += [
            "-bind=127.0.0.1",
            "-client=127.0.0.1",
            f"-node={self.name}",
            f"-http-port={self.http_port}",
            f"-server-port={self.server_port}",
            f"-serf-lan-port={self.serf_port}",
            "-dns-port=-1",
            f"-data-dir={self.data_dir}",
        ]
        a += [f"-retry-join=127.0.0.1:{p}" for p in join]
        return a

    def start(self, binary, join, bootstrap_expect, pidfile):
        os.makedirs(self.data_dir, exist_ok=True)
        with open(self.log_path, "wb") as out:
            self.proc = subprocess.Popen(
                self.args(binary, join, bootstrap_expect),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches this script only; it kills the agents
            )
        self.started_at = time.monotonic()
        record_pid(pidfile, self.proc.pid)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def get(self, path, timeout=3.0):
        """(status, parsed JSON or None); (None, None) when the agent does not answer."""
        for attempt in (0, 1):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=timeout)
                self.conn.timeout = timeout
                if self.conn.sock is not None:
                    self.conn.sock.settimeout(timeout)
                self.conn.request("GET", path)
                r = self.conn.getresponse()
                body = r.read()
                if r.status != 200:
                    return r.status, None
                return r.status, json.loads(body)
            except (OSError, http.client.HTTPException, ValueError):
                if self.conn is not None:
                    self.conn.close()
                self.conn = None
                if attempt == 1:
                    return None, None
        return None, None

    def members(self, timeout=3.0):
        """{name: status} as this agent sees it, or None."""
        _, body = self.get("/v1/agent/members", timeout)
        if not isinstance(body, list):
            return None
        return {m.get("Name"): m.get("Status") for m in body if isinstance(m, dict)}

    def kill(self):
        if self.running():
            try:
                self.proc.kill()
            except OSError:
                pass
        if self.proc is not None:
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def record_pid(pidfile, pid):
    if pidfile:
        with open(pidfile, "a") as f:
            f.write(f"{pid}\n")


# ---------------------------------------------------------------------------------------------
# /proc


def proc_cpu_ticks(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
    except OSError:
        return None
    rest = s[s.rfind(")") + 2 :].split()
    return int(rest[11]) + int(rest[12])  # utime + stime


def proc_status(pid):
    """VmRSS, RssAnon (bytes) and Threads from /proc/PID/status; Pss from smaps_rollup."""
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "RssAnon", "RssFile"):
                    out[k] = int(v.split()[0]) * 1024
                elif k == "Threads":
                    out[k] = int(v.split()[0])
    except OSError:
        return None
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    out["Pss"] = int(line.split()[1]) * 1024
    except OSError:
        pass
    return out


def pct(values, p):
    """Nearest-rank percentile."""
    if not values:
        return None
    v = sorted(values)
    k = max(0, min(len(v) - 1, int(-(-p * len(v) // 100)) - 1))
    return v[k]


def summary(values):
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "median": statistics.median(values),
        "p95": pct(values, 95),
        "max": max(values),
        "min": min(values),
    }


# ---------------------------------------------------------------------------------------------
# the benchmark


class Bench:
    def __init__(self, a):
        self.a = a
        self.rng = random.Random(a.seed)
        self.ports = PortPicker(self.rng)
        self.own_workdir = a.workdir is None
        self.workdir = a.workdir or tempfile.mkdtemp(prefix="census-agents-bench.")
        os.makedirs(os.path.join(self.workdir, "logs"), exist_ok=True)
        self.pidfile = os.path.join(self.workdir, "pids")
        self.servers = []
        self.clients = []
        self.extra = None
        self.sample = []
        self.killed = set()
        self.load_procs = []
        self.log_offsets = {}
        self.results = {}
        self.cleaned = False

    # -- processes ------------------------------------------------------------------------

    def all_agents(self):
        return self.servers + self.clients + ([self.extra] if self.extra else [])

    def new_agent(self, name, server):
        ports = (self.ports.pick(), self.ports.pick(), self.ports.pick())
        return Agent(name, server, ports, self.workdir)

    def cleanup(self):
        if self.cleaned:
            return
        self.cleaned = True
        for p in self.load_procs:
            if p.poll() is None:
                p.kill()
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        for ag in self.all_agents():
            ag.kill()
        if self.a.keep_logs:
            dst = self.a.keep_logs
            shutil.copytree(os.path.join(self.workdir, "logs"), dst, dirs_exist_ok=True)
            log(f"agent logs kept in {dst}")
        if self.own_workdir or not self.a.keep_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def dead_agents(self):
        return [ag.name for ag in self.all_agents() if ag.name not in self.killed and not ag.running()]

    def check_alive(self, where):
        dead = self.dead_agents()
        if dead:
            tails = {}
            for ag in self.all_agents():
                if ag.name in dead[:3]:
                    with open(ag.log_path, errors="replace") as f:
                        tails[ag.name] = f.read()[-2000:]
            raise RuntimeError(f"agents exited on their own during {where}: {dead}\n{json.dumps(tails, indent=1)}")

    # -- logs -------------------------------------------------------------------------------

    def mark_logs(self):
        return {ag.name: os.path.getsize(ag.log_path) for ag in self.all_agents() if os.path.exists(ag.log_path)}

    FAILED_RE = re.compile(r"serf: EventMemberFailed: (\S+)")
    DEFUNCT_RE = re.compile(r"serf: this agent was declared down")

    def scan_logs(self, since, until=None):
        """False failure events in the agents' logs between two marks: (observer, member) pairs
        naming a member that was not killed, and agents that learned they were declared down."""
        false_marks, defunct = [], []
        for ag in self.all_agents():
            start = since.get(ag.name, 0)
            end = (until or {}).get(ag.name)
            try:
                with open(ag.log_path, "rb") as f:
                    f.seek(start)
                    data = f.read() if end is None else f.read(max(0, end - start))
            except OSError:
                continue
            text = data.decode(errors="replace")
            for m in self.FAILED_RE.finditer(text):
                if m.group(1) not in self.killed:
                    false_marks.append([ag.name, m.group(1)])
            if self.DEFUNCT_RE.search(text):
                defunct.append(ag.name)
        return {"failed_events": false_marks, "declared_down": defunct}

    # -- phases -----------------------------------------------------------------------------

    def start_cluster(self):
        a = self.a
        self.servers = [self.new_agent(f"s{i}", True) for i in range(3)]
        for i, s in enumerate(self.servers):
            others = [o.server_port for j, o in enumerate(self.servers) if j != i]
            s.start(a.bin, others, 3, self.pidfile)
        log("3 servers started; waiting for a leader")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            self.check_alive("server start")
            _, leader = self.servers[0].get("/v1/status/leader")
            if isinstance(leader, str) and leader:
                break
            time.sleep(0.2)
        else:
            raise RuntimeError("no leader within 60 s")
        log(f"leader: {leader}")

        width = max(3, len(str(a.clients - 1)))
        self.clients = [self.new_agent(f"c{i:0{width}d}", False) for i in range(a.clients)]
        log(f"starting {a.clients} client agents")
        t_first = time.monotonic()
        for i, c in enumerate(self.clients):
            c.start(a.bin, [self.servers[i % 3].server_port], 3, self.pidfile)
        t_last = time.monotonic()
        log(f"started in {t_last - t_first:.2f} s; polling a sample of agents")
        self.sample = self.servers + self.rng.sample(self.clients, min(a.sample, len(self.clients)))
        expected = [ag.name for ag in self.servers + self.clients]
        first, series, rounds, all_t, catalog_t = self.wait_seen(expected, t_last, a.converge_timeout, catalog=True)
        self.results["convergence"] = {
            "start_spread_s": t_last - t_first,
            "sample": [ag.name for ag in self.sample],
            "all_seen_alive_by_sample_s": all_t,
            "all_seen_alive_from_first_start_s": None if all_t is None else all_t + (t_last - t_first),
            "per_sampled_agent_s": first,
            "catalog_has_every_node_s": catalog_t,
            "poll_rounds": rounds,
            "series": series,
        }
        if all_t is None:
            raise RuntimeError(f"not converged within {a.converge_timeout} s: {first}")
        log(f"every agent seen alive by the sample {all_t:.2f} s after the last start")

    def wait_seen(self, expected, t0, timeout, catalog=False):
        """Poll the sample until each sampled agent reports every name in `expected` alive.
        Returns (per-agent first time, series [(t, agent, alive count)], rounds, time all, catalog time)."""
        expected = set(expected)
        pending = list(self.sample)
        first = {}
        series = []
        rounds = 0
        catalog_t = None
        deadline = t0 + timeout
        while pending and time.monotonic() < deadline:
            rounds += 1
            for ag in list(pending):
                m = ag.members()
                t = time.monotonic() - t0
                alive = sum(1 for n in expected if m and m.get(n) == 1)
                series.append([round(t, 3), ag.name, alive])
                if alive == len(expected):
                    first[ag.name] = t
                    pending.remove(ag)
            if catalog and catalog_t is None:
                _, nodes = self.servers[0].get("/v1/catalog/nodes?stale")
                if isinstance(nodes, list) and expected <= {n.get("Node") for n in nodes}:
                    catalog_t = time.monotonic() - t0
            if rounds % 20 == 0:
                self.check_alive("convergence")
            time.sleep(self.a.poll_interval)
        if catalog and catalog_t is None and not pending:
            # the catalog may lag the gossip views a little
            while time.monotonic() < deadline:
                _, nodes = self.servers[0].get("/v1/catalog/nodes?stale")
                if isinstance(nodes, list) and expected <= {n.get("Node") for n in nodes}:
                    catalog_t = time.monotonic() - t0
                    break
                time.sleep(self.a.poll_interval)
        all_t = max(first.values()) if not pending else None
        return first, series, rounds, all_t, catalog_t

    def join_one(self):
        self.extra = self.new_agent("x0", False)
        t0 = time.monotonic()
        self.extra.start(self.a.bin, [self.servers[0].server_port], 3, self.pidfile)
        http_up = None
        while time.monotonic() - t0 < 30:
            st, _ = self.extra.get("/v1/agent/self", timeout=1)
            if st == 200:
                http_up = time.monotonic() - t0
                break
            time.sleep(0.02)
        first, _series, rounds, all_t, _ = self.wait_seen(["x0"], t0, 60)
        # the newcomer's own view: everyone alive
        own = None
        own_series = []  # [t, members it knows, of which alive]
        everyone = {ag.name for ag in self.servers + self.clients if ag.running()} | {"x0"}
        while time.monotonic() - t0 < self.a.newcomer_timeout:
            m = self.extra.members()
            t = time.monotonic() - t0
            if m:
                own_series.append([round(t, 3), sum(1 for n in everyone if n in m), sum(1 for n in everyone if m.get(n) == 1)])
            if m and all(m.get(n) == 1 for n in everyone):
                own = t
                break
            time.sleep(self.a.poll_interval)
        self.results["join"] = {
            "http_answering_s": http_up,
            "seen_alive_by_sample_s": all_t,
            "per_sampled_agent_s": first,
            "newcomer_sees_everyone_alive_s": own,
            "newcomer_view_series": own_series,
            "members_total": len(everyone),
            "poll_rounds": rounds,
        }
        if own is None:
            seen = own_series[-1][2] if own_series else 0
            log(f"x0 saw {seen} of {len(everyone)} members alive after {self.a.newcomer_timeout:g} s; not waiting longer")
        log(f"extra agent x0: HTTP up {fmt_s(http_up)}, seen alive by the sample {fmt_s(all_t)}, sees everyone {fmt_s(own)}")

    def idle(self):
        a = self.a
        log(f"quiet for {a.quiet} s (no requests), then a {a.cpu_window} s CPU window")
        for ag in self.all_agents():  # no keep-alive connections held open while idle
            if ag.conn is not None:
                ag.conn.close()
                ag.conn = None
        time.sleep(a.quiet)
        self.check_alive("quiet period")
        agents = [ag for ag in self.all_agents() if ag.running()]
        t1 = time.monotonic()
        c1 = {ag.name: proc_cpu_ticks(ag.proc.pid) for ag in agents}
        time.sleep(a.cpu_window)
        t2 = time.monotonic()
        c2 = {ag.name: proc_cpu_ticks(ag.proc.pid) for ag in agents}
        per = {}
        for ag in agents:
            st = proc_status(ag.proc.pid)
            if st is None or c1[ag.name] is None or c2[ag.name] is None:
                continue
            cpu = (c2[ag.name] - c1[ag.name]) / CLK_TCK / (t2 - t1) * 100.0
            per[ag.name] = {
                "server": ag.server,
                "rss_mb": st.get("VmRSS", 0) / MB,
                "rss_anon_mb": st.get("RssAnon", 0) / MB,
                "pss_mb": st.get("Pss", 0) / MB if "Pss" in st else None,
                "threads": st.get("Threads"),
                "cpu_pct": cpu,
            }
        cl = [v for v in per.values() if not v["server"]]
        sv = {k: v for k, v in per.items() if v["server"]}
        self.results["idle"] = {
            "quiet_s": a.quiet,
            "cpu_window_s": t2 - t1,
            "clk_tck": CLK_TCK,
            "cpu_resolution_pct": 100.0 / CLK_TCK / (t2 - t1),
            "clients": {
                "rss_mb": summary([v["rss_mb"] for v in cl]),
                "rss_anon_mb": summary([v["rss_anon_mb"] for v in cl]),
                "pss_mb": summary([v["pss_mb"] for v in cl if v["pss_mb"] is not None]),
                "cpu_pct": summary([v["cpu_pct"] for v in cl]),
                "threads": summary([v["threads"] for v in cl if v["threads"] is not None]),
                "total_cpu_pct": sum(v["cpu_pct"] for v in cl),
                "over_rss_goal": sum(1 for v in cl if v["rss_mb"] >= GOAL_RSS_MB),
                "over_cpu_goal": sum(1 for v in cl if v["cpu_pct"] >= GOAL_CPU_PCT),
            },
            "servers": sv,
            "per_agent": per,
        }
        c = self.results["idle"]["clients"]
        log(
            f"idle client RSS median {c['rss_mb']['median']:.1f} MB p95 {c['rss_mb']['p95']:.1f} max {c['rss_mb']['max']:.1f}; "
            f"CPU median {c['cpu_pct']['median']:.3f} % p95 {c['cpu_pct']['p95']:.3f} max {c['cpu_pct']['max']:.3f}"
        )

    def failures(self):
        a = self.a
        sampled = {ag.name for ag in self.sample}
        pool = [c for c in self.clients if c.name not in sampled and c.running()]
        if len(pool) < a.kills:
            pool = [c for c in self.clients if c.running()]
        victims = self.rng.sample(pool, min(a.kills, len(pool)))
        rows = []
        for v in victims:
            if v in self.sample:
                self.sample.remove(v)
            observers = [ag for ag in self.sample if ag.running()]
            server = self.servers[0]
            t0 = time.monotonic()
            v.proc.kill()
            self.killed.add(v.name)
            v.proc.wait()
            seen = {}
            first_any = None
            critical = None
            rounds = 0
            round_times = []
            while time.monotonic() - t0 < a.detect_timeout and (len(seen) < len(observers) or critical is None):
                rounds += 1
                r0 = time.monotonic()
                for ag in observers:
                    if ag.name in seen:
                        continue
                    m = ag.members()
                    if m and m.get(v.name) == 4:
                        seen[ag.name] = time.monotonic() - t0
                        if first_any is None:
                            first_any = seen[ag.name]
                if critical is None:
                    _, checks = server.get(f"/v1/health/node/{v.name}")
                    if isinstance(checks, list) and any(
                        c.get("CheckID") == "serfHealth" and c.get("Status") == "critical" for c in checks
                    ):
                        critical = time.monotonic() - t0
                round_times.append(time.monotonic() - r0)
                time.sleep(0.05)
            all_t = max(seen.values()) if len(seen) == len(observers) else None
            rows.append(
                {
                    "victim": v.name,
                    "first_observer_s": first_any,
                    "all_observers_s": all_t,
                    "serf_health_critical_s": critical,
                    "observers": len(observers),
                    "observers_seen": len(seen),
                    "poll_round_median_s": statistics.median(round_times) if round_times else None,
                }
            )
            log(
                f"killed {v.name}: first failed mark {fmt_s(first_any)}, failed in every sampled view {fmt_s(all_t)}, "
                f"serfHealth critical {fmt_s(critical)}"
            )
            time.sleep(a.between_kills)
        alls = [r["all_observers_s"] for r in rows if r["all_observers_s"] is not None]
        crit = [r["serf_health_critical_s"] for r in rows if r["serf_health_critical_s"] is not None]
        self.results["failure_detection"] = {
            "victims": rows,
            "all_observers_s": summary(alls),
            "serf_health_critical_s": summary(crit),
            "undetected": [r["victim"] for r in rows if r["all_observers_s"] is None or r["serf_health_critical_s"] is None],
        }

    def load(self):
        a = self.a
        targets = [ag for ag in self.all_agents() if ag.running()]
        if a.load_poll == "sample":
            targets = [ag for ag in self.sample if ag.running()]
        loops = a.busy_loops or NCPU
        log(
            f"load: {loops} busy loops{' + ' + str(a.mem_churn_mb) + ' MB memory churner' if a.mem_churn_mb else ''} "
            f"for {a.load_secs} s, then {a.after_load} s without; polling {len(targets)} agents' member views"
        )
        marks_before = self.mark_logs()
        t0 = time.monotonic()
        busy = f"import time\ne=time.time()+{a.load_secs + 5}\nwhile time.time()<e: pass\n"
        for _ in range(loops):
            self.load_procs.append(spawn_py(busy, self.pidfile))
        if a.mem_churn_mb:
            churn = (
                "import time\n"
                f"e=time.time()+{a.load_secs + 5}\nn={a.mem_churn_mb}*1024*1024\n"
                "while time.time()<e:\n"
                "    b=bytearray(n)\n"
                "    for i in range(0,n,4096): b[i]=1\n"
                "    del b\n"
            )
            self.load_procs.append(spawn_py(churn, self.pidfile))
        load_end = t0 + a.load_secs
        stop = load_end + a.after_load
        live = lambda name: name not in self.killed and any(ag.name == name and ag.running() for ag in self.all_agents())
        alive_names = {ag.name for ag in self.all_agents() if ag.running()}
        events = []  # [t, observer, member, status]
        unanswered = []  # [t, agent]
        latencies = []  # [t, seconds, loaded]
        serf_critical = []  # [t, node]
        polls = 0
        rounds = 0
        round_start = t0
        load_stopped = False
        idx = 0
        last_health = 0.0
        while True:
            now = time.monotonic()
            if not load_stopped and now >= load_end:
                for p in self.load_procs:
                    if p.poll() is None:
                        p.kill()
                for p in self.load_procs:
                    p.wait()
                load_stopped = True
                log("load stopped")
            if now >= stop:
                break
            ag = targets[idx % len(targets)]
            idx += 1
            if idx % len(targets) == 1:  # a new round: at most one round per --load-round seconds
                if idx > 1:
                    rest = round_start + a.load_round - time.monotonic()
                    if rest > 0:
                        time.sleep(min(rest, max(0.0, stop - time.monotonic())))
                round_start = time.monotonic()
                rounds += 1
            r0 = time.monotonic()
            m = ag.members(timeout=5)
            r1 = time.monotonic()
            polls += 1
            latencies.append([round(r0 - t0, 3), round(r1 - r0, 4), not load_stopped])
            if m is None:
                unanswered.append([round(r0 - t0, 3), ag.name])
            else:
                for name, status in m.items():
                    if status != 1 and name in alive_names:
                        events.append([round(r1 - t0, 3), ag.name, name, status])
            if r1 - last_health >= 1.0:
                last_health = r1
                _, crit = self.servers[idx % 3].get("/v1/health/state/critical?stale")
                if isinstance(crit, list):
                    for c in crit:
                        if c.get("CheckID") == "serfHealth" and c.get("Node") in alive_names:
                            serf_critical.append([round(r1 - t0, 3), c.get("Node")])
        # only those still alive at the end count as false (none of ours die on purpose here)
        events = [e for e in events if live(e[2])]
        serf_critical = [e for e in serf_critical if live(e[1])]
        logs = self.scan_logs(marks_before)
        lat_loaded = [x[1] for x in latencies if x[2]]
        lat_after = [x[1] for x in latencies if not x[2]]
        self.results["load"] = {
            "busy_loops": loops,
            "mem_churn_mb": a.mem_churn_mb,
            "load_s": a.load_secs,
            "after_s": a.after_load,
            "polled_agents": len(targets),
            "polls": polls,
            "poll_rounds": rounds,
            "false_marks_polled": events,
            "false_marks_members": sorted({e[2] for e in events}),
            "false_serf_health_critical": serf_critical,
            "unanswered_polls": unanswered,
            "log_failed_events": logs["failed_events"],
            "log_declared_down": logs["declared_down"],
            "poll_latency_loaded_s": summary(lat_loaded),
            "poll_latency_after_s": summary(lat_after),
            "latency_series": latencies,
        }
        log(
            f"under load: {len(events)} false marks polled ({sorted({e[2] for e in events})}), "
            f"{len(logs['failed_events'])} EventMemberFailed lines naming live agents in logs, "
            f"{len(serf_critical)} serfHealth-critical sightings of live nodes, {len(unanswered)} unanswered polls of {polls}"
        )

    def whole_run_logs(self):
        res = self.scan_logs({})
        self.results["logs_whole_run"] = {
            "failed_events_naming_live_agents": res["failed_events"],
            "declared_down": res["declared_down"],
        }

    # -- run ----------------------------------------------------------------------------------

    def run(self):
        a = self.a
        self.results["meta"] = meta(a)
        log(f"binary: {a.bin} ({self.results['meta']['profile']}), N={a.clients} client agents, {NCPU} cores")
        phases = [("cluster", self.start_cluster), ("join", self.join_one), ("idle", self.idle)]
        if a.kills:
            phases.append(("failures", self.failures))
        if a.load_secs:
            phases.append(("load", self.load))
        for name, fn in phases:
            if a.only and name not in a.only and name not in ("cluster",):
                continue
            fn()
        self.check_alive("the run")
        self.whole_run_logs()


def spawn_py(code, pidfile):
    p = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.DEVNULL, start_new_session=True)
    record_pid(pidfile, p.pid)
    return p


def fmt_s(v):
    return "-" if v is None else f"{v:.2f} s"


def meta(a):
    def git(*args):
        try:
            return subprocess.run(["git", *args], capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None

    b = os.path.realpath(a.bin)
    profile = "release" if "/release/" in b else "debug" if "/debug/" in b else "unknown"
    st = os.stat(b)
    try:
        load = open("/proc/loadavg").read().split()[:3]
    except OSError:
        load = None
    return {
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "binary": a.bin,
        "profile": profile,
        "binary_mtime": dt.datetime.fromtimestamp(st.st_mtime).isoformat(timespec="seconds"),
        "git_head": git("rev-parse", "--short", "HEAD"),
        "git_dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
        "clients": a.clients,
        "servers": 3,
        "cores": NCPU,
        "loadavg_at_start": load,
        "quick": a.quick,
        "seed": a.seed,
    }


# ---------------------------------------------------------------------------------------------
# report


def table(r):
    rows = []
    m = r["meta"]
    add = lambda what, goal, fig: rows.append((what, goal, fig))
    if "convergence" in r:
        c = r["convergence"]
        add(
            "every agent seen alive by the sample, after the last start",
            "-",
            f"{fmt_s(c['all_seen_alive_by_sample_s'])} (clients started within {c['start_spread_s']:.2f} s)",
        )
        add("every node in the catalog (server), after the last start", "-", fmt_s(c["catalog_has_every_node_s"]))
    if "join" in r:
        j = r["join"]
        add(
            "one more agent: seen alive by every sampled agent",
            "-",
            f"{fmt_s(j['seen_alive_by_sample_s'])} (its HTTP up after {fmt_s(j['http_answering_s'])})",
        )
        own = j["newcomer_sees_everyone_alive_s"]
        ser = j.get("newcomer_view_series") or []
        if own is None and ser:
            last = ser[-1]
            own_txt = f"not within {last[0]:.0f} s (saw {last[2]} of {j['members_total']} alive then)"
        else:
            own_txt = fmt_s(own)
        add("one more agent: it sees every member alive", "-", own_txt)
    if "idle" in r:
        i = r["idle"]["clients"]
        s3 = lambda s, f: f"{f(s['median'])} / {f(s['p95'])} / {f(s['max'])}"
        mb = lambda v: f"{v:.1f}"
        add("idle RSS per client agent, MB (median / p95 / max)", f"< {GOAL_RSS_MB:g}", s3(i["rss_mb"], mb))
        add("  of which anonymous (RssAnon), MB", "-", s3(i["rss_anon_mb"], mb))
        if i["pss_mb"].get("n"):
            add("  proportional (Pss, shared pages split), MB", "-", s3(i["pss_mb"], mb))
        add(
            f"idle CPU per client agent, % of a core over {r['idle']['cpu_window_s']:.0f} s (median / p95 / max)",
            f"< {GOAL_CPU_PCT:g}",
            s3(i["cpu_pct"], lambda v: f"{v:.3f}"),
        )
        add("idle CPU of all client agents together, % of a core", "-", f"{i['total_cpu_pct']:.1f}")
        sv = r["idle"]["servers"]
        add(
            "idle servers: RSS MB / CPU %",
            "-",
            ", ".join(f"{k} {v['rss_mb']:.0f} / {v['cpu_pct']:.2f}" for k, v in sorted(sv.items())),
        )
    if "failure_detection" in r:
        f = r["failure_detection"]
        s2 = lambda s: "-" if not s.get("n") else f"{s['median']:.2f} / {s['max']:.2f} s"
        add(
            f"SIGKILL -> failed (4) in every sampled view (median / max of {len(f['victims'])})",
            "-",
            s2(f["all_observers_s"]),
        )
        add("SIGKILL -> serfHealth critical on a server (median / max)", "-", s2(f["serf_health_critical_s"]))
    if "load" in r:
        l = r["load"]
        names = l["false_marks_members"]
        logn = l["log_failed_events"]
        add(
            f"false failure marks under load ({l['busy_loops']} busy loops"
            + (f" + {l['mem_churn_mb']} MB churn" if l["mem_churn_mb"] else "")
            + f", {l['load_s']} s + {l['after_s']} s)",
            "0",
            f"{len(l['false_marks_polled'])} polled"
            + (f" ({', '.join(names)})" if names else "")
            + f"; {len(logn)} in logs"
            + (f" ({', '.join(sorted({x[1] for x in logn}))})" if logn else ""),
        )
        lat = l["poll_latency_loaded_s"]
        if lat.get("n"):
            add("members poll under load, ms (median / max)", "-", f"{lat['median'] * 1000:.0f} / {lat['max'] * 1000:.0f}")
    out = [
        f"census client agents at scale: N={m['clients']} client agents + 3 servers, {m['profile']} binary ({m['binary']}), "
        f"{m['cores']} cores, {m['date']}, binary built {m['binary_mtime']}, "
        f"HEAD {m['git_head']}{' (dirty tree)' if m['git_dirty'] else ''}",
        "",
        "| what | goal | figure |",
        "|---|---|---|",
    ]
    out += [f"| {w} | {g} | {fg} |" for w, g, fg in rows]
    return "\n".join(out)


def charts(r, outdir):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker
    except ImportError:
        log("matplotlib not importable: no charts (python3 -m pip install matplotlib)")
        return []
    os.makedirs(outdir, exist_ok=True)
    m = r["meta"]
    tag = f"N={m['clients']}, {m['profile']} binary, {m['date'][:10]}"
    written = []

    def cdf(ax, values, **kw):
        v = sorted(values)
        n = len(v)
        ax.step(v, [(k + 1) / n for k in range(n)], where="post", **kw)

    if "idle" in r:
        per = r["idle"]["per_agent"]
        cl = [v for v in per.values() if not v["server"]]
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
        cdf(ax1, [v["rss_mb"] for v in cl], color="#4a7ab5", label="VmRSS (asked by the goal)")
        pss = [v["pss_mb"] for v in cl if v["pss_mb"] is not None]
        if pss:
            cdf(ax1, pss, color="#50a050", label="Pss (shared pages split)")
        cdf(ax1, [v["rss_anon_mb"] for v in cl], color="#e0a030", label="RssAnon (private)")
        ax1.axvline(GOAL_RSS_MB, color="red", ls="--", label=f"goal {GOAL_RSS_MB:g} MB")
        ax1.set_xlim(left=0)
        ax1.set_xlabel("MB per client agent, after the quiet period")
        ax1.set_ylabel("fraction of client agents")
        ax1.set_title("idle memory (CDF)")
        ax1.legend(fontsize=8)
        ax1.grid(alpha=0.3)
        cdf(ax2, [v["cpu_pct"] for v in cl], color="#4a7ab5", label="client agents")
        ax2.axvline(GOAL_CPU_PCT, color="red", ls="--", label=f"goal {GOAL_CPU_PCT:g} %")
        ax2.set_xlim(left=0)
        ax2.set_xlabel(
            f"% of one core over {r['idle']['cpu_window_s']:.0f} s "
            f"(resolution {r['idle']['cpu_resolution_pct']:.3f} %)"
        )
        ax2.set_title("idle CPU (CDF)")
        ax2.legend(fontsize=8)
        ax2.grid(alpha=0.3)
        fig.suptitle(f"census client agents idle ({tag})")
        fig.tight_layout()
        p = os.path.join(outdir, "agents-idle.png")
        fig.savefig(p, dpi=100)
        plt.close(fig)
        written.append(p)

    if "convergence" in r:
        c = r["convergence"]
        j = r.get("join") or {}
        if j.get("newcomer_view_series"):
            fig, (ax, axj) = plt.subplots(1, 2, figsize=(12, 4), gridspec_kw={"width_ratios": [3, 2]})
            ser = j["newcomer_view_series"]
            axj.step([x[0] for x in ser], [x[2] for x in ser], where="post", color="#4a7ab5", label="alive in its view")
            axj.axhline(j["members_total"], color="grey", ls=":")
            axj.set_xlabel("s after the extra agent x0 was started")
            axj.set_ylabel("members x0 sees alive")
            sa = j.get("seen_alive_by_sample_s")
            if sa is not None:
                axj.axvline(sa, color="#e0a030", ls="--", label=f"every sampled agent sees x0 ({sa:.1f} s)")
            axj.set_title("one more agent joins: its own view", fontsize=10)
            axj.yaxis.get_major_locator().set_params(integer=True)
            axj.legend(fontsize=8, loc="lower right")
        else:
            fig, ax = plt.subplots(figsize=(8, 4))
        by = {}
        for t, name, alive in c["series"]:
            by.setdefault(name, []).append((t, alive))
        colors = {"s0": "#c03030", "s1": "#30a030", "s2": "#3050c0"}
        labelled = False
        for name, pts in sorted(by.items(), key=lambda kv: kv[0] in colors):
            if name in colors:
                kw = {"color": colors[name], "lw": 1.5, "label": f"server {name}"}
            else:
                kw = {"color": "#999999", "lw": 1, "label": None if labelled else "sampled client agents"}
                labelled = True
            ax.step([p[0] for p in pts], [p[1] for p in pts], where="post", **kw)
        total = m["clients"] + 3
        ax.axhline(total, color="grey", ls=":")
        if c["all_seen_alive_by_sample_s"] is not None:
            ax.axvline(c["all_seen_alive_by_sample_s"], color="red", ls="--", label="all seen by all sampled")
        ax.set_xlabel("s after the last agent was started")
        ax.set_ylabel("members seen alive")
        ax.set_title(f"start-up: each line one sampled agent's view ({tag})", fontsize=10)
        ax.legend(fontsize=8)
        fig.tight_layout()
        p = os.path.join(outdir, "agents-convergence.png")
        fig.savefig(p, dpi=100)
        plt.close(fig)
        written.append(p)

    if "failure_detection" in r:
        rows = r["failure_detection"]["victims"]
        fig, ax = plt.subplots(figsize=(8, 1.6 + 0.35 * len(rows)))
        ys = range(len(rows))
        for key, color, label in (
            ("first_observer_s", "#e0a030", "first sampled agent marks it failed"),
            ("all_observers_s", "#4a7ab5", "every sampled agent marks it failed"),
            ("serf_health_critical_s", "#c03030", "serfHealth critical on a server"),
        ):
            pts = [(row[key], y) for row, y in zip(rows, ys) if row[key] is not None]
            ax.scatter([p[0] for p in pts], [p[1] for p in pts], color=color, label=label, zorder=3)
        ax.set_yticks(list(ys))
        ax.set_yticklabels([row["victim"] for row in rows])
        ax.set_xlabel("s after SIGKILL")
        ax.set_xlim(left=0)
        ax.grid(axis="x", alpha=0.3)
        ax.set_ylim(-0.6, len(rows) - 0.4)
        ax.set_title(f"failure detection ({tag})")
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=3)
        fig.tight_layout()
        p = os.path.join(outdir, "agents-detection.png")
        fig.savefig(p, dpi=100)
        plt.close(fig)
        written.append(p)

    if "load" in r:
        l = r["load"]
        fig, ax = plt.subplots(figsize=(8, 3.5))
        ts = [x[0] for x in l["latency_series"]]
        ms = [x[1] * 1000 for x in l["latency_series"]]
        ax.scatter(ts, ms, s=4, color="#4a7ab5", label="/v1/agent/members answer time", zorder=2)
        ax.axvspan(
            0,
            l["load_s"],
            color="#f0d0a0",
            alpha=0.5,
            zorder=0,
            label=f"{l['busy_loops']} busy loops" + (" + memory churn" if l["mem_churn_mb"] else ""),
        )
        fm = l["false_marks_polled"]
        if fm:
            ax.scatter([e[0] for e in fm], [max(ms) if ms else 1] * len(fm), marker="x", color="red", label="false failure mark")
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _p: f"{v:g}"))
        ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel("s from the start of the load")
        ax.set_ylabel("ms")
        ax.set_title(
            f"under load: {len(fm)} false marks polled, {len(l['log_failed_events'])} in logs ({tag})", fontsize=10
        )
        ax.legend(fontsize=8, loc="upper right")
        fig.tight_layout()
        p = os.path.join(outdir, "agents-load.png")
        fig.savefig(p, dpi=100)
        plt.close(fig)
        written.append(p)
    return written


# ---------------------------------------------------------------------------------------------


def default_bin(root):
    rel = os.path.join(root, "target/release/census")
    return rel if os.path.exists(rel) else os.path.join(root, "target/debug/census")


def parse():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="smoke run: N=20 and short windows")
    p.add_argument("--clients", "-n", type=int, help="client agents (default 200; 20 with --quick)")
    p.add_argument("--sample", type=int, default=10, help="random client agents polled besides the servers")
    p.add_argument("--quiet", type=float, help="seconds without requests before the CPU window (60; 15 quick)")
    p.add_argument("--cpu-window", type=float, help="seconds of the idle CPU window (30; 10 quick)")
    p.add_argument("--kills", type=int, default=5, help="client agents SIGKILLed one at a time")
    p.add_argument("--between-kills", type=float, default=2.0)
    p.add_argument("--detect-timeout", type=float, default=60.0)
    p.add_argument("--load-secs", type=float, help="seconds of CPU load (60; 20 quick); 0 skips the phase")
    p.add_argument("--after-load", type=float, help="seconds polled after the load stops (10; 5 quick)")
    p.add_argument("--busy-loops", type=int, default=0, help="busy-loop processes during the load (default: one per core)")
    p.add_argument("--mem-churn-mb", type=int, default=512, help="memory churner allocation during the load; 0: none")
    p.add_argument("--load-poll", choices=("all", "sample"), default="all", help="whose member views to poll under load")
    p.add_argument("--load-round", type=float, default=1.0, help="under load, poll every agent at most once per this many seconds")
    p.add_argument("--poll-interval", type=float, default=0.25)
    p.add_argument("--converge-timeout", type=float, default=300.0)
    p.add_argument("--newcomer-timeout", type=float, default=300.0, help="how long to wait for the extra agent to see everyone")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--only", nargs="*", choices=("join", "idle", "failures", "load"), help="run only these phases")
    p.add_argument("--workdir", help="directory for data dirs and logs (default: a new temp dir, removed)")
    p.add_argument("--keep-workdir", action="store_true", help="do not remove --workdir at the end")
    p.add_argument("--keep-logs", metavar="DIR", help="copy the agents' logs here before cleaning up")
    p.add_argument("--out", help="results JSON (default bench/agents/results-<timestamp>.json)")
    p.add_argument("--charts-dir", default=os.path.join(root, "docs/img"))
    p.add_argument("--no-charts", action="store_true")
    a = p.parse_args()
    a.bin = os.environ.get("CENSUS_BIN") or default_bin(root)
    quick = a.quick
    a.clients = a.clients if a.clients is not None else (20 if quick else 200)
    a.quiet = a.quiet if a.quiet is not None else (15 if quick else 60)
    a.cpu_window = a.cpu_window if a.cpu_window is not None else (10 if quick else 30)
    a.load_secs = a.load_secs if a.load_secs is not None else (20 if quick else 60)
    a.after_load = a.after_load if a.after_load is not None else (5 if quick else 10)
    if a.seed is None:
        a.seed = random.randrange(1 << 30)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    a.out = a.out or os.path.join(root, "bench/agents", f"results-{stamp}.json")
    if not os.access(a.bin, os.X_OK):
        p.error(f"no census binary at {a.bin} (set CENSUS_BIN or build it)")
    return a


def main():
    a = parse()
    bench = Bench(a)
    atexit.register(bench.cleanup)

    def on_signal(signum, _frame):
        raise SystemExit(128 + signum)

    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)
    status = 0
    try:
        bench.run()
    except KeyboardInterrupt:
        log("interrupted")
        status = 130
    except RuntimeError as e:
        log(f"error: {e}")
        bench.results["error"] = str(e)
        status = 1
    finally:
        bench.cleanup()
    r = bench.results
    if "meta" in r and status != 130:
        os.makedirs(os.path.dirname(a.out), exist_ok=True)
        with open(a.out, "w") as f:
            json.dump(r, f, indent=1)
        print()
        print(table(r))
        print()
        log(f"results: {a.out}")
        if not a.no_charts and status == 0:
            for p in charts(r, a.charts_dir):
                log(f"chart: {p}")
    return status


if __name__ == "__main__":
    sys.exit(main())
