//! Load generator: KV PUT and GET (`?stale`, `?consistent`) throughput and latency at several
//! client counts against a three-server census cluster on loopback, plus the write gap after
//! the leader is killed. Usage: `census-bench [SECONDS_PER_STEP]` (CENSUS_BIN picks the binary).
//!
//! `census-bench soak SECONDS CLIENTS [WINDOW_SECONDS]`: sustained PUTs of 256-byte values over
//! 10,000 keys, one WINDOW line per window (throughput, p50/p99/p999/max, each server's RSS at
//! its end) and one RESULT line, in the format of bench/etcd-load (scripts/bench-soak.sh runs
//! both).
//!
//! `census-bench fanout WATCHERS [ROUNDS] [stale|default]`: WATCHERS blocking GETs (one
//! connection each, `?stale` unless `default`) on one key of a follower, then one PUT through the
//! leader; prints the time from the PUT's answer
//! to the first and the last watcher's answer, per round and their medians.

use std::time::{Duration, Instant};

use census_client::KvWriteOptions;
use census_e2e::bench::{Op, Shape, percentile, run, step, windows};
use census_e2e::{Agent, Cluster, eventually};

/// User plus system CPU time of a process so far, from /proc/PID/stat (fields 14 and 15, in
/// clock ticks of 10 ms on Linux).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The command name (field 2) is in parentheses and may hold spaces: count from after it.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    field(14) + field(15)
}

fn cluster_cpu_ticks(cluster: &Cluster) -> u64 {
    cluster.agents.iter().filter_map(Agent::pid).map(cpu_ticks).sum()
}

const TICKS_PER_SEC: u64 = 100;

/// VmRSS of each running census server, from /proc/PID/status.
fn rss_kib(cluster: &Cluster) -> String {
    let rss = |pid: u32| {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let line = status.lines().find(|l| l.starts_with("VmRSS")).unwrap_or("");
        line.split_whitespace().nth(1).unwrap_or("?").to_string()
    };
    cluster.agents.iter().filter_map(Agent::pid).map(rss).collect::<Vec<_>>().join(",")
}

fn ms(sorted: &[u64], p: f64) -> f64 {
    percentile(sorted, p) as f64 / 1000.0
}

async fn soak(secs: u64, clients: usize, window: u64) {
    let mut cluster = Cluster::start(3).await;
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await;
    let client = cluster.agents[leader].client();
    let shape = Shape { value_bytes: 256, keys: 10_000 };
    let mut rss = Vec::new();
    println!(
        "START {}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0)
    );
    let samples = run(client, Op::Put, clients, Duration::from_secs(secs), shape, |second| {
        if second % window == 0 {
            rss.push(rss_kib(&cluster));
        }
    })
    .await;
    let mut all = samples.latencies_us.clone();
    all.sort_unstable();
    println!(
        "RESULT system=census op=put clients={clients} ops_s={:.0} p50_ms={:.2} p99_ms={:.2} p999_ms={:.2} max_ms={:.2} errors={}",
        all.len() as f64 / samples.secs,
        ms(&all, 0.5),
        ms(&all, 0.99),
        ms(&all, 0.999),
        ms(&all, 1.0),
        samples.errors
    );
    for (w, rss) in windows(&samples, window).iter().zip(rss) {
        let l = &w.latencies_us;
        println!(
            "WINDOW system=census op=put clients={clients} t_s={} ops_s={:.0} p50_ms={:.2} p99_ms={:.2} p999_ms={:.2} max_ms={:.2} rss_kib={rss}",
            w.end_s,
            w.ops_s,
            ms(l, 0.5),
            ms(l, 0.99),
            ms(l, 0.999),
            ms(l, 1.0)
        );
    }
    if std::env::var_os("CENSUS_BENCH_SHOW_LOGS").is_some() {
        for (i, agent) in cluster.agents.iter().enumerate() {
            for line in agent.log().lines().filter(|l| !l.contains(" INFO census::agent")) {
                println!("server {i}: {line}");
            }
        }
    }
    cluster.agents.iter_mut().for_each(Agent::kill);
}

/// Blocking GETs on one key through a follower, woken by one PUT through the leader.
async fn fanout(watchers: usize, rounds: usize, mode: &str) {
    let mut cluster = Cluster::start(3).await;
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await;
    let writer = cluster.agents[leader].client();
    let follower = cluster.agents[cluster.other_than(leader)].http_addr();
    let http = reqwest::Client::builder().pool_max_idle_per_host(watchers).build().expect("http client");
    let url = format!("http://{follower}/v1/kv/fan/key");
    let (mut firsts, mut lasts) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        writer
            .kv_put("fan/key", format!("{round}").as_bytes(), KvWriteOptions::default())
            .await
            .expect("put");
        // The follower has applied it once a stale read sees it; its index is what watchers wait past.
        let index = eventually(Duration::from_secs(5), "the follower applied the put", || async {
            let r = http.get(format!("{url}?stale")).send().await.ok()?;
            let index = r.headers().get("X-Consul-Index")?.to_str().ok()?.parse::<u64>().ok()?;
            let body = r.text().await.ok()?;
            body.contains(&base64_of(round)).then_some(index)
        })
        .await;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut tasks = Vec::new();
        for _ in 0..watchers {
            let (http, url, tx) = (http.clone(), format!("{url}?index={index}&wait=60s{mode}"), tx.clone());
            tasks.push(tokio::spawn(async move {
                if let Ok(r) = http.get(url).send().await {
                    let _ = r.bytes().await;
                    let _ = tx.send(Instant::now());
                }
            }));
        }
        // Every watcher's request is in and blocked: the server counts them in a gauge... it
        // does not; give them time to connect and block (not a synchronization: a late one
        // only makes this round's figure larger).
        tokio::time::sleep(Duration::from_millis(500 + watchers as u64 / 2)).await;
        let value = format!("{}", round + 1_000_000);
        writer.kv_put("fan/key", value.as_bytes(), KvWriteOptions::default()).await.expect("put");
        let put_done = Instant::now();
        let mut times = Vec::with_capacity(watchers);
        while times.len() < watchers {
            match tokio::time::timeout(Duration::from_secs(30), rx.recv()).await {
                Ok(Some(t)) => times.push(t),
                _ => break,
            }
        }
        let ms = |t: &Instant| t.saturating_duration_since(put_done).as_secs_f64() * 1000.0;
        let (first, last) =
            (times.iter().map(ms).fold(f64::MAX, f64::min), times.iter().map(ms).fold(0.0, f64::max));
        println!(
            "ROUND system=census op=fanout watchers={watchers} answered={} first_ms={first:.2} last_ms={last:.2}",
            times.len()
        );
        firsts.push(first);
        lasts.push(last);
        for t in tasks {
            let _ = t.await;
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "RESULT system=census op=fanout watchers={watchers} first_ms={:.2} last_ms={:.2} (medians of {rounds})",
        median(&mut firsts),
        median(&mut lasts)
    );
    cluster.agents.iter_mut().for_each(Agent::kill);
}

/// The base64 of a round's value, as the KV API returns it.
fn base64_of(round: usize) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(round.to_string())
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("fanout") {
        let num = |i: usize, default: usize| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(default);
        let mode = if args.get(4).map(String::as_str) == Some("default") { "" } else { "&stale" };
        fanout(num(2, 1000), num(3, 10), mode).await;
        return;
    }
    if args.get(1).map(String::as_str) == Some("soak") {
        let num = |i: usize, default: u64| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(default);
        soak(num(2, 60), num(3, 64) as usize, num(4, 10).max(1)).await;
        return;
    }
    let secs: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(5);
    let mut cluster = Cluster::start(3).await;
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await;
    let client = cluster.agents[leader].client();
    // Seed the keys the readers read.
    for w in 0..256 {
        for i in 0..100u64 {
            if w < 4 || i == 0 {
                let _ = client
                    .kv_put(&format!("bench/{w}/{i}"), b"0123456789abcdef", KvWriteOptions::default())
                    .await;
            }
        }
    }
    println!("| op | clients | ops/s | p50 ms | p99 ms | errors | server CPU µs/op |");
    println!("|---|---|---|---|---|---|---|");
    for op in [Op::Put, Op::GetStale, Op::GetConsistent] {
        for clients in [1usize, 16, 64, 256] {
            let cpu_before = cluster_cpu_ticks(&cluster);
            let r = step(client.clone(), op, clients, Duration::from_secs(secs)).await;
            let cpu_us = (cluster_cpu_ticks(&cluster) - cpu_before) * 1_000_000 / TICKS_PER_SEC;
            println!(
                "| {op:?} | {clients} | {:.0} | {:.2} | {:.2} | {} | {:.0} |",
                r.ops as f64 / r.secs,
                percentile(&r.latencies_us, 0.50) as f64 / 1000.0,
                percentile(&r.latencies_us, 0.99) as f64 / 1000.0,
                r.errors,
                cpu_us as f64 / r.ops.max(1) as f64,
            );
        }
    }
    println!("\nRSS per server (KiB): {}", rss_kib(&cluster));

    // Leader-kill write gap: time from SIGKILL of the leader to the next acknowledged write.
    let mut gaps = Vec::new();
    for round in 0..3 {
        let leader = cluster.wait_for_leader(Duration::from_secs(15)).await;
        let survivor = cluster.other_than(leader);
        cluster.agents[leader].kill();
        let t = Instant::now();
        let c = cluster.agents[survivor].client();
        eventually(Duration::from_secs(15), "a write after the leader was killed", || async {
            c.kv_put(&format!("gap/{round}"), b"x", KvWriteOptions::default()).await.ok().filter(|ok| *ok)
        })
        .await;
        gaps.push(t.elapsed().as_millis());
        cluster.agents[leader].start();
        cluster.wait_for_leader(Duration::from_secs(15)).await;
    }
    println!("leader-kill write gap (ms), 3 rounds: {gaps:?}");
}
