//! The HTTP router's routes, read from its source (`controller/src/http/mod.rs` and the ACL
//! endpoints' `controller/src/http/acl/mod.rs`), for the tests that must cover every route.

use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("repository root").to_path_buf()
}

/// `(METHOD, path)` of every route census serves.
pub fn all() -> Vec<(String, String)> {
    let mut out = routes_in("controller/src/http/mod.rs");
    out.extend(routes_in("controller/src/http/acl/mod.rs"));
    out
}

/// `(METHOD, path)` of every route in the HTTP router's source.
fn routes_in(file: &str) -> Vec<(String, String)> {
    let source = std::fs::read_to_string(repo().join(file)).expect("router source");
    let mut out = Vec::new();
    let mut rest = source.as_str();
    while let Some(at) = rest.find(".route(") {
        rest = &rest[at + ".route(".len()..];
        let mut depth = 1;
        let end = rest
            .char_indices()
            .find(|(_, c)| {
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => {}
                }
                depth == 0
            })
            .map_or(rest.len(), |(i, _)| i);
        let call = &rest[..end];
        let Some(path) = call.split('"').nth(1).filter(|p| p.starts_with("/v1")) else { continue };
        for (word, method) in [("get(", "GET"), ("put(", "PUT"), ("post(", "POST"), ("delete(", "DELETE")] {
            if call.contains(word) {
                out.push((method.to_string(), path.to_string()));
            }
        }
    }
    out
}
