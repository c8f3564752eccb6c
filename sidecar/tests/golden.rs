//! The shipped nginx template against fixed catalog data: byte-for-byte golden output, and real
//! `nginx -t` accepts it. `UPDATE_GOLDEN=1 cargo test -p census-sidecar --test golden` rewrites it.

use std::path::Path;
use std::sync::Arc;

use census_sidecar::render::deps::Dependency;
use census_sidecar::render::helpers::Shared;
use census_sidecar::render::output::{Installed, Validation, install};
use census_sidecar::render::template::TemplateSet;
use serde_json::{Value, json};

const TEMPLATE: &str = include_str!("../templates/nginx.conf.hbs");

fn service(name: &str) -> Dependency {
    Dependency::Service { name: name.into(), tag: None, dc: None }
}

fn instance(name: &str, node: &str, address: &str, port: u16, status: &str) -> Value {
    json!({"ID": format!("{name}-{node}"), "Name": name, "Tags": [], "Address": address, "Port": port,
           "Meta": {}, "Node": node, "NodeAddress": address, "Status": status})
}

/// The seed's catalog: consul itself, three web instances (one critical), nginx with none.
fn seed_catalog() -> Arc<Shared> {
    let shared = Arc::new(Shared::new(0));
    shared.update(
        &Dependency::Services,
        json!([{"Name": "consul", "Tags": []}, {"Name": "nginx", "Tags": []}, {"Name": "web", "Tags": ["v1"]}]),
    );
    shared.update(&service("consul"), json!([instance("consul", "s1", "172.20.20.3", 8300, "passing")]));
    shared.update(&service("nginx"), json!([]));
    // No TLS certificate in KV: the template renders the plain server only.
    shared.update(&Dependency::Key("nginx/tls/cert".into()), Value::Null);
    shared.update(&Dependency::Key("nginx/tls/key".into()), Value::Null);
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

fn render() -> String {
    let set = TemplateSet::from_text(TEMPLATE, seed_catalog()).expect("template compiles");
    let rendered = set.render();
    assert!(rendered.pass.missing.is_empty(), "missing data: {:?}", rendered.pass.missing);
    rendered.outputs.into_iter().next().expect("one output").expect("renders")
}

#[test]
fn shipped_nginx_template_matches_golden_output() {
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/nginx.conf");
    let out = render();
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden, &out).expect("write golden");
    }
    let want = std::fs::read_to_string(&golden).expect("golden file");
    assert_eq!(out, want, "rendered output differs from {}", golden.display());
    assert!(out.contains("server 127.0.0.1:65535; # force a 502"), "nginx has no instance: 502 fallback");
    assert!(!out.contains("172.17.0.6"), "critical instance rendered");
}

#[test]
fn shipped_nginx_template_passes_nginx_t() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join("default.conf");
    let check = Validation::NginxFragment { nginx: "nginx".into() };
    assert_eq!(install(&dest, &render(), &check).expect("nginx -t accepts the output"), Installed::Written);
}

/// The helper examples of the README, rendered against fixed data.
#[test]
fn readme_helper_examples_render() {
    let shared = seed_catalog();
    shared.update(
        &Dependency::Service { name: "web".into(), tag: Some("rails".into()), dc: Some("dc1".into()) },
        json!([instance("web", "n1", "172.17.0.5", 5000, "passing")]),
    );
    shared.update(&Dependency::Key("nginx/worker_connections".into()), json!("512"));
    shared.update(&Dependency::Key("nginx/listen".into()), Value::Null);
    let tree = json!([{"Key": "app/config/a", "Value": "1"}, {"Key": "app/config/sub/b", "Value": "2"}]);
    shared.update(&Dependency::Tree("app/config".into()), tree.clone());
    shared.update(&Dependency::Tree("app".into()), tree);
    shared.update(
        &Dependency::Node("n1".into()),
        json!({"Node": {"Node": "n1", "Address": "10.0.0.1"}, "Services": []}),
    );
    shared.update(&Dependency::Nodes, json!([{"Node": "n1", "Address": "10.0.0.1"}]));
    let mut with_tags = instance("web", "n1", "172.17.0.5", 5000, "passing");
    with_tags["Tags"] = json!(["rails", "v1"]);
    shared.update(&service("web"), json!([with_tags]));
    let examples = [
        (r#"{{#each (service "web")}}{{Address}}:{{Port}}{{/each}}"#, "172.17.0.5:5000"),
        (r#"{{#each (service "rails.web@dc1")}}{{Node}}{{/each}}"#, "n1"),
        (r#"{{len (service "web|any")}}"#, "1"),
        (r#"{{key "nginx/worker_connections"}}"#, "512"),
        (r#"{{keyOrDefault "nginx/listen" "80"}}"#, "80"),
        (r#"{{#each (ls "app/config")}}{{Key}}={{Value}}{{/each}}"#, "a=1"),
        (r#"{{#each (tree "app")}}{{Key}} {{/each}}"#, "config/a config/sub/b "),
        (r#"{{#with (node "n1")}}{{Node.Address}}{{/with}}"#, "10.0.0.1"),
        (r#"{{#each (nodes)}}{{Node}} {{Address}}{{/each}}"#, "n1 10.0.0.1"),
        (r#"{{#each (byTag (service "web"))}}{{@key}}: {{len this}} {{/each}}"#, "rails: 1 v1: 1 "),
        (r#"{{envOrDefault "CENSUS_SURELY_UNSET" "80"}}"#, "80"),
        (r#"{{toJSON (keyOrDefault "nginx/worker_connections" "")}}"#, "\"512\""),
    ];
    for (template, want) in examples {
        let set = TemplateSet::from_text(template, shared.clone()).expect(template);
        let rendered = set.render();
        assert!(rendered.pass.missing.is_empty(), "{template}: missing {:?}", rendered.pass.missing);
        let out = rendered.outputs.into_iter().next().expect("output");
        assert_eq!(out.as_deref(), Ok(want), "{template}");
    }
    // A missing key holds the template back (as consul-template waits), so nothing half-rendered
    // is written, and says which key.
    let set = TemplateSet::from_text(r#"{{key "nginx/listen"}}"#, shared.clone()).expect("compiles");
    let rendered = set.render();
    assert!(!rendered.ready(0), "a template whose key is missing is not ready");
    assert!(
        rendered.waiting[0].iter().any(|d| d.to_string() == "kv.key(nginx/listen)"),
        "{:?}",
        rendered.waiting
    );
}

/// `-min-instances`: a service with fewer healthy instances refuses the whole render.
#[test]
fn min_instances_guard_refuses_to_render_a_thin_service() {
    let shared = Arc::new(Shared::new(3));
    shared.update(
        &service("web"),
        json!([
            instance("web", "n1", "10.0.0.1", 80, "passing"),
            instance("web", "n2", "10.0.0.2", 80, "critical")
        ]),
    );
    let set = TemplateSet::from_text(r#"{{#each (service "web")}}{{Address}} {{/each}}"#, shared.clone())
        .expect("compiles");
    let err = set.render().outputs.into_iter().next().expect("output").expect_err("guarded");
    assert!(err.contains("fewer than the minimum of 3"), "{err}");
    let any = TemplateSet::from_text(r#"{{len (service "web|any")}}"#, shared).expect("compiles");
    assert!(any.render().outputs[0].is_err(), "2 instances of any status are still fewer than 3");
}
