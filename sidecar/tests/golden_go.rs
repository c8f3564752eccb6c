//! The shipped Go templates against fixed catalog data: seed 003's nginx.conf.ctmpl passes real
//! `nginx -t`, and haproxy.cfg.ctmpl matches its golden output byte for byte.
//! `UPDATE_GOLDEN=1 cargo test -p census-sidecar --test golden_go` rewrites the golden file.

use std::path::Path;
use std::sync::Arc;

use census_sidecar::render::deps::Dependency;
use census_sidecar::render::helpers::Shared;
use census_sidecar::render::output::{Installed, Validation, install};
use census_sidecar::render::template::{Language, TemplateSet};
use serde_json::{Value, json};

fn instance(name: &str, node: &str, address: &str, port: u16, status: &str) -> Value {
    json!({"ID": format!("{name}-{node}"), "Name": name, "Tags": [], "Address": address, "Port": port,
           "ServiceMeta": {}, "Node": node, "NodeAddress": address, "Status": status})
}

/// The seed's catalog: consul, three web instances (one critical), nginx with none healthy.
fn seed_catalog() -> Arc<Shared> {
    let shared = Arc::new(Shared::new(0));
    let service = |name: &str| Dependency::Service { name: name.into(), tag: None, dc: None };
    shared.update(
        &Dependency::Services,
        json!([{"Name": "consul", "Tags": []}, {"Name": "nginx", "Tags": ["web"]}, {"Name": "web", "Tags": ["v1"]}]),
    );
    shared.update(&service("consul"), json!([instance("consul", "s1", "172.20.20.3", 8300, "passing")]));
    shared.update(&Dependency::Key("nginx/tls/cert".into()), Value::Null);
    shared.update(&Dependency::Key("nginx/tls/key".into()), Value::Null);
    shared.update(&service("nginx"), json!([instance("nginx", "n0", "172.20.20.2", 8080, "critical")]));
    shared.update(
        &service("web"),
        json!([
            instance("web", "n1", "172.17.0.5", 5000, "passing"),
            instance("web", "n2", "172.17.0.6", 5000, "critical"),
            instance("web", "n3", "172.17.0.7", 5000, "passing"),
        ]),
    );
    shared
}

fn render(text: &str) -> String {
    render_in(Language::Go, text, &seed_catalog())
}

fn render_in(language: Language, text: &str, shared: &Arc<Shared>) -> String {
    let set = TemplateSet::from_text_in(language, text, shared.clone()).expect("template compiles");
    let rendered = set.render();
    assert!(rendered.pass.missing.is_empty(), "missing data: {:?}", rendered.pass.missing);
    rendered.outputs.into_iter().next().expect("one output").expect("renders")
}

#[test]
fn seed_003_template_passes_nginx_t() {
    let out = render(include_str!("../templates/seed-003-nginx.conf.ctmpl"));
    assert!(out.contains(
        "upstream nginx {\n  zone upstream-nginx 64k;\n  server 127.0.0.1:65535; # force a 502\n}"
    ));
    let dir = tempfile::tempdir().expect("tempdir");
    let check = Validation::NginxFragment { nginx: "nginx".into() };
    let dest = dir.path().join("default.conf");
    assert_eq!(install(&dest, &out, &check).expect("nginx -t accepts the output"), Installed::Written);
}

#[test]
fn haproxy_template_matches_golden_output() {
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/haproxy.cfg");
    let out = render(include_str!("../templates/haproxy.cfg.ctmpl"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden, &out).expect("write golden");
    }
    let want = std::fs::read_to_string(&golden).expect("golden file");
    assert_eq!(out, want, "rendered output differs from {}", golden.display());
    assert!(!out.contains("172.17.0.6"), "critical instance rendered");
    assert!(out.contains("backend nginx\n  balance leastconn\n\n"), "a backend without servers answers 503");
}

/// The nginx templates of both languages are twins: the same catalog gives the same file, without
/// and with a TLS certificate named in KV.
#[test]
fn nginx_templates_of_both_languages_render_the_same_file() {
    let shared = seed_catalog();
    let go = include_str!("../templates/nginx.conf.ctmpl");
    let hbs = include_str!("../templates/nginx.conf.hbs");
    let plain = render_in(Language::Go, go, &shared);
    assert_eq!(plain, render_in(Language::Handlebars, hbs, &shared));
    assert_eq!(
        plain,
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/nginx.conf"))
            .expect("golden")
    );
    assert!(!plain.contains("ssl"), "no certificate, no TLS server");
    shared.update(&Dependency::Key("nginx/tls/cert".into()), json!("/etc/ssl/lb.pem"));
    shared.update(&Dependency::Key("nginx/tls/key".into()), json!("/etc/ssl/lb.key"));
    let tls = render_in(Language::Go, go, &shared);
    assert_eq!(tls, render_in(Language::Handlebars, hbs, &shared));
    assert!(tls.contains("  listen 443 ssl default_server;\n  ssl_certificate /etc/ssl/lb.pem;\n  ssl_certificate_key /etc/ssl/lb.key;\n\n  location / {"), "{tls}");
    assert!(tls.contains("proxy_set_header Upgrade $http_upgrade;"), "WebSocket upgrades pass");
}
