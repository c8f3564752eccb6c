//! `census-sidecar render` with consul-template's own Go templates: seed 003's nginx.conf.ctmpl,
//! byte for byte as the seed prints it, against a real census agent holding the seed's services,
//! checked by `nginx -t`, served by a real nginx (Debian's), and following the catalog; errors that
//! name their line; the last good file kept through a refused check and an outage.
//!
//! The template listens on port 80 as written, so this test needs port 80 free on this machine.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use census_client::Client;
use census_e2e::backend::Backend;
use census_e2e::nginx::Nginx;
use census_e2e::sidecar::Sidecar;
use census_e2e::{eventually, free_port, put, single_server};

fn seed_template() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../sidecar/templates/seed-003-nginx.conf.ctmpl")
}

/// The remark the seed's author wrote into the template's first line. consul-template copies it into
/// every upstream (an nginx comment); the output the seed prints was taken without it.
const SEED_REMARK: &str = "\t\t# 循环services,其实就是通过api时候的service,$name值通过api查询到的name";

/// The output seed 003 prints for its catalog (consul at 172.20.20.3:8300; nginx registered with a
/// failing check). `CONSUL` stands for consul's address here.
const SEED_OUTPUT: &str = "upstream consul {
  zone upstream-consul 64k;
  server CONSUL max_fails=3 fail_timeout=60 weight=1;
  
}   
upstream nginx {
  zone upstream-nginx 64k;
  server 127.0.0.1:65535; # force a 502
} 

server {
  listen 80 default_server;

  location / {
    root /usr/share/nginx/html/;
    index index.html;
  }

  location /stub_status {
    stub_status;
  }

 
  location /consul {
    proxy_pass http://consul;
  }
 
  location /nginx {
    proxy_pass http://nginx;
  }

}
";

/// Registers backend `id` as an instance of `web` with a passing TTL check.
async fn register_web(client: &Client, id: &str, port: u16) {
    let check = serde_json::json!({"CheckID": format!("{id}-ttl"), "TTL": "1h"});
    let body = serde_json::json!({"ID": id, "Name": "web", "Port": port, "Check": check});
    put(client, "/v1/agent/service/register", Some(body)).await;
    put(client, &format!("/v1/agent/check/pass/{id}-ttl"), None).await;
}

async fn hits(http: &reqwest::Client, nginx: &Nginx, n: usize) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    for _ in 0..n {
        if let Ok(r) = http.get(nginx.url("/web")).send().await
            && r.status().is_success()
        {
            seen.insert(r.text().await.unwrap_or_default());
        }
    }
    seen
}

/// Stops nginx through its master (SIGTERM: the master takes its workers down) when dropped.
/// Dropping the harness's nginx kills only the master, and its orphaned workers would keep port 80.
struct StopNginx(PathBuf);

impl Drop for StopNginx {
    fn drop(&mut self) {
        let Some(pid) = std::fs::read_to_string(&self.0).ok().and_then(|p| p.trim().parse::<i32>().ok())
        else {
            return;
        };
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGTERM);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while std::net::TcpListener::bind(("0.0.0.0", 80)).is_err() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn names(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn seed_003_ctmpl_renders_the_seed_output_and_nginx_follows_the_catalog() {
    assert!(
        std::net::TcpListener::bind(("0.0.0.0", 80)).is_ok(),
        "port 80 is taken: the seed's template listens on it as written"
    );
    let (agent, _agent_dir) = single_server("render-go", &[]).await;
    let client = agent.client();
    // The seed registers nginx with an HTTP check on a port where nothing answers yet.
    let nginx_check =
        serde_json::json!({"HTTP": format!("http://127.0.0.1:{}/", free_port()), "Interval": "5s"});
    let body = serde_json::json!({"Name": "nginx", "Port": 8080, "Tags": ["web"], "Check": nginx_check});
    put(&client, "/v1/agent/service/register", Some(body)).await;

    let dir = tempfile::tempdir().expect("tempdir");
    let mut nginx = Nginx::prepare(&dir.path().join("nginx"), 80);
    let dest = nginx.conf_d().join("default.conf");
    let spec = format!("{}:{}", seed_template().display(), dest.display());
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
    let (ok, stderr) = Sidecar::run(&once.map(String::from), &[]);
    assert!(ok, "render -once failed: {stderr}");

    // Byte for byte: the seed's output (with this agent's address for consul), the seed author's
    // remark copied into each upstream as consul-template does, and the blank first line of the
    // range that the seed's printout starts after.
    let consul = format!("127.0.0.1:{}", agent.server_port);
    let rendered = std::fs::read_to_string(&dest).expect("rendered");
    assert_eq!(rendered.matches(SEED_REMARK).count(), 2, "the remark, once per service:\n{rendered}");
    let want = format!("  \n{}", SEED_OUTPUT.replace("CONSUL", &consul));
    assert_eq!(rendered.replace(SEED_REMARK, ""), want);

    // Real nginx serves it; then the catalog changes and nginx follows.
    nginx.start();
    let _stop_nginx = StopNginx(nginx.pid_file());
    let http = census_e2e::http_client();
    eventually(Duration::from_secs(10), "nginx answering /stub_status", || async {
        let r = http.get(nginx.url("/stub_status")).send().await.ok()?;
        r.status().is_success().then_some(())
    })
    .await;
    let r = http.get(nginx.url("/nginx")).send().await.expect("request");
    assert_eq!(r.status().as_u16(), 502, "nginx has no healthy instance: forced 502");

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
    let sidecar = Sidecar::spawn(&args, &[], &dir.path().join("sidecar.log"));
    let b1 = Backend::start("b1").await;
    let b2 = Backend::start("b2").await;
    register_web(&client, "b1", b1.port).await;
    register_web(&client, "b2", b2.port).await;
    eventually(Duration::from_secs(5), "b1 and b2 behind /web", || async {
        (hits(&http, &nginx, 12).await == names(&["b1", "b2"])).then_some(())
    })
    .await;
    put(&client, "/v1/agent/check/fail/b2-ttl", None).await;
    eventually(Duration::from_secs(2), "critical b2 out of rotation", || async {
        (hits(&http, &nginx, 12).await == names(&["b1"])).then_some(())
    })
    .await;
    let b3 = Backend::start("b3").await;
    register_web(&client, "b3", b3.port).await;
    put(&client, "/v1/agent/service/deregister/b1", None).await;
    eventually(Duration::from_secs(2), "b3 in, deregistered b1 out", || async {
        (hits(&http, &nginx, 12).await == names(&["b3"])).then_some(())
    })
    .await;
    let conf = std::fs::read_to_string(&dest).expect("conf");
    assert!(conf.contains(&format!("server 127.0.0.1:{} max_fails=3", b3.port)), "{conf}");
    assert!(!conf.contains(&format!(":{} ", b1.port)), "{conf}\n{}", sidecar.log());
    let health = http.get(format!("http://127.0.0.1:{status_port}/healthz")).send().await.expect("healthz");
    assert_eq!(health.status().as_u16(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn go_template_errors_name_the_file_and_line_and_keep_the_last_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join("out.conf");
    std::fs::write(&dest, "previous\n").expect("write");
    // An unknown function: refused at load, before the catalog is asked anything.
    let bad = dir.path().join("bad.ctmpl");
    std::fs::write(&bad, "upstream x {\n{{ range servise \"web\" }}\n  server {{ .Address }};\n{{ end }}}\n")
        .expect("write");
    let spec = format!("{}:{}", bad.display(), dest.display());
    let args = ["render", "-once", "-consul-addr", "127.0.0.1:1", "-template", &spec].map(String::from);
    let (ok, stderr) = Sidecar::run(&args, &[]);
    assert!(!ok, "an unknown function must fail");
    assert!(stderr.contains("bad.ctmpl line 2, column 10") && stderr.contains("servise"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&dest).expect("read"), "previous\n");

    // A function failing while rendering: named with its line; nothing written.
    let (agent, _agent_dir) = single_server("render-go-errors", &[]).await;
    let failing = dir.path().join("failing.tmpl");
    std::fs::write(&failing, "a\nworkers {{ parseInt (keyOrDefault \"nginx/workers\" \"many\") }};\n")
        .expect("write");
    let spec = format!("{}:{}", failing.display(), dest.display());
    let args = ["render", "-once", "-consul-addr", &agent.http_addr(), "-template", &spec].map(String::from);
    let (ok, stderr) = Sidecar::run(&args, &[]);
    assert!(!ok, "a failing function must fail -once");
    assert!(
        stderr.contains("failing.tmpl line 2, column 12: parseInt: invalid syntax: \"many\""),
        "{stderr}"
    );
    assert_eq!(std::fs::read_to_string(&dest).expect("read"), "previous\n");
}

/// consul-template's `key` waits for a key that does not exist: that template is not written (and
/// `/healthz` says what it waits for) while the sidecar's other templates are; once the key is
/// written, so is the template. `-once` waits for it too instead of failing.
#[tokio::test(flavor = "multi_thread")]
async fn a_missing_key_holds_back_only_its_template_until_it_exists() {
    let (agent, _agent_dir) = single_server("render-go-key-wait", &[]).await;
    let client = agent.client();
    let dir = tempfile::tempdir().expect("tempdir");
    let (waits, other) = (dir.path().join("workers.tmpl"), dir.path().join("other.tmpl"));
    std::fs::write(&waits, "workers {{ key \"nginx/workers\" }};\n").expect("write");
    std::fs::write(&other, "name {{ keyOrDefault \"nginx/name\" \"lb\" }};\n").expect("write");
    let (waits_out, other_out) = (dir.path().join("workers.conf"), dir.path().join("other.conf"));
    let port = free_port();
    let args = [
        "render".to_string(),
        "-consul-addr".into(),
        agent.http_addr(),
        "-template".into(),
        format!("{}:{}", waits.display(), waits_out.display()),
        "-template".into(),
        format!("{}:{}", other.display(), other_out.display()),
        "-status-addr".into(),
        format!("127.0.0.1:{port}"),
    ];
    let _sidecar = Sidecar::spawn(&args, &[], &dir.path().join("sidecar.log"));
    let http = census_e2e::http_client();
    eventually(Duration::from_secs(10), "the other template written", || async {
        std::fs::read_to_string(&other_out).ok().filter(|t| t == "name lb;\n")
    })
    .await;
    let (code, body) = eventually(Duration::from_secs(10), "/healthz to say what it waits for", || async {
        let (code, body) = health(&http, port).await;
        body.contains("kv.key(nginx/workers)").then_some((code, body))
    })
    .await;
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("\"waiting\""), "{body}");
    assert!(!waits_out.exists(), "a template whose key is missing is not written");

    let once_port = free_port();
    let once_args = [
        "render".to_string(),
        "-once".into(),
        "-consul-addr".into(),
        agent.http_addr(),
        "-template".into(),
        format!("{}:{}", waits.display(), dir.path().join("once.conf").display()),
        "-status-addr".into(),
        format!("127.0.0.1:{once_port}"),
    ];
    let mut once = Sidecar::spawn(&once_args, &[], &dir.path().join("once.log"));
    eventually(Duration::from_secs(10), "-once to wait for the key", || async {
        health(&http, once_port).await.1.contains("kv.key(nginx/workers)").then_some(())
    })
    .await;
    client.kv_put("nginx/workers", b"4", census_client::KvWriteOptions::default()).await.expect("put");
    eventually(Duration::from_secs(10), "the waiting template written", || async {
        std::fs::read_to_string(&waits_out).ok().filter(|t| t == "workers 4;\n")
    })
    .await;
    eventually(Duration::from_secs(10), "/healthz ok", || async {
        (health(&http, port).await.0 == 200).then_some(())
    })
    .await;
    assert_eq!(
        once.wait_exit(Duration::from_secs(10)),
        Some(true),
        "-once exits cleanly once the key exists: {}",
        once.log()
    );
    assert_eq!(std::fs::read_to_string(dir.path().join("once.conf")).expect("once"), "workers 4;\n");
}

async fn health(http: &reqwest::Client, port: u16) -> (u16, String) {
    match http.get(format!("http://127.0.0.1:{port}/healthz")).send().await {
        Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
        Err(e) => (0, e.to_string()),
    }
}

/// Validate-then-swap and the outage behaviour hold for Go templates as for handlebars ones: a
/// rendering nginx refuses keeps the last good file, and so does a catalog that went away.
#[tokio::test(flavor = "multi_thread")]
async fn go_templates_keep_the_last_good_file_on_a_failed_check_and_an_outage() {
    let (mut agent, _agent_dir) = single_server("render-go-outage", &[]).await;
    let client = agent.client();
    let backend = Backend::start("b1").await;
    register_web(&client, "b1", backend.port).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let template = dir.path().join("lb.ctmpl");
    std::fs::write(
        &template,
        "{{ range services }}{{ if ne .Name \"consul\" }}upstream {{ .Name }} {\n{{- range service .Name }}\n  server {{ .Address }}:{{ .Port }};\n{{- end }}\n}\n{{ end }}{{ end }}\
         server {\n  listen 127.0.0.1:{{ env \"NGINX_LISTEN\" }};\n  {{ keyOrDefault \"lb/extra\" \"\" }}\n  location /web { proxy_pass http://web; }\n}\n",
    )
    .expect("write");
    let dest = dir.path().join("default.conf");
    let status_port = free_port();
    let args = [
        "render".to_string(),
        "-consul-addr".into(),
        agent.http_addr(),
        "-template".into(),
        format!("{}:{}", template.display(), dest.display()),
        "-nginx-check".into(),
        "fragment".into(),
        "-status-addr".into(),
        format!("127.0.0.1:{status_port}"),
    ];
    let envs = [("NGINX_LISTEN", free_port().to_string())];
    let sidecar = Sidecar::spawn(&args, &envs, &dir.path().join("sidecar.log"));
    let http = census_e2e::http_client();
    let read = || std::fs::read_to_string(&dest).unwrap_or_default();
    eventually(Duration::from_secs(10), "the first render", || async {
        read().contains(&format!("server 127.0.0.1:{};", backend.port)).then_some(())
    })
    .await;
    let good = read();
    assert!(good.starts_with("upstream web {\n  server 127.0.0.1:"), "{good}");

    client
        .kv_put("lb/extra", b"this_is_not_a_directive on;", census_client::KvWriteOptions::default())
        .await
        .expect("put");
    let (_, body) = eventually(Duration::from_secs(10), "nginx -t refusing the new output", || async {
        let (code, body) = health(&http, status_port).await;
        (code == 503).then_some((code, body))
    })
    .await;
    assert!(body.contains("unknown directive"), "{body}\n{}", sidecar.log());
    assert_eq!(read(), good, "the last good file stays");

    agent.kill();
    let (_, body) = eventually(Duration::from_secs(15), "stale while the catalog is down", || async {
        let (code, body) = health(&http, status_port).await;
        (code == 503 && body.contains("stale")).then_some((code, body))
    })
    .await;
    assert_eq!(read(), good, "nothing written during the outage: {body}");

    agent.start();
    agent.wait_registered().await;
    client.kv_delete("lb/extra", false, None).await.expect("delete");
    eventually(Duration::from_secs(20), "healthy again after the catalog returns", || async {
        (health(&http, status_port).await.0 == 200).then_some(())
    })
    .await;
    assert_eq!(read(), good, "same catalog, same file");
}
