//! Any request to the HTTP API: method, path, query and body from the fuzzer, answered by the
//! real router over an in-memory cluster (`census_controller::http::in_memory`). Every route's
//! decoders (query parameters, `?filter=` expressions, JSON bodies as Go's decoder reads them,
//! raw KV values, txn operations) see the input; nothing may panic, and every answer has a status
//! a Consul client understands. Blocking queries are cut short (the fuzzer's time is not theirs).
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use census_controller::http::{in_memory, router};
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;

const METHODS: [&str; 5] = ["GET", "PUT", "POST", "DELETE", "HEAD"];

/// One runtime and one router (over one in-memory agent) for every input.
fn runtime() -> &'static (tokio::runtime::Runtime, Router) {
    static RT: OnceLock<(tokio::runtime::Runtime, Router)> = OnceLock::new();
    RT.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let state = rt.block_on(in_memory::state()).expect("in-memory agent");
        (rt, router(state, None))
    })
}

fuzz_target!(|data: &[u8]| {
    // One byte picks the method; the path and query run to the first newline; the rest is the body.
    let Some((&m, rest)) = data.split_first() else { return };
    let split = rest.iter().position(|b| *b == b'\n').unwrap_or(rest.len());
    let Ok(target) = std::str::from_utf8(&rest[..split]) else { return };
    let body = rest.get(split + 1..).unwrap_or_default().to_vec();
    let uri = format!("/v1/{}", target.trim_start_matches('/'));
    let method = METHODS[usize::from(m) % METHODS.len()];
    let Ok(request) = Request::builder().method(method).uri(uri.as_str()).body(Body::from(body)) else { return };
    let (rt, router) = runtime();
    rt.block_on(async {
        let answer = router.clone().oneshot(request);
        if let Ok(Ok(response)) = tokio::time::timeout(Duration::from_millis(20), answer).await {
            let status = response.status().as_u16();
            assert!((200..600).contains(&status), "{method} {uri}: status {status}");
            let _ = tokio::time::timeout(Duration::from_millis(20), axum::body::to_bytes(response.into_body(), 1 << 24)).await;
        }
    });
});
