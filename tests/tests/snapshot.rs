//! Snapshots: a 3-server cluster holding 20k keys (100k in the scale run) and 1k services is saved with
//! `census snapshot save` and restored into a fresh 3-server cluster with `census snapshot
//! restore`; KV export and catalog answers are byte-identical, on every server, and a query
//! blocked on the fresh cluster wakes with the index reset.

use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine;
use census_client::Client;
use census_e2e::{Cluster, census_bin, eventually, put};
use futures::StreamExt;
use serde_json::json;

/// 100k keys in the documented scale run (`CENSUS_SNAPSHOT_KEYS=100000`, docs/benchmarks.md);
/// the test command's run uses fewer, to stay within CI's time on two cores.
fn keys() -> usize {
    std::env::var("CENSUS_SNAPSHOT_KEYS").ok().and_then(|k| k.parse().ok()).unwrap_or(20_000)
}
const SERVICES: usize = 1_000;

fn census(addr: &str, args: &[&str]) -> String {
    let out =
        Command::new(census_bin()).args(args).env("CENSUS_HTTP_ADDR", addr).output().expect("run census");
    assert!(
        out.status.success(),
        "census {args:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A GET that must succeed. An election under this test's load (100k writes on two cores) can
/// leave a server without a leader for a moment; a read answered `No cluster leader` is asked
/// again, as Consul's clients do, until a leader is back.
async fn get(client: &Client, path: &str, params: &[(&str, String)]) -> (u64, Vec<u8>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, headers, body) =
            client.raw(reqwest::Method::GET, path, params, None, None).await.expect("request");
        let no_leader = status.as_u16() == 500 && body.ends_with(b"No cluster leader");
        if no_leader && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        assert!(status.is_success(), "{path}: {status} {}", String::from_utf8_lossy(&body));
        let index = headers.get("X-Consul-Index").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
        return (index.unwrap_or(0), body);
    }
}

/// Every registered service's catalog answer, in order.
async fn catalog_answers(client: &Client, stale: bool) -> Vec<Vec<u8>> {
    let params: Vec<(&str, String)> = if stale { vec![("stale", String::new())] } else { vec![] };
    let mut out = Vec::with_capacity(SERVICES);
    for i in 0..SERVICES {
        out.push(get(client, &format!("/v1/catalog/service/svc-{i:04}"), &params).await.1);
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restored_cluster_holds_the_identical_catalog_and_kv() {
    let source = Cluster::start(3).await;
    let leader = source.wait_for_leader(Duration::from_secs(10)).await;
    let addr = source.agents[leader].http_addr();
    let client = source.agents[leader].client();

    // 100k keys through `census kv import` (transactions of 64 keys).
    let dir = tempfile::tempdir().expect("tempdir");
    let entries: Vec<_> = (0..keys())
        .map(|i| {
            let value = format!("value {i} {}", "x".repeat(i % 50));
            json!({"key": format!("data/{:03}/{i:06}", i % 997), "flags": i % 7,
                   "value": base64::engine::general_purpose::STANDARD.encode(value)})
        })
        .collect();
    let import = dir.path().join("import.json");
    std::fs::write(&import, serde_json::to_vec(&entries).expect("json")).expect("write import");
    let started = Instant::now();
    census(&addr, &["kv", "import", &format!("@{}", import.display())]);
    println!("loaded {} keys in {:?}", keys(), started.elapsed());

    // 1k services on 20 external nodes, each with a check.
    let started = Instant::now();
    futures::stream::iter(0..SERVICES)
        .map(|i| {
            let client = client.clone();
            async move {
                let body = json!({
                    "Node": format!("ext-{:02}", i % 20), "Address": format!("10.1.0.{}", i % 20),
                    "Service": {"ID": format!("svc-{i:04}-1"), "Service": format!("svc-{i:04}"),
                                "Port": 8000 + (i % 1000) as u16, "Tags": ["v1", "snap"], "Meta": {"n": i.to_string()}},
                    "Check": {"CheckID": format!("svc-{i:04}-check"), "Name": "alive", "Status": "passing",
                              "ServiceID": format!("svc-{i:04}-1")}
                });
                put(&client, "/v1/catalog/register", Some(body)).await;
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<()>>()
        .await;
    println!("registered {SERVICES} services in {:?}", started.elapsed());

    let snapshot = dir.path().join("backup.snap");
    let snapshot_arg = snapshot.display().to_string();
    let started = Instant::now();
    census(&addr, &["snapshot", "save", &snapshot_arg]);
    let save_time = started.elapsed();
    let size = std::fs::metadata(&snapshot).expect("snapshot file").len();
    let inspect = census(&addr, &["snapshot", "inspect", &snapshot_arg]);
    let kv_count = inspect.lines().find_map(|l| l.trim().strip_prefix("KV ")).map(str::trim);
    assert_eq!(kv_count, Some(keys().to_string().as_str()), "{inspect}");

    let export_before = census(&addr, &["kv", "export"]);
    let (_, kv_before) = get(&client, "/v1/kv/", &[("recurse", String::new())]).await;
    let catalog_before = catalog_answers(&client, false).await;
    drop(source);

    // A fresh cluster, with a reader blocked on its (empty) KV store.
    let target = Cluster::start(3).await;
    let leader = target.wait_for_leader(Duration::from_secs(10)).await;
    let addr = target.agents[leader].http_addr();
    let client = target.agents[leader].client();
    census(&addr, &["kv", "put", "before-restore", "gone"]);
    let (fresh_index, _) = get(&client, "/v1/kv/", &[("recurse", String::new())]).await;
    let blocked_client = target.agents[target.other_than(leader)].client();
    let blocked = tokio::spawn(async move {
        let params =
            [("recurse", String::new()), ("index", fresh_index.to_string()), ("wait", "60s".to_string())];
        let started = Instant::now();
        let answer = get(&blocked_client, "/v1/kv/", &params).await;
        (answer, started.elapsed())
    });

    let started = Instant::now();
    census(&addr, &["snapshot", "restore", &snapshot_arg]);
    let restore_time = started.elapsed();
    println!(
        "snapshot of {} keys + {SERVICES} services: {size} bytes, save {save_time:?}, restore {restore_time:?}",
        keys()
    );

    let ((woken_index, woken_body), waited) = blocked.await.expect("blocked reader");
    assert!(waited < Duration::from_secs(30), "the blocked reader waited {waited:?}");
    assert_ne!(woken_index, fresh_index, "the blocked reader must see the index move");
    assert_eq!(woken_body, kv_before, "the woken reader sees the restored KV store");

    assert_eq!(census(&addr, &["kv", "export"]), export_before, "kv export differs after restore");
    for agent in &target.agents {
        let c = agent.client();
        // A follower may still be applying the restore (a stale read answers 500 until it has
        // caught up); each server must get there.
        let stale = [("recurse", String::new()), ("stale", String::new())];
        let what = format!("{} to hold the restored KV", agent.name);
        eventually(Duration::from_secs(60), &what, || async {
            let (status, _, kv) = c.raw(reqwest::Method::GET, "/v1/kv/", &stale, None, None).await.ok()?;
            (status.is_success() && kv == kv_before).then_some(())
        })
        .await;
        assert!(catalog_answers(&c, true).await == catalog_before, "{}: catalog differs", agent.name);
    }

    // Writes after the restore index above everything restored.
    census(&addr, &["kv", "put", "after-restore", "1"]);
    let (_, body) = get(&client, "/v1/kv/after-restore", &[]).await;
    let written: serde_json::Value = serde_json::from_slice(&body).expect("json");
    let restored_top = std::str::from_utf8(&kv_before)
        .ok()
        .and_then(|s| serde_json::from_str::<Vec<serde_json::Value>>(s).ok())
        .map(|pairs| pairs.iter().filter_map(|p| p["ModifyIndex"].as_u64()).max().unwrap_or(0))
        .unwrap_or(0);
    assert!(written[0]["ModifyIndex"].as_u64().unwrap_or(0) > restored_top, "{written}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_damaged_snapshot_is_refused_and_changes_nothing() {
    let cluster = Cluster::start(1).await;
    let addr = cluster.agents[0].http_addr();
    census(&addr, &["kv", "put", "keep", "me"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("s.snap");
    census(&addr, &["snapshot", "save", &file.display().to_string()]);
    let mut bytes = std::fs::read(&file).expect("read");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;

    let client = cluster.agents[0].client();
    let (status, _, body) =
        client.raw(reqwest::Method::PUT, "/v1/snapshot", &[], Some(bytes), None).await.expect("request");
    assert_eq!(status.as_u16(), 400, "{}", String::from_utf8_lossy(&body));
    let (status, _, _) = client
        .raw(reqwest::Method::PUT, "/v1/snapshot", &[], Some(b"{}".to_vec()), None)
        .await
        .expect("request");
    assert_eq!(status.as_u16(), 400);
    assert_eq!(census(&addr, &["kv", "get", "keep"]).trim(), "me");

    // In a terminal (a pseudo-terminal from util-linux's `script`), save and restore draw a
    // progress bar on standard error; into a pipe they print only their result.
    let bar = |verb: &str| {
        let line = format!("{} snapshot {verb} {}", census_bin().display(), file.display());
        let out = Command::new("script")
            .args(["-qec", &line, "/dev/null"])
            .env("CENSUS_HTTP_ADDR", &addr)
            .output()
            .expect("script");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let saved = bar("save");
    assert!(saved.contains("Saving snapshot [") && saved.contains("100%"), "{saved:?}");
    let restored = bar("restore");
    assert!(restored.contains("Restoring snapshot [") && restored.contains("100%"), "{restored:?}");
    let piped = Command::new(census_bin())
        .args(["snapshot", "save", &file.display().to_string()])
        .env("CENSUS_HTTP_ADDR", &addr)
        .output()
        .expect("census");
    assert!(!String::from_utf8_lossy(&piped.stderr).contains('['), "no bar into a pipe");
}
