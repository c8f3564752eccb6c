//! The web UI at `/ui/`: static assets compiled into the binary (or read from `-ui-dir`), a
//! single page that reads the same HTTP API every Consul client uses.

use std::borrow::Cow;
use std::path::{Component, Path, PathBuf};

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

/// Where the UI's files come from.
#[derive(Debug, Clone)]
pub enum UiSource {
    /// The copy compiled into this binary.
    Embedded,
    /// A directory read at each request (`-ui-dir`, for working on the UI without rebuilding).
    Dir(PathBuf),
}

macro_rules! asset {
    ($path:literal) => {
        ($path, include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/ui/", $path)).as_slice())
    };
}

/// Every file of `controller/ui/`, by its path under `/ui/`.
const ASSETS: &[(&str, &[u8])] = &[
    asset!("index.html"),
    asset!("style.css"),
    asset!("js/app.js"),
    asset!("js/api.js"),
    asset!("js/dom.js"),
    asset!("js/services.js"),
    asset!("js/nodes.js"),
    asset!("js/kv.js"),
    asset!("js/cluster.js"),
    asset!("favicon.svg"),
];

fn content_type(path: &str) -> &'static str {
    match Path::new(path).extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

/// A relative path with no `..`, no root and no prefix; `None` for anything that could escape.
fn safe_relative(path: &str) -> Option<PathBuf> {
    let p = Path::new(path);
    p.components().all(|c| matches!(c, Component::Normal(_))).then(|| p.to_path_buf())
}

impl UiSource {
    /// The embedded files are served from the binary's memory as they are, without a copy.
    fn load(&self, path: &str) -> Option<Cow<'static, [u8]>> {
        match self {
            UiSource::Embedded => ASSETS.iter().find(|(p, _)| *p == path).map(|(_, b)| Cow::Borrowed(*b)),
            UiSource::Dir(dir) => std::fs::read(dir.join(safe_relative(path)?)).ok().map(Cow::Owned),
        }
    }

    /// The file at `path`; any other path under `/ui/` is a page of the app and gets `index.html`.
    fn respond(&self, path: &str) -> Response {
        let (path, body) = match self.load(path) {
            Some(body) if !path.is_empty() => (path, body),
            _ => match self.load("index.html") {
                Some(body) => ("index.html", body),
                None => return (StatusCode::NOT_FOUND, "UI files not found").into_response(),
            },
        };
        ([(header::CONTENT_TYPE, content_type(path)), (header::CACHE_CONTROL, "no-cache")], body)
            .into_response()
    }
}

async fn index(State(source): State<UiSource>) -> Response {
    source.respond("index.html")
}

async fn file(State(source): State<UiSource>, UrlPath(path): UrlPath<String>) -> Response {
    source.respond(&path)
}

/// `/` and `/ui` lead to `/ui/`; `/ui/*` serves the app.
pub fn router(source: UiSource) -> Router {
    Router::new()
        .route("/", get(|| async { Redirect::temporary("/ui/") }))
        .route("/ui", get(|| async { Redirect::temporary("/ui/") }))
        .route("/ui/", get(index))
        .route("/ui/{*path}", get(file))
        .with_state(source)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_embedded_asset_has_a_known_type_and_content() {
        for (path, body) in ASSETS {
            assert_ne!(content_type(path), "application/octet-stream", "{path}");
            assert!(!body.is_empty(), "{path} is empty");
        }
    }

    #[test]
    fn paths_that_could_leave_the_ui_dir_are_refused() {
        assert!(safe_relative("js/app.js").is_some());
        assert!(safe_relative("../etc/passwd").is_none());
        assert!(safe_relative("/etc/passwd").is_none());
        assert!(safe_relative("js/../../x").is_none());
    }

    #[test]
    fn unknown_paths_get_the_app_page() {
        let response = UiSource::Embedded.respond("dc1/services");
        assert_eq!(response.status(), StatusCode::OK);
        let ct = response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
        assert_eq!(ct, Some("text/html; charset=utf-8"));
    }
}
