//! Any string as a query name: the parser never panics, and what it reads as a service or node
//! question round-trips through the same domains.
#![no_main]

use census_controller::dns::name::{Domains, Parsed, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(name) = std::str::from_utf8(data) else { return };
    let domains = Domains::new("consul", Some("alt.example"));
    if let Parsed::Inside { domain, .. } = parse(name, &domains) {
        assert!(domain == "consul." || domain == "alt.example.");
    }
});
