//! Catalog change → nginx serving it: census-sidecar render against a minimal reference pipeline
//! (one blocking query → in-process render → write + rename → SIGHUP), in the same run, rounds
//! interleaved A/B, with N upstream servers in the config.
//! Usage: `render-bench [ROUNDS]` with CENSUS_BIN and CENSUS_SIDECAR_BIN pointing at release builds.

use std::path::Path;
use std::time::{Duration, Instant};

use census_client::{Client, KvWriteOptions, QueryOptions};
use census_e2e::nginx::Nginx;
use census_e2e::sidecar::Sidecar;
use census_e2e::{eventually, free_port, single_server};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use reqwest::Method;

static PUT_AT: std::sync::Mutex<Option<Instant>> = std::sync::Mutex::new(None);

const SIDECAR_TEMPLATE: &str = "upstream big {\n  least_conn;\n{{#each (service \"big|any\")}}  server {{Address}}:{{Port}} max_fails=3 fail_timeout=60 weight=1;\n{{/each}}}\nserver {\n  listen {{env \"NGINX_LISTEN\"}};\n  location /gen { return 200 \"{{key \"gen/ours\"}}\"; }\n  location / { proxy_pass http://big; }\n}\n";

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// The reference: what a hand-written watch → render → HUP loop does, nothing more.
async fn reference_pipeline(
    client: Client,
    servers: Vec<(String, u16)>,
    nginx_port: u16,
    dest: std::path::PathBuf,
    pid: i32,
) {
    let mut index = 0;
    loop {
        let Ok((pair, meta)) =
            client.kv_get("gen/ref", &QueryOptions::blocking(index, Duration::from_secs(60))).await
        else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        if meta.last_index == index {
            continue;
        }
        index = meta.last_index;
        let woke = Instant::now();
        let marker = pair
            .and_then(|p| p.decoded_value().ok())
            .map(|v| String::from_utf8_lossy(&v).into_owned())
            .unwrap_or_default();
        let mut conf = String::with_capacity(64 * servers.len() + 256);
        conf.push_str("upstream big {\n  least_conn;\n");
        for (addr, port) in &servers {
            conf.push_str(&format!("  server {addr}:{port} max_fails=3 fail_timeout=60 weight=1;\n"));
        }
        conf.push_str(&format!(
            "}}\nserver {{\n  listen {nginx_port};\n  location /gen {{ return 200 \"{marker}\"; }}\n  location / {{ proxy_pass http://big; }}\n}}\n"
        ));
        let tmp = dest.with_extension("tmp");
        let written = std::fs::File::create(&tmp).and_then(|mut f| {
            use std::io::Write;
            f.write_all(conf.as_bytes())?;
            f.sync_all()
        });
        if written.and_then(|_| std::fs::rename(&tmp, &dest)).is_ok() {
            let _ = kill(Pid::from_raw(pid), Signal::SIGHUP);
        }
        if std::env::var_os("REF_DEBUG").is_some() {
            let since_put = PUT_AT.lock().ok().and_then(|p| *p).map(|p| woke - p);
            eprintln!("reference: woke {since_put:?} after the put; render+write+HUP {:?}", woke.elapsed());
        }
    }
}

fn nginx_pid(nginx: &Nginx) -> i32 {
    std::fs::read_to_string(nginx.pid_file()).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0)
}

/// Puts `marker` at `key` and times until nginx serves it on a fresh connection.
async fn round(client: &Client, key: &str, marker: &str, url: &str) -> f64 {
    let http = reqwest::Client::builder().pool_max_idle_per_host(0).build().expect("http");
    let start = Instant::now();
    if let Ok(mut p) = PUT_AT.lock() {
        *p = Some(start);
    }
    client.kv_put(key, marker.as_bytes(), KvWriteOptions::default()).await.expect("put");
    loop {
        if let Ok(r) = http.get(url).send().await
            && r.text().await.is_ok_and(|t| t == marker)
        {
            return start.elapsed().as_secs_f64() * 1000.0;
        }
        if start.elapsed() > Duration::from_secs(10) {
            panic!("{url} never served {marker}");
        }
    }
}

async fn start_nginx(dir: &Path, name: &str, initial: &str) -> Nginx {
    let mut nginx = Nginx::prepare(&dir.join(name), free_port());
    let conf = initial.replace("PORT", &nginx.port.to_string());
    std::fs::write(nginx.conf_d().join("gen.conf"), conf).expect("initial conf");
    nginx.start();
    let url = nginx.url("/gen");
    eventually(Duration::from_secs(10), "nginx up", || async { reqwest::get(&url).await.ok().map(drop) })
        .await;
    eventually(Duration::from_secs(10), "nginx pid file", || async { (nginx_pid(&nginx) > 0).then_some(()) })
        .await;
    nginx
}

#[tokio::main]
async fn main() {
    let rounds: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(15);
    let (agent, _agent_dir) = single_server("render-bench", &[]).await;
    let client = agent.client();
    // Kept after the run: the sidecar logs are there.
    let dir = tempfile::Builder::new().prefix("render-bench").tempdir().expect("tempdir").keep();
    eprintln!("scratch directory: {}", dir.display());
    let mut registered = 0;
    for n in [100usize, 1000] {
        while registered < n {
            let body = serde_json::json!({"Node": format!("big-{registered}"), "Address": format!("10.{}.{}.{}", registered / 62500, (registered / 250) % 250, registered % 250 + 1),
                "Service": {"ID": "big", "Service": "big", "Port": 8080}});
            let (status, _, _) = client
                .raw(
                    Method::PUT,
                    "/v1/catalog/register",
                    &[],
                    Some(serde_json::to_vec(&body).expect("json")),
                    None,
                )
                .await
                .expect("register");
            assert!(status.is_success());
            registered += 1;
        }
        let (entries, _) =
            client.health_service("big", false, &QueryOptions::default()).await.expect("instances");
        let servers: Vec<(String, u16)> =
            entries.iter().map(|e| (e.node.address.clone(), e.service.port)).collect();
        assert_eq!(servers.len(), n);

        client.kv_put("gen/ref", b"start", KvWriteOptions::default()).await.expect("put");
        client.kv_put("gen/ours", b"start", KvWriteOptions::default()).await.expect("put");
        let initial = "server { listen PORT; location /gen { return 200 \"start\"; } }\n";
        let ref_nginx = start_nginx(&dir, &format!("ref-{n}"), initial).await;
        let ours_nginx = start_nginx(&dir, &format!("ours-{n}"), initial).await;
        let reference = tokio::spawn(reference_pipeline(
            client.clone(),
            servers,
            ref_nginx.port,
            ref_nginx.conf_d().join("gen.conf"),
            nginx_pid(&ref_nginx),
        ));

        let template = dir.join(format!("bench-{n}.hbs"));
        std::fs::write(&template, SIDECAR_TEMPLATE).expect("template");
        let spec = format!("{}:{}", template.display(), ours_nginx.conf_d().join("gen.conf").display());
        let mut results = Vec::new();
        for check in [false, true] {
            let mut args: Vec<String> = [
                "render",
                "-consul-addr",
                &agent.http_addr(),
                "-template",
                &spec,
                "-status-addr",
                "off",
                "-nginx-pid",
            ]
            .map(String::from)
            .to_vec();
            args.push(ours_nginx.pid_file().display().to_string());
            if check {
                args.extend(["-nginx-check".to_string(), "fragment".to_string()]);
            }
            let sidecar = Sidecar::spawn(
                &args,
                &[("NGINX_LISTEN", ours_nginx.port.to_string())],
                &dir.join(format!("sidecar-{n}-{check}.log")),
            );
            // Warm-up: both pipelines have rendered once.
            round(&client, "gen/ours", &format!("warm-{check}"), &ours_nginx.url("/gen")).await;
            round(&client, "gen/ref", &format!("warm-{check}"), &ref_nginx.url("/gen")).await;
            let (mut ours, mut refs) = (Vec::new(), Vec::new());
            for i in 0..rounds {
                // Alternate which pipeline goes first, so neither always follows the other's reload.
                if i % 2 == 0 {
                    refs.push(
                        round(&client, "gen/ref", &format!("r{check}{i}"), &ref_nginx.url("/gen")).await,
                    );
                    ours.push(
                        round(&client, "gen/ours", &format!("o{check}{i}"), &ours_nginx.url("/gen")).await,
                    );
                } else {
                    ours.push(
                        round(&client, "gen/ours", &format!("o{check}{i}"), &ours_nginx.url("/gen")).await,
                    );
                    refs.push(
                        round(&client, "gen/ref", &format!("r{check}{i}"), &ref_nginx.url("/gen")).await,
                    );
                }
            }
            drop(sidecar);
            for v in [&mut ours, &mut refs] {
                v.sort_by(f64::total_cmp);
            }
            results.push((check, ours, refs));
        }
        reference.abort();
        for (check, ours, refs) in results {
            let (om, rm) = (percentile(&ours, 0.5), percentile(&refs, 0.5));
            println!(
                "RESULT n={n} nginx_check={check} rounds={rounds} ours_median_ms={om:.2} ours_p99_ms={:.2} ref_median_ms={rm:.2} ref_p99_ms={:.2} ratio={:.2}",
                percentile(&ours, 0.99),
                percentile(&refs, 0.99),
                om / rm
            );
        }
    }
}
