//! Request → response tests of the DNS handler against an in-memory catalog.

use std::sync::Arc;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};

use super::config::DnsConfig;
use super::handler::{Outcome, Responder, Transport};
use crate::catalog::{Catalog, Command, NodeSpec, Registration, ServiceSpec};

fn catalog_with_web(instances: usize) -> Arc<Catalog> {
    let catalog = Arc::new(Catalog::new());
    for i in 0..instances {
        let node = NodeSpec {
            name: format!("node-{i}"),
            address: format!("10.0.{}.{}", i / 250, i % 250 + 1),
            ..Default::default()
        };
        let service = ServiceSpec { id: "web".into(), name: "web".into(), port: 80, ..Default::default() };
        let reg = Registration { node, service: Some(service), ..Default::default() };
        catalog.apply(i as u64 + 1, &Command::Register(reg));
    }
    catalog
}

fn responder(catalog: Arc<Catalog>, recursors: &[&str]) -> Responder {
    let mut config = DnsConfig::new("dc1", "node-0");
    let recursors: Vec<String> = recursors.iter().map(|r| r.to_string()).collect();
    config.add_recursors(&recursors).expect("recursors");
    Responder::new(Arc::new(config), catalog)
}

fn request(name: &str, qtype: RecordType, edns: Option<u16>) -> Vec<u8> {
    let mut m = Message::new();
    m.set_id(4242)
        .set_message_type(MessageType::Query)
        .set_op_code(OpCode::Query)
        .set_recursion_desired(true);
    m.add_query(Query::query(Name::from_ascii(name).expect("name"), qtype));
    if let Some(size) = edns {
        let mut e = Edns::new();
        e.set_max_payload(size);
        m.set_edns(e);
    }
    m.to_vec().expect("encode")
}

fn answer(r: &Responder, packet: &[u8], transport: Transport) -> Message {
    match r.respond(packet, transport) {
        Outcome::Reply(bytes) => Message::from_vec(&bytes).expect("decodable response"),
        other => panic!("expected a reply, got {other:?}"),
    }
}

#[test]
fn large_answers_set_tc_over_udp_and_come_whole_over_tcp() {
    let r = responder(catalog_with_web(60), &[]);
    let udp = answer(&r, &request("web.service.consul.", RecordType::A, None), Transport::Udp);
    assert!(udp.truncated(), "60 A records do not fit in 512 bytes");
    assert!(!udp.answers().is_empty() && udp.answers().len() < 60);
    assert_eq!(udp.id(), 4242);
    let tcp = answer(&r, &request("web.service.consul.", RecordType::A, None), Transport::Tcp);
    assert!(!tcp.truncated());
    assert_eq!(tcp.answers().len(), 60);
    let edns = answer(&r, &request("web.service.consul.", RecordType::A, Some(4096)), Transport::Udp);
    assert!(!edns.truncated(), "an EDNS buffer of 4096 holds 60 A records");
    assert_eq!(edns.answers().len(), 60);
    assert_eq!(edns.extensions().as_ref().map(|e| e.max_payload()), Some(4096));
}

#[test]
fn answers_are_shuffled_per_query() {
    let r = responder(catalog_with_web(10), &[]);
    let packet = request("web.service.consul.", RecordType::A, None);
    let orders: std::collections::BTreeSet<Vec<String>> = (0..20)
        .map(|_| answer(&r, &packet, Transport::Udp).answers().iter().map(|a| a.data().to_string()).collect())
        .collect();
    assert!(orders.len() > 1, "20 queries over 10 instances all came back in one order");
}

#[test]
fn names_outside_are_refused_without_recursors_and_forwarded_with_them() {
    let packet = request("example.com.", RecordType::A, None);
    let r = responder(catalog_with_web(1), &[]);
    assert_eq!(answer(&r, &packet, Transport::Udp).response_code(), ResponseCode::Refused);
    let r = responder(catalog_with_web(1), &["127.0.0.1:5399"]);
    assert_eq!(r.respond(&packet, Transport::Udp), Outcome::Forward);
}

#[test]
fn apex_soa_is_answered_not_nxdomain() {
    let r = responder(catalog_with_web(1), &[]);
    let m = answer(&r, &request("consul.", RecordType::SOA, None), Transport::Udp);
    assert_eq!(m.response_code(), ResponseCode::NoError);
    assert!(m.authoritative());
    assert_eq!(m.answers()[0].record_type(), RecordType::SOA);
}

#[test]
fn malformed_requests_get_formerr_and_responses_are_ignored() {
    let r = responder(catalog_with_web(1), &[]);
    let mut garbage = request("web.service.consul.", RecordType::A, None);
    garbage.truncate(20);
    let m = answer(&r, &garbage, Transport::Udp);
    assert_eq!((m.id(), m.response_code()), (4242, ResponseCode::FormErr));
    let mut response = request("web.service.consul.", RecordType::A, None);
    response[2] |= 0x80;
    assert_eq!(r.respond(&response, Transport::Udp), Outcome::Drop);
    assert_eq!(r.respond(&[1, 2], Transport::Udp), Outcome::Drop);
    let mut notify = Message::new();
    notify.set_id(7).set_op_code(OpCode::Notify);
    let m = answer(&r, &notify.to_vec().expect("encode"), Transport::Udp);
    assert_eq!(m.response_code(), ResponseCode::NotImp);
}

/// A deterministic stand-in for the fuzzer, run with every test: mutated and random packets never
/// panic and never produce a response that does not decode.
#[test]
fn random_and_mutated_packets_never_panic() {
    let r = responder(catalog_with_web(5), &["127.0.0.1:5399"]);
    let seeds = [
        request("web.service.consul.", RecordType::SRV, Some(1232)),
        request("_web._tcp.service.dc1.consul.", RecordType::ANY, None),
        request("1.0.0.10.in-addr.arpa.", RecordType::PTR, None),
        request("node-1.node.consul.", RecordType::TXT, None),
    ];
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for round in 0..20_000 {
        let mut packet = seeds[round % seeds.len()].clone();
        let flips = 1 + (next() % 6) as usize;
        for _ in 0..flips {
            let at = (next() as usize) % packet.len();
            packet[at] = next() as u8;
        }
        if round % 5 == 0 {
            packet.truncate((next() as usize) % (packet.len() + 1));
        }
        for transport in [Transport::Udp, Transport::Tcp] {
            if let Outcome::Reply(bytes) = r.respond(&packet, transport) {
                assert!(Message::from_vec(&bytes).is_ok(), "undecodable response to {packet:?}");
            }
        }
    }
}
