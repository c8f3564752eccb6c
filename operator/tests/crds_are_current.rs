//! The CRD YAML checked into the repository is what `census crd` generates now: CI fails when a
//! change to the resource types was not followed by regenerating the files.

use std::path::Path;

#[test]
fn checked_in_crds_match_the_types() {
    let generated = census_operator::crds_yaml().expect("CRDs serialize");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for file in ["crds/census.dev.yaml", "charts/census/crds/census.dev.yaml"] {
        let on_disk = std::fs::read_to_string(root.join(file)).unwrap_or_default();
        assert!(
            on_disk == generated,
            "{file} is stale: regenerate it with `cargo run --bin census -- crd > {file}`"
        );
    }
}
