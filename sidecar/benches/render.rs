//! Render time with 1,000 and 10,000 instances of one service: the shipped handlebars template and
//! seed 003's consul-template template (Go text/template). `cargo bench -p census-sidecar --bench
//! render` prints median and p99 over 200 renders of each, and the median of the first render
//! after the service changed.

use std::sync::Arc;
use std::time::Instant;

use census_sidecar::render::deps::Dependency;
use census_sidecar::render::helpers::Shared;
use census_sidecar::render::template::{Language, TemplateSet};
use serde_json::json;

const TEMPLATES: [(&str, Language, &str); 2] = [
    ("handlebars", Language::Handlebars, include_str!("../templates/nginx.conf.hbs")),
    ("go", Language::Go, include_str!("../templates/seed-003-nginx.conf.ctmpl")),
];

fn main() {
    for n in [1_000usize, 10_000] {
        let shared = Arc::new(Shared::new(0));
        shared.update(&Dependency::Services, json!([{"Name": "web", "Tags": []}]));
        let instances: Vec<_> = (0..n)
            .map(|i| {
                json!({"ID": format!("web-{i}"), "Name": "web", "Tags": [], "Address": format!("10.0.{}.{}", i / 256, i % 256),
                       "Port": 8080, "Meta": {}, "Node": format!("node-{i}"), "NodeAddress": "10.0.0.1", "Status": "passing"})
            })
            .collect();
        let web = Dependency::Service { name: "web".into(), tag: None, dc: None };
        shared.update(&web, json!(instances));
        for (label, language, text) in TEMPLATES {
            let set = TemplateSet::from_text_in(language, text, shared.clone()).expect("template");
            let mut times = Vec::new();
            let mut bytes = 0;
            for _ in 0..200 {
                let start = Instant::now();
                let rendered = set.render();
                times.push(start.elapsed().as_secs_f64() * 1000.0);
                bytes = rendered.outputs[0].as_ref().map(String::len).unwrap_or(0);
            }
            times.sort_by(f64::total_cmp);
            // The first render after the service changed (Go templates convert the new list once).
            let mut after_change = Vec::new();
            for round in 0..50u16 {
                let mut changed = instances.clone();
                changed[0]["Port"] = json!(9000 + round);
                shared.update(&web, json!(changed));
                let start = Instant::now();
                set.render();
                after_change.push(start.elapsed().as_secs_f64() * 1000.0);
            }
            after_change.sort_by(f64::total_cmp);
            println!(
                "RESULT template={label} instances={n} output_bytes={bytes} render_median_ms={:.3} render_p99_ms={:.3} after_change_median_ms={:.3}",
                times[times.len() / 2],
                times[times.len() * 99 / 100],
                after_change[after_change.len() / 2]
            );
        }
    }
}
