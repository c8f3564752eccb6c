//! Screenshots of every UI page for the README: a three-server cluster holding the seed demo
//! (web behind an nginx lb, a redis, config in KV), shot in headless Chromium.
//! Usage: `ui-screenshots [DIR]` (default docs/ui).

use std::path::PathBuf;

use anyhow::{Context, Result};
use census_client::{Client, KvWriteOptions};
use census_e2e::Cluster;
use census_e2e::browser::Browser;

struct Instance {
    node: &'static str,
    address: &'static str,
    id: &'static str,
    name: &'static str,
    port: u16,
    tags: &'static [&'static str],
    status: &'static str,
    output: &'static str,
}

const DEMO: &[Instance] = &[
    Instance {
        node: "docker-host-1",
        address: "172.18.0.2",
        id: "web-1",
        name: "web",
        port: 80,
        tags: &["v1", "http"],
        status: "passing",
        output: "HTTP GET http://172.18.0.3:80/health: 200 OK Output: ok",
    },
    Instance {
        node: "docker-host-1",
        address: "172.18.0.2",
        id: "web-2",
        name: "web",
        port: 80,
        tags: &["v1", "http"],
        status: "critical",
        output: "HTTP GET http://172.18.0.4:80/health: 503 Service Unavailable Output: database unreachable",
    },
    Instance {
        node: "docker-host-2",
        address: "172.18.0.9",
        id: "web-3",
        name: "web",
        port: 80,
        tags: &["v2", "http"],
        status: "passing",
        output: "HTTP GET http://172.18.0.10:80/health: 200 OK Output: ok",
    },
    Instance {
        node: "docker-host-1",
        address: "172.18.0.2",
        id: "lb",
        name: "lb",
        port: 80,
        tags: &["nginx"],
        status: "passing",
        output: "TCP connect 172.18.0.2:80: Success",
    },
    Instance {
        node: "docker-host-2",
        address: "172.18.0.9",
        id: "redis-1",
        name: "redis",
        port: 6379,
        tags: &["cache", "primary"],
        status: "warning",
        output: "used_memory 91% of maxmemory",
    },
];

const KEYS: &[(&str, &str)] = &[
    ("config/web/replicas", "3"),
    (
        "config/web/settings.json",
        r#"{"greeting":"hello from census","timeout_ms":1500,"features":["search","dark-mode"]}"#,
    ),
    ("config/lb/upstream_max_fails", "2"),
    ("config/redis/maxmemory", "256mb"),
    ("service/web/leader", "web-1"),
    ("feature-flags/new-checkout", "false"),
];

async fn populate(api: &Client) -> Result<()> {
    for i in DEMO {
        let body = serde_json::json!({
            "Node": i.node, "Address": i.address,
            "Service": { "ID": i.id, "Service": i.name, "Port": i.port, "Tags": i.tags,
                         "Meta": { "census-sidecar": i.node } },
            "Check": { "CheckID": format!("service:{}", i.id), "Name": format!("{} health", i.name),
                       "Status": i.status, "Output": i.output, "ServiceID": i.id },
        });
        let (status, _, bytes) = api
            .raw(reqwest::Method::PUT, "/v1/catalog/register", &[], Some(serde_json::to_vec(&body)?), None)
            .await?;
        anyhow::ensure!(status.is_success(), "register {}: {}", i.id, String::from_utf8_lossy(&bytes));
    }
    for (key, value) in KEYS {
        api.kv_put(key, value.as_bytes(), KvWriteOptions::default()).await?;
    }
    Ok(())
}

async fn shoot(
    browser: &Browser,
    url: &str,
    ready_css: &str,
    dir: &std::path::Path,
    name: &str,
) -> Result<()> {
    browser.goto(url).await;
    browser.find(ready_css).await;
    save(browser, dir, name).await
}

async fn save(browser: &Browser, dir: &std::path::Path, name: &str) -> Result<()> {
    // Let the page finish drawing what arrived with its first answers (fonts, second fetches).
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    let path = dir.join(format!("{name}.png"));
    std::fs::write(&path, browser.screenshot().await).with_context(|| format!("write {}", path.display()))?;
    println!("{}", path.display());
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let dir = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "docs/ui".into()));
    std::fs::create_dir_all(&dir)?;
    let cluster = Cluster::start_with(3, &["-ui"]).await;
    for agent in &cluster.agents {
        agent.wait_registered().await;
    }
    let api = cluster.agents[0].client();
    populate(&api).await?;
    let base = format!("{}/ui/#", api.base_url());
    let browser = Browser::start(1280, 800).await;
    shoot(&browser, &format!("{base}/services"), r#"tr[data-service="web"]"#, &dir, "services").await?;
    shoot(&browser, &format!("{base}/services/web"), r#"[data-instance="web-2"]"#, &dir, "service").await?;
    shoot(&browser, &format!("{base}/nodes"), "#nodes .badge.leader", &dir, "nodes").await?;
    shoot(&browser, &format!("{base}/kv/config/"), r#"tr[data-key="config/web/"]"#, &dir, "kv-folder")
        .await?;
    browser.goto(&format!("{base}/kv/config/web/settings.json")).await;
    browser.find(r#"button[data-tab="json"]"#).await.click().await?;
    save(&browser, &dir, "kv-key").await?;
    browser.goto(&format!("{base}/kv/")).await;
    browser.find("#kv-search").await.send_keys("hello").await?;
    browser.find("#kv-results a").await;
    save(&browser, &dir, "kv-search").await?;
    shoot(&browser, &format!("{base}/cluster"), r#"#peers tr[data-status="passing"]"#, &dir, "cluster")
        .await?;
    browser.client.set_window_size(390, 844).await?;
    shoot(&browser, &format!("{base}/services"), r#"tr[data-service="web"]"#, &dir, "services-narrow")
        .await?;
    browser.close().await;
    Ok(())
}
