//! `census-sidecar render` with a real census agent and a real nginx (Debian's) balancing real
//! HTTP backends, as in the seeds: the catalog changes, nginx follows.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use census_client::{Client, KvWriteOptions};
use census_e2e::backend::Backend;
use census_e2e::nginx::Nginx;
use census_e2e::sidecar::Sidecar;
use census_e2e::{Agent, eventually, free_port, put, single_server};

fn shipped_template() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../sidecar/templates/nginx.conf.hbs")
}

/// Registers backend `id` as an instance of `web` with a TTL check, and passes the check.
async fn register_web(client: &Client, id: &str, port: u16) {
    let check = serde_json::json!({"CheckID": format!("{id}-ttl"), "TTL": "1h"});
    put(
        client,
        "/v1/agent/service/register",
        Some(serde_json::json!({"ID": id, "Name": "web", "Port": port, "Check": check})),
    )
    .await;
    put(client, &format!("/v1/agent/check/pass/{id}-ttl"), None).await;
}

/// A census agent, three backends, nginx, and a running render sidecar in front of them.
struct Lb {
    agent: Agent,
    _agent_dir: tempfile::TempDir,
    dir: tempfile::TempDir,
    nginx: Nginx,
    sidecar: Option<Sidecar>,
    status_port: u16,
    http: reqwest::Client,
    _backends: Vec<Backend>,
}

impl Lb {
    async fn start(name: &str, template: Option<&Path>) -> Lb {
        let (agent, agent_dir) = single_server(name, &[]).await;
        let client = agent.client();
        let mut backends = Vec::new();
        for id in ["b1", "b2", "b3"] {
            let backend = Backend::start(id).await;
            register_web(&client, id, backend.port).await;
            backends.push(backend);
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let mut nginx = Nginx::prepare(&dir.path().join("nginx"), free_port());
        let template = template.map(Path::to_path_buf).unwrap_or_else(shipped_template);
        let spec = format!("{}:{}", template.display(), nginx.conf_d().join("default.conf").display());
        let envs = [("NGINX_LISTEN", nginx.port.to_string())];
        let once = [
            "render",
            "-once",
            "-consul-addr",
            &agent.http_addr(),
            "-template",
            &spec,
            "-nginx-check",
            "fragment",
        ];
        let (ok, stderr) = Sidecar::run(&once.map(String::from), &envs);
        assert!(ok, "render -once failed: {stderr}");
        nginx.start();
        let http = census_e2e::http_client();
        eventually(Duration::from_secs(10), "nginx serving /web", || async {
            let r = http.get(nginx.url("/web")).send().await.ok()?;
            r.status().is_success().then_some(())
        })
        .await;
        let status_port = free_port();
        let args = [
            "render".to_string(),
            "-consul-addr".into(),
            agent.http_addr(),
            "-template".into(),
            spec,
            "-nginx-check".into(),
            "fragment".into(),
            "-nginx-pid".into(),
            nginx.pid_file().display().to_string(),
            "-status-addr".into(),
            format!("127.0.0.1:{status_port}"),
        ];
        let sidecar = Sidecar::spawn(&args, &envs, &dir.path().join("sidecar.log"));
        let lb = Lb {
            agent,
            _agent_dir: agent_dir,
            dir,
            nginx,
            sidecar: Some(sidecar),
            status_port,
            http,
            _backends: backends,
        };
        eventually(Duration::from_secs(10), "the sidecar healthy", || async {
            (lb.health().await.0 == 200).then_some(())
        })
        .await;
        lb
    }

    /// The backends that answered `n` requests through nginx.
    async fn hits(&self, n: usize) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        for _ in 0..n {
            if let Ok(r) = self.http.get(self.nginx.url("/web")).send().await
                && r.status().is_success()
            {
                seen.insert(r.text().await.unwrap_or_default());
            }
        }
        seen
    }

    async fn health(&self) -> (u16, String) {
        let url = format!("http://127.0.0.1:{}/healthz", self.status_port);
        match self.http.get(url).send().await {
            Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
            Err(e) => (0, e.to_string()),
        }
    }

    async fn metric(&self, name: &str) -> u64 {
        let url = format!("http://127.0.0.1:{}/metrics", self.status_port);
        let text = self.http.get(url).send().await.expect("metrics").text().await.expect("body");
        text.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse::<f64>().ok()))
            .map_or(0, |v| v as u64)
    }

    fn conf(&self) -> String {
        std::fs::read_to_string(self.nginx.conf_d().join("default.conf")).expect("rendered conf")
    }

    fn sidecar_log(&self) -> String {
        self.sidecar.as_ref().map(Sidecar::log).unwrap_or_default()
    }
}

impl Drop for Lb {
    /// Stops nginx through its master (SIGTERM), which takes its workers down; the harness's
    /// kill of the master alone would leave the workers running, holding their port.
    fn drop(&mut self) {
        let pid_file = self.nginx.pid_file();
        let Some(pid) = std::fs::read_to_string(&pid_file).ok().and_then(|p| p.trim().parse::<i32>().ok())
        else {
            return;
        };
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        // The master removes its pid file once its workers are gone.
        while pid_file.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn names(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn nginx_follows_health_and_registrations_within_a_second() {
    let lb = Lb::start("render-rotation", None).await;
    let client = lb.agent.client();
    assert_eq!(lb.hits(30).await, names(&["b1", "b2", "b3"]), "all three in rotation");

    put(&client, "/v1/agent/check/fail/b2-ttl", None).await;
    let start = Instant::now();
    eventually(Duration::from_secs(1), "b2 out of rotation", || async {
        (!lb.hits(12).await.contains("b2")).then_some(())
    })
    .await;
    println!("critical → out of nginx rotation after {:?}", start.elapsed());
    assert_eq!(lb.hits(30).await, names(&["b1", "b3"]));

    put(&client, "/v1/agent/check/pass/b2-ttl", None).await;
    eventually(Duration::from_secs(1), "b2 back in rotation", || async {
        (lb.hits(12).await.contains("b2")).then_some(())
    })
    .await;

    put(&client, "/v1/agent/service/deregister/b3", None).await;
    eventually(Duration::from_secs(1), "b3 out of rotation", || async {
        (!lb.hits(12).await.contains("b3")).then_some(())
    })
    .await;
    assert_eq!(lb.hits(30).await, names(&["b1", "b2"]), "{}", lb.sidecar_log());
}

#[derive(Default)]
struct LoadStats {
    ok: AtomicU64,
    bad_status: AtomicU64,
    /// Requests whose connection closed before a response and that succeeded when retried once,
    /// as HTTP clients do for idempotent requests (RFC 9110 §9.2.2).
    retried: AtomicU64,
    failed: AtomicU64,
}

#[tokio::test(flavor = "multi_thread")]
async fn fifty_reloads_under_keep_alive_load_fail_no_request() {
    let lb = Lb::start("render-load", None).await;
    let client = lb.agent.client();
    let extra = Backend::start("b4").await;
    let stats = Arc::new(LoadStats::default());
    let stop = Arc::new(AtomicBool::new(false));
    let mut load = Vec::new();
    for _ in 0..8 {
        let (stats, stop, url) = (stats.clone(), stop.clone(), lb.nginx.url("/web"));
        load.push(tokio::spawn(async move {
            let http = census_e2e::http_client();
            while !stop.load(Ordering::Relaxed) {
                let mut result = http.get(&url).send().await;
                if result.is_err() {
                    result = http.get(&url).send().await;
                    if result.is_ok() {
                        stats.retried.fetch_add(1, Ordering::Relaxed);
                    }
                }
                match result {
                    Ok(r) if r.status().is_success() => stats.ok.fetch_add(1, Ordering::Relaxed),
                    Ok(_) => stats.bad_status.fetch_add(1, Ordering::Relaxed),
                    Err(_) => stats.failed.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    let reloads_before = lb.metric("census_render_reloads_total").await;
    for change in 0..50u64 {
        if change % 2 == 0 {
            register_web(&client, "b4", extra.port).await;
        } else {
            put(&client, "/v1/agent/service/deregister/b4", None).await;
        }
        // Each change is one render and one reload before the next one starts.
        eventually(Duration::from_secs(10), "the reload of this change", || async {
            (lb.metric("census_render_reloads_total").await > reloads_before + change).then_some(())
        })
        .await;
    }
    stop.store(true, Ordering::Relaxed);
    for task in load {
        task.await.expect("load task");
    }
    let (ok, bad, retried, failed) = (
        stats.ok.load(Ordering::Relaxed),
        stats.bad_status.load(Ordering::Relaxed),
        stats.retried.load(Ordering::Relaxed),
        stats.failed.load(Ordering::Relaxed),
    );
    println!(
        "50 reloads under load: {ok} ok, {bad} non-2xx, {retried} retried after a closed keep-alive connection, {failed} failed"
    );
    assert!(ok > 500, "the load ran ({ok} requests)");
    assert_eq!((bad, failed), (0, 0), "requests failed across reloads; {}", lb.nginx.error_log());
    assert_eq!(lb.metric("census_render_reloads_total").await, reloads_before + 50);
}

#[tokio::test(flavor = "multi_thread")]
async fn broken_templates_keep_the_last_good_config() {
    // A syntax error: -once fails naming the line, the destination is untouched.
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.hbs");
    std::fs::write(&bad, "upstream x {\n{{#each (service \"web\")}}\n  server {{Address}};\n")
        .expect("write");
    let dest = dir.path().join("out.conf");
    std::fs::write(&dest, "previous\n").expect("write");
    let spec = format!("{}:{}", bad.display(), dest.display());
    let args = ["render", "-once", "-consul-addr", "127.0.0.1:1", "-template", &spec].map(String::from);
    let (ok, stderr) = Sidecar::run(&args, &[]);
    assert!(!ok, "a broken template must fail");
    assert!(stderr.contains("line"), "error names the template line: {stderr}");
    assert_eq!(std::fs::read_to_string(&dest).expect("read"), "previous\n");

    // A template that renders an invalid nginx config: nginx -t refuses it, nginx keeps serving.
    let template = dir.path().join("lb.hbs");
    let shipped = std::fs::read_to_string(shipped_template()).expect("shipped template");
    let with_extra = shipped.replacen(
        "  location /stub_status {",
        "  {{keyOrDefault \"lb/extra\" \"\"}}\n  location /stub_status {",
        1,
    );
    std::fs::write(&template, with_extra).expect("write");
    let lb = Lb::start("render-broken", Some(&template)).await;
    let good = lb.conf();
    let client = lb.agent.client();
    client.kv_put("lb/extra", b"this_is_not_a_directive on;", KvWriteOptions::default()).await.expect("put");
    let (code, body) = eventually(Duration::from_secs(5), "the check failure on /healthz", || async {
        let (code, body) = lb.health().await;
        (code == 503).then_some((code, body))
    })
    .await;
    assert!(body.contains("unknown directive"), "{code} {body}");
    assert_eq!(lb.conf(), good, "the last good config stays in place");
    assert!(lb.metric("census_render_check_failures_total").await >= 1);
    let leftovers: Vec<String> = std::fs::read_dir(lb.nginx.conf_d())
        .expect("ls")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    assert_eq!(leftovers, ["default.conf"], "nothing half-written");
    assert_eq!(lb.hits(10).await.len(), 3, "nginx still serves");

    client.kv_delete("lb/extra", false, None).await.expect("delete");
    eventually(Duration::from_secs(5), "healthy again", || async {
        (lb.health().await.0 == 200).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn catalog_down_for_30s_nginx_keeps_serving_and_health_says_stale() {
    let mut lb = Lb::start("render-outage", None).await;
    let before = lb.conf();
    lb.agent.kill();
    let down = Instant::now();
    let mut stale_seen = false;
    let mut served = 0;
    while down.elapsed() < Duration::from_secs(30) {
        assert_eq!(lb.hits(1).await.len(), 1, "nginx stopped serving {:?} into the outage", down.elapsed());
        served += 1;
        let (code, body) = lb.health().await;
        if code == 503 && body.contains("stale") {
            stale_seen = true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(stale_seen, "/healthz never reported stale during the outage");
    assert_eq!(lb.conf(), before, "the config was not touched while the catalog was down");
    println!("catalog down 30 s: nginx answered {served} probes");

    lb.agent.start();
    lb.agent.wait_registered().await;
    eventually(Duration::from_secs(20), "healthy after the catalog returns", || async {
        (lb.health().await.0 == 200).then_some(())
    })
    .await;
    let extra = Backend::start("b4").await;
    register_web(&lb.agent.client(), "b4", extra.port).await;
    eventually(Duration::from_secs(5), "a new instance in rotation", || async {
        lb.hits(12).await.contains("b4").then_some(())
    })
    .await;
    drop(lb.sidecar.take());
    let _ = lb.dir.path();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_burst_of_100_changes_inside_the_wait_window_is_one_reload() {
    let (agent, _agent_dir) = single_server("render-burst", &[]).await;
    let client = agent.client();
    let dir = tempfile::tempdir().expect("tempdir");
    let template = dir.path().join("burst.hbs");
    std::fs::write(&template, "n={{keyOrDefault \"burst/n\" \"0\"}}\n").expect("write");
    let (out, count) = (dir.path().join("out.txt"), dir.path().join("reloads.log"));
    let spec = format!("{}:{}:echo reload >> {}", template.display(), out.display(), count.display());
    let status_port = free_port();
    let args = [
        "render",
        "-consul-addr",
        &agent.http_addr(),
        "-template",
        &spec,
        "-wait",
        "2s:20s",
        "-status-addr",
        &format!("127.0.0.1:{status_port}"),
    ]
    .map(String::from);
    let _sidecar = Sidecar::spawn(&args, &[], &dir.path().join("sidecar.log"));
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    // The command runs after the file is written: wait for both.
    eventually(Duration::from_secs(10), "the first render and its command", || async {
        (read(&out) == "n=0\n" && read(&count).lines().count() == 1).then_some(())
    })
    .await;
    for n in 1..=100 {
        client.kv_put("burst/n", n.to_string().as_bytes(), KvWriteOptions::default()).await.expect("put");
    }
    eventually(Duration::from_secs(30), "the burst rendered", || async {
        (read(&out) == "n=100\n").then_some(())
    })
    .await;
    // The reload command runs just after the file is swapped in: wait for it, then count.
    eventually(Duration::from_secs(10), "the reload after the burst", || async {
        (read(&count).lines().count() >= 2).then_some(())
    })
    .await;
    assert_eq!(read(&count).lines().count(), 2, "one reload for the whole burst");
}
