//! The web UI in a real headless Chromium against real census agents.

use std::time::Duration;

use census_client::types::{AgentServiceRegistration, CheckDefinition};
use census_client::{Client, GoDuration, KvWriteOptions};
use census_e2e::browser::{Browser, UI_TIMEOUT, rgb};
use census_e2e::{Cluster, eventually, single_server};
use fantoccini::Locator;
use fantoccini::key::Key;

const CRITICAL_RED: (u8, u8, u8) = (200, 35, 44);

fn ui_url(client: &Client, route: &str) -> String {
    format!("{}/ui/#{route}", client.base_url())
}

async fn raw_kv(client: &Client, key: &str) -> Option<String> {
    let (pair, _) = client.kv_get(key, &Default::default()).await.expect("kv get");
    pair.map(|p| String::from_utf8(p.decoded_value().expect("base64")).expect("utf-8 value"))
}

async fn status_of(browser: &Browser, css: &str) -> Option<String> {
    let el = browser.client.find(Locator::Css(css)).await.ok()?;
    el.attr("data-status").await.ok().flatten()
}

#[tokio::test]
async fn a_service_registered_through_the_api_appears_live_and_turns_red_when_its_check_fails() {
    let (agent, _dir) = single_server("ui-live", &["-ui"]).await;
    let api = agent.client();
    let browser = Browser::start(1280, 900).await;
    browser.goto(&ui_url(&api, "/services")).await;
    browser.find(r#"tr[data-service="consul"]"#).await;
    browser.eval("window.censusMarker = 'same page'; return null;").await;

    let reg = AgentServiceRegistration {
        id: "web-1".into(),
        name: "web".into(),
        port: 8080,
        tags: vec!["v1".into()],
        check: Some(CheckDefinition { ttl: GoDuration(Duration::from_secs(60)), ..Default::default() }),
        ..Default::default()
    };
    api.agent_service_register(&reg).await.expect("register");
    api.agent_check_ttl("pass", "service:web-1", "all good").await.expect("pass");
    browser
        .until("web as passing", || async {
            status_of(&browser, r#"tr[data-service="web"]"#).await.as_deref() == Some("passing")
        })
        .await;

    api.agent_check_ttl("fail", "service:web-1", "disk full").await.expect("fail");
    browser
        .until("web as critical", || async {
            status_of(&browser, r#"tr[data-service="web"]"#).await.as_deref() == Some("critical")
        })
        .await;
    let badge = browser.find(r#"tr[data-service="web"] .badge.critical"#).await;
    let color = badge.css_value("color").await.expect("css color");
    assert_eq!(rgb(&color), Some(CRITICAL_RED), "critical badge color {color}");
    assert_eq!(
        browser.eval("return window.censusMarker;").await,
        serde_json::json!("same page"),
        "the page reloaded instead of updating in place"
    );

    // The instance page shows the failing check with its output, and follows it back to passing.
    browser.find(r#"tr[data-service="web"] a"#).await.click().await.expect("open web");
    let check = browser.find(r#"[data-check="service:web-1"]"#).await;
    assert_eq!(check.attr("data-status").await.expect("attr").as_deref(), Some("critical"));
    assert!(browser.text(r#"[data-check="service:web-1"] pre"#).await.contains("disk full"));
    api.agent_check_ttl("pass", "service:web-1", "recovered").await.expect("pass");
    browser
        .until("the check passing again", || async {
            status_of(&browser, r#"[data-check="service:web-1"]"#).await.as_deref() == Some("passing")
                && browser.text(r#"[data-check="service:web-1"] pre"#).await.contains("recovered")
        })
        .await;
    browser.close().await;
}

#[tokio::test]
async fn a_key_created_in_the_ui_is_readable_through_the_api_and_edits_never_overwrite_blindly() {
    let (agent, _dir) = single_server("ui-kv", &["-ui"]).await;
    let api = agent.client();
    let browser = Browser::start(1280, 900).await;
    browser.goto(&ui_url(&api, "/kv/")).await;
    browser.find("#kv-create").await.click().await.expect("create");
    browser.find("#kv-key").await.send_keys("app/settings.json").await.expect("key");
    let value = browser.find("#kv-value").await;
    value.send_keys(r#"{"replicas": }"#).await.expect("value");
    browser.find("#kv-json").await.click().await.expect("json toggle");
    browser
        .until("the JSON error", || async { browser.text("#kv-problem").await.contains("Invalid JSON") })
        .await;
    assert!(
        !browser.find("#kv-save").await.is_enabled().await.expect("enabled"),
        "invalid JSON can be saved"
    );

    value.clear().await.expect("clear");
    value.send_keys(r#"{"replicas": 3, "image": "web:1.2"}"#).await.expect("value");
    browser.until("the error to clear", || async { browser.text("#kv-problem").await.is_empty() }).await;
    browser.find("#kv-save").await.click().await.expect("save");
    browser.find("#kv-shown").await;
    assert_eq!(
        raw_kv(&api, "app/settings.json").await.as_deref(),
        Some(r#"{"replicas": 3, "image": "web:1.2"}"#)
    );
    // The JSON view pretty-prints.
    browser.find(r#"button[data-tab="json"]"#).await.click().await.expect("json tab");
    assert!(browser.text("#kv-shown").await.contains("\"replicas\": 3,\n"));

    // Someone else writes while the editor holds the old value: the UI's save is refused, not applied.
    let editor = browser.find("#kv-value").await;
    editor.clear().await.expect("clear");
    editor.send_keys(r#"{"replicas": 5}"#).await.expect("edit");
    assert!(
        api.kv_put("app/settings.json", b"{\"replicas\": 9}", KvWriteOptions::default()).await.expect("put")
    );
    browser.find("#kv-save").await.click().await.expect("save");
    browser.find("#kv-conflict").await;
    assert_eq!(raw_kv(&api, "app/settings.json").await.as_deref(), Some(r#"{"replicas": 9}"#));

    // Without a concurrent writer the edit lands.
    let editor = browser.find("#kv-value").await;
    editor.clear().await.expect("clear");
    editor.send_keys(r#"{"replicas": 7}"#).await.expect("edit");
    browser.find("#kv-save").await.click().await.expect("save");
    browser.find("#kv-saved").await;
    assert_eq!(raw_kv(&api, "app/settings.json").await.as_deref(), Some(r#"{"replicas": 7}"#));

    // Delete asks twice, then the key is gone. (It deletes the version on screen, so wait for the
    // page to show the saved one.)
    let (pair, _) = api.kv_get("app/settings.json", &Default::default()).await.expect("get");
    let index = pair.expect("key").modify_index;
    browser.find(&format!(r#"#kv-view[data-modify-index="{index}"]"#)).await;
    let delete = browser.find("#kv-delete").await;
    delete.click().await.expect("arm delete");
    assert!(raw_kv(&api, "app/settings.json").await.is_some(), "one click deleted the key");
    delete.click().await.expect("confirm delete");
    browser.find(r#"#kv-list"#).await;
    eventually(Duration::from_secs(5), "the key to be gone after delete", || async {
        raw_kv(&api, "app/settings.json").await.is_none().then_some(())
    })
    .await;
    browser.close().await;
}

#[tokio::test]
async fn search_finds_a_nested_key_by_name_and_by_value() {
    let (agent, _dir) = single_server("ui-search", &["-ui"]).await;
    let api = agent.client();
    for i in 0..50 {
        let key = format!("team/filler/key-{i:02}");
        api.kv_put(&key, format!("value {i}").as_bytes(), KvWriteOptions::default()).await.expect("put");
    }
    api.kv_put("team/a/b/c/deep-key", b"a needle in a haystack", KvWriteOptions::default())
        .await
        .expect("put");
    let browser = Browser::start(1280, 900).await;
    browser.goto(&ui_url(&api, "/kv/")).await;
    // The root shows the folder, not the nested key.
    browser.find(r#"tr[data-key="team/"]"#).await;
    assert_eq!(browser.count(r#"tr[data-key="team/a/b/c/deep-key"]"#).await, 0);

    let search = browser.find("#kv-search").await;
    search.send_keys("deep-key").await.expect("type");
    browser
        .until("one match by name", || async {
            browser.text("#kv-search-results h2").await == "1 match for “deep-key”"
        })
        .await;
    assert_eq!(browser.text("#kv-results a").await, "team/a/b/c/deep-key");

    search.clear().await.expect("clear");
    search.send_keys("HAYSTACK").await.expect("type");
    browser
        .until("one match by value", || async {
            browser.text("#kv-search-results h2").await == "1 match for “HAYSTACK”"
        })
        .await;
    let snippet = browser.text("#kv-results .snippet").await;
    assert!(snippet.contains("needle in a haystack"), "snippet {snippet:?}");
    browser.find("#kv-results a").await.click().await.expect("open result");
    browser
        .until("the key's value", || async { browser.text("#kv-shown").await == "a needle in a haystack" })
        .await;
    browser.close().await;
}

#[tokio::test]
async fn the_page_says_when_the_agent_is_unreachable_and_recovers_when_it_returns() {
    let (mut agent, _dir) = single_server("ui-down", &["-ui"]).await;
    let api = agent.client();
    let browser = Browser::start(1280, 900).await;
    browser.goto(&ui_url(&api, "/services")).await;
    browser.find(r#"tr[data-service="consul"]"#).await;
    assert!(!browser.find("#banner").await.is_displayed().await.expect("displayed"));

    agent.kill();
    browser
        .until("the unreachable banner", || async {
            let banner = browser.find("#banner").await;
            banner.is_displayed().await.unwrap_or(false)
                && banner.text().await.unwrap_or_default().contains("Cannot reach the census agent")
        })
        .await;

    agent.start();
    agent.wait_registered().await;
    browser
        .until("the banner to go away", || async {
            !browser.find("#banner").await.is_displayed().await.unwrap_or(true)
        })
        .await;
    browser.find(r#"tr[data-service="consul"]"#).await;
    browser.close().await;
}

#[tokio::test]
async fn nodes_and_cluster_pages_mark_the_raft_leader_of_a_three_server_cluster() {
    let cluster = Cluster::start_with(3, &["-ui"]).await;
    let leader = cluster.wait_for_leader(UI_TIMEOUT).await;
    let leader_name = cluster.agents[leader].name.clone();
    let follower = cluster.other_than(leader);
    let api = cluster.agents[follower].client();
    for agent in &cluster.agents {
        agent.wait_registered().await;
    }
    let browser = Browser::start(1280, 900).await;
    browser.goto(&ui_url(&api, "/nodes")).await;
    browser
        .until("three nodes with the leader marked", || async {
            browser.count("#nodes tbody tr").await == 3
                && browser
                    .text(&format!(r#"tr[data-node="{leader_name}"] .badge.leader"#))
                    .await
                    .contains("leader")
        })
        .await;
    assert_eq!(browser.count("#nodes .badge.leader").await, 1);

    browser.goto(&ui_url(&api, "/cluster")).await;
    browser
        .until("three healthy servers", || async {
            browser.count(r#"#peers tbody tr[data-status="passing"]"#).await == 3
        })
        .await;
    assert_eq!(browser.text("#cluster-leader").await, leader_name);
    let applied = browser.text(&format!(r#"tr[data-server="{leader_name}"] td:nth-child(6)"#)).await;
    assert!(applied.parse::<u64>().expect("applied index") > 0, "applied index {applied:?}");
    browser.close().await;
}

#[tokio::test]
async fn a_thousand_services_and_ten_thousand_keys_stay_paged_searchable_and_keyboard_reachable() {
    let (agent, _dir) = single_server("ui-scale", &["-ui"]).await;
    let api = agent.client();
    let registrations = futures::stream::iter(0..1000).map(|i| {
        let api = api.clone();
        async move {
            let body = serde_json::json!({
                "Node": format!("host-{:03}", i % 100), "Address": format!("10.0.{}.{}", i / 250, i % 250),
                "Service": { "ID": format!("svc-{i:04}"), "Service": format!("svc-{i:04}"), "Port": 8000 },
                "Check": { "CheckID": format!("svc-{i:04}-alive"), "Name": "alive",
                           "Status": if i % 10 == 0 { "critical" } else { "passing" }, "ServiceID": format!("svc-{i:04}") },
            });
            census_e2e::put(&api, "/v1/catalog/register", Some(body)).await;
        }
    });
    use futures::StreamExt;
    registrations.buffer_unordered(32).collect::<Vec<_>>().await;
    let puts = futures::stream::iter(0..10_000).map(|i| {
        let api = api.clone();
        async move {
            let value = format!("{{\"n\": {i}}}");
            api.kv_put(&format!("bulk/k-{i:05}"), value.as_bytes(), KvWriteOptions::default())
                .await
                .expect("put");
        }
    });
    puts.buffer_unordered(64).collect::<Vec<_>>().await;

    let browser = Browser::start(1280, 900).await;
    let started = std::time::Instant::now();
    browser.goto(&ui_url(&api, "/services")).await;
    browser
        .until("the first page", || async { browser.text("#pager .range").await == "1–100 of 1,001" })
        .await;
    let in_page = browser.eval("return performance.now();").await;
    println!(
        "services page with 1,001 services ready in {:?} ({in_page} ms after navigation start)",
        started.elapsed()
    );
    assert_eq!(browser.count("#services tbody tr").await, 100);

    // "/" reaches the search box from anywhere on the page; typing narrows to one service.
    browser.find("body").await.send_keys("/").await.expect("slash");
    let active = browser.client.active_element().await.expect("active element");
    assert_eq!(active.attr("id").await.expect("id").as_deref(), Some("service-search"));
    active.send_keys("svc-0990").await.expect("type");
    browser.until("one service", || async { browser.count("#services tbody tr").await == 1 }).await;
    // The health filter keeps only critical services (every tenth): 100 of them, on one page.
    active.clear().await.expect("clear");
    browser.find("#health-filter").await.select_by_value("critical").await.expect("filter");
    browser
        .until("the critical ones", || async {
            browser.text("#pager .range").await.is_empty()
                && browser.count(r#"#services tbody tr[data-status="critical"]"#).await == 100
        })
        .await;
    // Tab moves focus onto the next page's controls, then Enter follows a link.
    browser.find("#health-filter").await.send_keys(&Key::Tab.to_string()).await.expect("tab");
    let focused = browser.client.active_element().await.expect("active");
    assert_eq!(focused.tag_name().await.expect("tag"), "a", "Tab did not reach the first service link");
    focused.send_keys(&Key::Enter.to_string()).await.expect("enter");
    browser.find("#instances [data-instance]").await;

    let started = std::time::Instant::now();
    browser.goto(&ui_url(&api, "/kv/bulk/")).await;
    browser
        .until("the first page of keys", || async {
            browser.text("#pager .range").await == "1–100 of 10,000"
        })
        .await;
    println!("KV folder with 10,000 keys ready in {:?}", started.elapsed());
    assert_eq!(browser.count("#kv-keys tbody tr").await, 100);
    browser.find("#pager button:last-child").await.click().await.expect("next page");
    browser
        .until("the second page", || async { browser.text("#pager .range").await == "101–200 of 10,000" })
        .await;
    let started = std::time::Instant::now();
    browser.find("#kv-search").await.send_keys("\"n\": 9999}").await.expect("search");
    browser
        .until("the search result", || async { browser.text("#kv-results a").await == "bulk/k-09999" })
        .await;
    println!("search across 10,000 values answered in {:?}", started.elapsed());

    // Narrow screens: the tables stack and nothing scrolls sideways.
    browser.client.set_window_size(390, 844).await.expect("resize");
    browser.goto(&ui_url(&api, "/services")).await;
    browser.find(r#"tr[data-service="svc-0001"]"#).await;
    let overflow = browser.eval("return document.documentElement.scrollWidth - window.innerWidth;").await;
    assert!(overflow.as_i64().unwrap_or(1) <= 0, "page scrolls sideways by {overflow}px at 390px");
    let head = browser.find("#services thead").await;
    assert!(!head.is_displayed().await.expect("displayed"), "table header still shown at 390px");
    browser.close().await;
}

#[tokio::test]
async fn with_acls_a_refused_page_says_so_and_logging_in_with_a_token_shows_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let management = "5f0c7a1e-3b2d-4e6f-8a9b-0c1d2e3f4a5b";
    let config = dir.path().join("acl.json");
    let body = serde_json::json!({"acl": {"enabled": true, "default_policy": "deny",
                                          "tokens": {"initial_management": management}}});
    std::fs::write(&config, body.to_string()).expect("config");
    let mut agent = census_e2e::Agent::new(
        "ui-acl",
        dir.path().join("ui-acl"),
        vec!["-bootstrap-expect=1".into(), "-ui".into(), format!("-config-file={}", config.display())],
    );
    agent.start();
    let admin = agent.client().with_token(Some(management.to_string()));
    eventually(Duration::from_secs(20), "the management token to work", || async {
        admin.raft_configuration(false).await.ok().filter(|c| !c.servers.is_empty())
    })
    .await;
    let browser = Browser::start(1280, 900).await;
    browser.goto(&ui_url(&agent.client(), "/cluster")).await;
    browser
        .until("the page to say the request was refused", || async {
            browser.text("#denied").await.contains("Permission denied")
        })
        .await;
    assert!(browser.text("#denied").await.contains("log in with an ACL token"));

    // A wrong token is refused in the dialog, the right one logs in.
    browser.find("#login-open").await.click().await.expect("open the login dialog");
    let input = browser.find("#login-token").await;
    input.send_keys("not-a-token").await.expect("type");
    browser.find("#login-submit").await.click().await.expect("submit");
    browser
        .until("the dialog to refuse", || async {
            browser.text("#login-error").await.contains("Not logged in")
        })
        .await;
    input.clear().await.expect("clear");
    input.send_keys(management).await.expect("type");
    browser.find("#login-submit").await.click().await.expect("submit");
    browser
        .until("the header to name the token", || async {
            browser.text("#whoami").await.contains("Initial Management Token")
        })
        .await;
    browser
        .until("the cluster page to load", || async { browser.text("#cluster-leader").await == "ui-acl" })
        .await;
    assert_eq!(
        browser.eval("return document.getElementById('denied').hidden;").await,
        serde_json::json!(true)
    );

    // Logged out, the services list is what the anonymous token may read: nothing.
    browser.find("#logout").await.click().await.expect("log out");
    browser.goto(&ui_url(&agent.client(), "/services")).await;
    browser
        .until("the login button to return", || async {
            browser.count("#login-open:not([hidden])").await == 1
        })
        .await;
    assert_eq!(browser.count(r#"tr[data-service="consul"]"#).await, 0);
    browser.close().await;
}
