//! Any bytes as a DNS request, over UDP and TCP: the handler never panics, and every reply it
//! sends decodes and fits the transport.
#![no_main]

use std::sync::{Arc, OnceLock};

use census_controller::catalog::{Catalog, Command, NodeSpec, Registration, ServiceSpec};
use census_controller::dns::{DnsConfig, Outcome, Responder, Transport};
use libfuzzer_sys::fuzz_target;

fn responder() -> &'static Responder {
    static R: OnceLock<Responder> = OnceLock::new();
    R.get_or_init(|| {
        let catalog = Arc::new(Catalog::new());
        for i in 0..40u64 {
            let node = NodeSpec {
                name: format!("n{i}"),
                address: format!("10.0.0.{}", i + 1),
                meta: [("rack".to_string(), format!("r{i}"))].into(),
                ..Default::default()
            };
            let service = ServiceSpec {
                id: "web".into(),
                name: "web".into(),
                tags: vec!["v1".into()],
                port: 80,
                address: if i % 3 == 0 { format!("fd00::{i}") } else { String::new() },
                ..Default::default()
            };
            let reg = Registration { node, service: Some(service), ..Default::default() };
            catalog.apply(i + 1, &Command::Register(reg));
        }
        let mut config = DnsConfig::new("dc1", "n0");
        let _ = config.add_recursors(&["127.0.0.1:5399".to_string()]);
        Responder::new(Arc::new(config), catalog)
    })
}

fuzz_target!(|data: &[u8]| {
    for transport in [Transport::Udp, Transport::Tcp] {
        if let Outcome::Reply(bytes) = responder().respond(data, transport) {
            assert!(bytes.len() <= 65535);
            if transport == Transport::Udp {
                assert!(bytes.len() <= 4096);
            }
        }
    }
});
