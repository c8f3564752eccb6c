//! `census watch`: a handler runs with the view as JSON on stdin and CONSUL_INDEX set, once at
//! start and on every change, driven by blocking queries.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use census_client::KvWriteOptions;
use census_e2e::{census_bin, eventually, put, single_server};
use serde_json::{Value, json};

struct Watch(Child);

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts a watch whose handler appends `CONSUL_INDEX <json on one line>` to `out`.
fn watch(addr: &str, args: &[&str], out: &Path) -> Watch {
    let handler =
        format!("printf '%s ' \"$CONSUL_INDEX\" >> {0}; tr -d '\\n\\t ' >> {0}; echo >> {0}", out.display());
    let child = Command::new(census_bin())
        .arg("watch")
        .args(args)
        .arg(handler)
        .env("CENSUS_HTTP_ADDR", addr)
        .stdout(Stdio::null())
        .spawn()
        .expect("census watch");
    Watch(child)
}

/// The handler's runs so far: (CONSUL_INDEX, the JSON it read).
fn runs(out: &Path) -> Vec<(u64, Value)> {
    std::fs::read_to_string(out)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| {
            let (index, json) = line.split_once(' ')?;
            Some((index.parse().ok()?, serde_json::from_str(json).ok()?))
        })
        .collect()
}

async fn wait_runs(out: &Path, n: usize) -> Vec<(u64, Value)> {
    eventually(Duration::from_secs(15), &format!("{n} handler runs"), || async {
        let runs = runs(out);
        (runs.len() >= n).then_some(runs)
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn handlers_run_on_each_change_with_the_view_on_stdin() {
    let (agent, _data) = single_server("n1", &[]).await;
    let client = agent.client();
    let addr = agent.http_addr();
    let dir = tempfile::tempdir().expect("tempdir");

    client.kv_put("app/a", b"1", KvWriteOptions::default()).await.expect("put");
    let prefix_out = dir.path().join("prefix.log");
    let _prefix = watch(&addr, &["-type", "keyprefix", "-prefix", "app/"], &prefix_out);
    let key_out = dir.path().join("key.log");
    let _key = watch(&addr, &["-type=key", "-key=app/b"], &key_out);
    let service_out = dir.path().join("service.log");
    let _service = watch(&addr, &["-type", "service", "-service", "web", "-passingonly"], &service_out);

    let first = wait_runs(&prefix_out, 1).await;
    assert_eq!(first[0].1.as_array().map(Vec::len), Some(1), "{first:?}");
    client.kv_put("app/b", b"2", KvWriteOptions::default()).await.expect("put");
    let after = wait_runs(&prefix_out, 2).await;
    assert_eq!(after[1].1.as_array().map(Vec::len), Some(2));
    assert!(after[1].0 > after[0].0, "CONSUL_INDEX moves: {after:?}");

    // -type key: one object, not a list; absent at start, so the first run is its creation.
    let key_runs = wait_runs(&key_out, 1).await;
    assert_eq!(key_runs[0].1["Key"], "app/b");
    assert_eq!(key_runs[0].1["Value"], "Mg==");

    // An unrelated key is outside the view: one more run, for app/a only.
    client.kv_put("other", b"x", KvWriteOptions::default()).await.expect("put");
    client.kv_put("app/a", b"3", KvWriteOptions::default()).await.expect("put");
    let third = wait_runs(&prefix_out, 3).await;
    assert_eq!(third.len(), 3, "{third:?}");

    // -passingonly: runs with [] first, then with the instance once its TTL check passes.
    wait_runs(&service_out, 1).await;
    put(
        &client,
        "/v1/agent/service/register",
        Some(json!({"Name": "web", "Port": 80, "Check": {"TTL": "30s"}})),
    )
    .await;
    put(&client, "/v1/agent/check/pass/service:web", None).await;
    let web = wait_runs(&service_out, 2).await;
    assert_eq!(web[0].1, json!([]));
    assert_eq!(web.last().map(|r| r.1[0]["Service"]["Service"].clone()), Some(json!("web")));
}

#[tokio::test(flavor = "multi_thread")]
async fn event_watch_runs_on_each_fired_event_of_its_name() {
    let (agent, _data) = single_server("n1", &[]).await;
    let addr = agent.http_addr();
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("event.log");
    let _watch = watch(&addr, &["-type", "event", "-name", "deploy"], &out);
    wait_runs(&out, 1).await;
    let fire = |name: &str, payload: &str| {
        let out = Command::new(census_bin())
            .args(["event", "-name", name, "-http-addr", &addr, payload])
            .output()
            .expect("census event");
        assert!(String::from_utf8_lossy(&out.stdout).starts_with("Event ID: "), "{out:?}");
    };
    fire("other", "ignored");
    fire("deploy", "v2");
    let runs = wait_runs(&out, 2).await;
    let events = runs[1].1.as_array().cloned().unwrap_or_default();
    assert_eq!(events.len(), 1, "only events named deploy: {runs:?}");
    assert_eq!(events[0]["Name"], "deploy");
    assert_eq!(events[0]["Payload"], "djI=", "base64 of v2");
}
