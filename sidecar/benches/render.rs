//! Render time of the shipped nginx template with 1,000 and 10,000 instances of one service.
//! `cargo bench -p census-sidecar --bench render` prints median and p99 over 200 renders.

use std::sync::Arc;
use std::time::Instant;

use census_sidecar::render::deps::Dependency;
use census_sidecar::render::helpers::Shared;
use census_sidecar::render::template::TemplateSet;
use serde_json::json;

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
        shared.update(&Dependency::Service { name: "web".into(), tag: None, dc: None }, json!(instances));
        let set =
            TemplateSet::from_text(include_str!("../templates/nginx.conf.hbs"), shared).expect("template");
        let mut times = Vec::new();
        let mut bytes = 0;
        for _ in 0..200 {
            let start = Instant::now();
            let rendered = set.render();
            times.push(start.elapsed().as_secs_f64() * 1000.0);
            bytes = rendered.outputs[0].as_ref().map(String::len).unwrap_or(0);
        }
        times.sort_by(f64::total_cmp);
        println!(
            "RESULT instances={n} output_bytes={bytes} render_median_ms={:.3} render_p99_ms={:.3}",
            times[times.len() / 2],
            times[times.len() * 99 / 100]
        );
    }
}
