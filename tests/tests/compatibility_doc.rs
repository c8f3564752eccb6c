//! Keeps `docs/compatibility.md` true: every route census serves is listed there as `yes` or
//! `partial`, every test it names exists, and every endpoint it marks `no` answers 404.

use std::path::{Path, PathBuf};

use census_e2e::single_server;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("repository root").to_path_buf()
}

#[derive(Debug)]
struct Row {
    method: String,
    path: String,
    state: String,
    tests: String,
}

/// Rows of the endpoint tables: `| \`METHOD /v1/...\` | state | notes | tests |`.
fn rows() -> Vec<Row> {
    let text = std::fs::read_to_string(repo().join("docs/compatibility.md")).expect("docs/compatibility.md");
    text.lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let endpoint = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
            let (method, path) = endpoint.split_once(' ')?;
            if !path.starts_with("/v1/") {
                return None;
            }
            Some(Row {
                method: method.to_string(),
                path: path.to_string(),
                state: cells.get(2)?.to_string(),
                tests: cells.get(4)?.to_string(),
            })
        })
        .collect()
}

fn routes() -> Vec<(String, String)> {
    census_e2e::routes::all()
}

fn segments(path: &str) -> Vec<&str> {
    path.trim_end_matches('/').split('/').collect()
}

fn is_param(segment: &str) -> bool {
    segment.starts_with(':') || segment.starts_with('{')
}

/// A route serves a documented endpoint: the same segments, a parameter matching anything; a
/// route without the endpoint's last parameter (`/v1/kv` for `/v1/kv/:key`) also counts.
fn serves(route: &str, documented: &str) -> bool {
    let (r, d) = (segments(route), segments(documented));
    let same = |r: &[&str], d: &[&str]| {
        r.len() == d.len() && r.iter().zip(d).all(|(a, b)| a == b || is_param(a) || is_param(b))
    };
    same(&r, &d)
        || (r.len() + 1 == d.len() && d.last().is_some_and(|s| is_param(s)) && same(&r, &d[..r.len()]))
}

#[test]
fn every_route_is_documented_and_every_named_test_exists() {
    let rows = rows();
    assert!(rows.len() > 80, "the endpoint tables were not found ({} rows)", rows.len());
    for (method, route) in routes() {
        let documented = rows.iter().any(|r| {
            r.method == method && matches!(r.state.as_str(), "yes" | "partial") && serves(&route, &r.path)
        });
        assert!(
            documented,
            "{method} {route} is served but docs/compatibility.md does not list it as yes or partial"
        );
    }
    let suite = repo().join("target/py-consul/py_consul-1.8.0");
    for row in &rows {
        match row.state.as_str() {
            "yes" | "partial" => assert!(!row.tests.is_empty(), "{} {} names no test", row.method, row.path),
            "no" => {}
            other => panic!("{} {}: unknown state {other:?}", row.method, row.path),
        }
        for name in row.tests.split(';').map(str::trim).filter(|t| !t.is_empty()) {
            if let Some(file) = name.strip_prefix('`').and_then(|t| t.strip_suffix('`')) {
                assert!(
                    repo().join(file).exists(),
                    "{} {} names {file}, which does not exist",
                    row.method,
                    row.path
                );
            } else if name == "go-client" {
                assert!(repo().join("tests/tests/go_client_fixtures.rs").exists());
            } else if let Some(id) = name.strip_prefix("py-consul ") {
                let (file, test) = id.split_once("::").expect("py-consul FILE::Class::test");
                let test = test.rsplit("::").next().unwrap_or(test);
                let source =
                    std::fs::read_to_string(suite.join("tests/api").join(file)).unwrap_or_else(|e| {
                        panic!("{file} of py-consul's suite ({e}): the test command downloads it")
                    });
                assert!(source.contains(&format!("def {test}(")), "py-consul's {file} has no {test}");
            } else {
                panic!("{} {}: cannot tell what test {name:?} is", row.method, row.path);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn endpoints_marked_no_are_not_served() {
    let (agent, _dir) = single_server("compat-doc", &[]).await;
    let http = census_e2e::http_client();
    for row in rows().iter().filter(|r| r.state == "no") {
        let path: String =
            row.path.split('/').map(|s| if is_param(s) { "x" } else { s }).collect::<Vec<_>>().join("/");
        let method = reqwest::Method::from_bytes(row.method.as_bytes()).expect("method");
        let status = http
            .request(method, format!("http://{}{path}", agent.http_addr()))
            .send()
            .await
            .expect("request")
            .status();
        assert_eq!(
            status.as_u16(),
            404,
            "{} {} is marked no but census answers {status}",
            row.method,
            row.path
        );
    }
}
