//! Catalog facts → DNS records. Pure: the same facts in the same order give the same records.

use std::net::IpAddr;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::{A, AAAA, CNAME, NS, PTR, SOA, SRV, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};

use super::config::DnsConfig;
use super::lookup::{Found, Instance, NodeFacts};
use super::name::hex_ip;

/// The sections of a reply, before encoding.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub rcode: ResponseCode,
    pub answers: Vec<Record>,
    pub authority: Vec<Record>,
    pub additionals: Vec<Record>,
}

impl Reply {
    fn empty(rcode: ResponseCode) -> Reply {
        Reply { rcode, answers: Vec::new(), authority: Vec::new(), additionals: Vec::new() }
    }
}

/// The zone a question was asked in.
pub struct Zone<'a> {
    /// The domain asked under (`consul.` or the alt domain), lower case with the final dot.
    pub domain: &'a str,
    pub config: &'a DnsConfig,
    /// SOA serial: the catalog's last applied index.
    pub serial: u32,
}

impl Zone<'_> {
    /// `label.kind.dc.domain.`, if it makes a valid name.
    fn name(&self, label: &str, kind: &str) -> Option<Name> {
        Name::from_ascii(format!("{label}.{kind}.{}.{}", self.config.datacenter, self.domain)).ok()
    }

    fn apex(&self) -> Name {
        Name::from_ascii(self.domain).unwrap_or_else(|_| Name::root())
    }

    fn soa(&self) -> Record {
        let apex = self.apex();
        let mname = self.name(&self.config.node_name, "node").unwrap_or_else(|| apex.clone());
        let rname = Name::from_ascii(format!("hostmaster.{}", self.domain)).unwrap_or_else(|_| apex.clone());
        let soa = &self.config.soa;
        let as_i32 = |v: u32| i32::try_from(v).unwrap_or(i32::MAX);
        let rdata = SOA::new(
            mname,
            rname,
            self.serial,
            as_i32(soa.refresh),
            as_i32(soa.retry),
            as_i32(soa.expire),
            soa.min_ttl,
        );
        Record::from_rdata(apex, soa.min_ttl, RData::SOA(rdata))
    }

    /// A negative answer: `rcode` with the SOA in authority, for negative caching.
    fn negative(&self, rcode: ResponseCode) -> Reply {
        let mut reply = Reply::empty(rcode);
        reply.authority.push(self.soa());
        reply
    }
}

/// A host name (a service registered by name, not IP) as an absolute DNS name.
fn host_name(host: &str) -> Option<Name> {
    Name::from_ascii(format!("{}.", host.trim_end_matches('.'))).ok()
}

fn wants(qtype: RecordType, kind: RecordType) -> bool {
    qtype == kind || qtype == RecordType::ANY
}

/// An A or AAAA record for `ip`, when `qtype` asks for that family.
fn address_record(name: &Name, ttl: u32, ip: IpAddr, qtype: RecordType) -> Option<Record> {
    match ip {
        IpAddr::V4(v4) if wants(qtype, RecordType::A) => {
            Some(Record::from_rdata(name.clone(), ttl, RData::A(A(v4))))
        }
        IpAddr::V6(v6) if wants(qtype, RecordType::AAAA) => {
            Some(Record::from_rdata(name.clone(), ttl, RData::AAAA(AAAA(v6))))
        }
        _ => None,
    }
}

/// Builds the reply for `found`. Service instances are answered in the order given (the caller shuffles).
pub fn build(found: &Found, qname: &Name, qtype: RecordType, zone: &Zone) -> Reply {
    let reply = match found {
        Found::Nothing => return zone.negative(ResponseCode::NXDomain),
        Found::Service { name, instances } => service(name, instances, qname, qtype, zone),
        Found::Node(node) => node_reply(node, qname, qtype, zone),
        Found::Addr(ip) => {
            let mut reply = Reply::empty(ResponseCode::NoError);
            reply.answers.extend(address_record(qname, zone.config.node_ttl, *ip, qtype));
            reply
        }
        Found::Apex { servers } => apex(servers, qtype, zone),
        Found::Reverse(names) => {
            let mut reply = Reply::empty(ResponseCode::NoError);
            if wants(qtype, RecordType::PTR) {
                for name in names {
                    if let Ok(target) = Name::from_ascii(format!("{name}.{}", zone.config.domains.primary)) {
                        let rdata = RData::PTR(PTR(target));
                        reply.answers.push(Record::from_rdata(qname.clone(), zone.config.node_ttl, rdata));
                    }
                }
            }
            reply
        }
    };
    if reply.answers.is_empty() { zone.negative(ResponseCode::NoError) } else { reply }
}

fn service(service: &str, instances: &[Instance], qname: &Name, qtype: RecordType, zone: &Zone) -> Reply {
    let ttl = zone.config.service_ttl_for(service);
    let mut reply = Reply::empty(ResponseCode::NoError);
    if qtype == RecordType::SRV {
        for inst in instances {
            srv_record(inst, qname, ttl, zone, &mut reply);
        }
        return reply;
    }
    if !(wants(qtype, RecordType::A) || wants(qtype, RecordType::AAAA)) {
        return reply;
    }
    for inst in instances {
        let record = match inst.address().parse::<IpAddr>() {
            Ok(ip) => address_record(qname, ttl, ip, qtype),
            Err(_) => host_name(inst.address())
                .map(|host| Record::from_rdata(qname.clone(), ttl, RData::CNAME(CNAME(host)))),
        };
        reply.answers.extend(record);
    }
    if let Some(limit) = zone.config.a_record_limit {
        reply.answers.truncate(limit);
    }
    reply
}

/// An SRV answer and the address record of its target. The target is the node, or, when the service
/// has its own IP, that IP as `<hex>.addr.dc.domain` (as Consul does), or its host name.
fn srv_record(inst: &Instance, qname: &Name, ttl: u32, zone: &Zone, reply: &mut Reply) {
    let (target, ip) = if inst.service_address.is_empty() {
        (zone.name(&inst.node, "node"), inst.node_address.parse::<IpAddr>().ok())
    } else {
        match inst.service_address.parse::<IpAddr>() {
            Ok(ip) => (zone.name(&hex_ip(ip), "addr"), Some(ip)),
            Err(_) => (host_name(&inst.service_address), None),
        }
    };
    let Some(target) = target else { return };
    let srv = SRV::new(1, inst.weight, inst.port, target.clone());
    reply.answers.push(Record::from_rdata(qname.clone(), ttl, RData::SRV(srv)));
    if let Some(record) = ip.and_then(|ip| address_record(&target, ttl, ip, RecordType::ANY))
        && !reply.additionals.contains(&record)
    {
        reply.additionals.push(record);
    }
}

/// Node meta as RFC 1464 TXT strings; `rfc1035-` keys give the bare value.
fn meta_txt(meta: &std::collections::BTreeMap<String, String>) -> Vec<String> {
    meta.iter()
        .map(|(k, v)| match k.strip_prefix("rfc1035-") {
            Some(_) => v.clone(),
            None => format!("{k}={v}"),
        })
        .collect()
}

fn node_reply(node: &NodeFacts, qname: &Name, qtype: RecordType, zone: &Zone) -> Reply {
    let ttl = zone.config.node_ttl;
    let mut reply = Reply::empty(ResponseCode::NoError);
    if let Ok(ip) = node.address.parse::<IpAddr>() {
        reply.answers.extend(address_record(qname, ttl, ip, qtype));
    }
    if wants(qtype, RecordType::TXT) {
        for text in meta_txt(&node.meta) {
            reply.answers.push(Record::from_rdata(qname.clone(), ttl, RData::TXT(TXT::new(vec![text]))));
        }
    }
    reply
}

fn apex(servers: &[(String, String)], qtype: RecordType, zone: &Zone) -> Reply {
    let mut reply = Reply::empty(ResponseCode::NoError);
    if wants(qtype, RecordType::SOA) {
        reply.answers.push(zone.soa());
    }
    if wants(qtype, RecordType::NS) {
        for (node, address) in servers {
            let Some(target) = zone.name(node, "node") else { continue };
            let ns = RData::NS(NS(target.clone()));
            reply.answers.push(Record::from_rdata(zone.apex(), zone.config.node_ttl, ns));
            if let Ok(ip) = address.parse::<IpAddr>() {
                reply.additionals.extend(address_record(&target, zone.config.node_ttl, ip, RecordType::ANY));
            }
        }
    }
    reply
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> DnsConfig {
        let mut c = DnsConfig::new("dc1", "server1");
        c.service_ttl.insert("web".into(), 30);
        c
    }

    fn inst(node: &str, node_address: &str, service_address: &str, weight: u16) -> Instance {
        Instance {
            node: node.into(),
            node_address: node_address.into(),
            service_address: service_address.into(),
            port: 8080,
            weight,
        }
    }

    fn qname(s: &str) -> Name {
        Name::from_ascii(s).expect("name")
    }

    #[test]
    fn srv_targets_nodes_or_service_addresses_with_glue() {
        let cfg = config();
        let zone = Zone { domain: "consul.", config: &cfg, serial: 7 };
        let found = Found::Service {
            name: "web".into(),
            instances: vec![inst("n1", "10.0.0.1", "", 3), inst("n2", "10.0.0.2", "10.9.0.1", 1)],
        };
        let reply = build(&found, &qname("web.service.consul."), RecordType::SRV, &zone);
        assert_eq!(reply.rcode, ResponseCode::NoError);
        let srvs: Vec<String> = reply.answers.iter().map(|r| r.data().to_string()).collect();
        assert_eq!(srvs, ["1 3 8080 n1.node.dc1.consul.", "1 1 8080 0a090001.addr.dc1.consul."]);
        assert!(reply.answers.iter().all(|r| r.ttl() == 30));
        let glue: Vec<String> =
            reply.additionals.iter().map(|r| format!("{} {}", r.name(), r.data())).collect();
        assert_eq!(glue, ["n1.node.dc1.consul. 10.0.0.1", "0a090001.addr.dc1.consul. 10.9.0.1"]);
    }

    #[test]
    fn missing_family_is_nodata_with_soa_and_nothing_is_nxdomain() {
        let cfg = config();
        let zone = Zone { domain: "consul.", config: &cfg, serial: 7 };
        let found = Found::Service { name: "web".into(), instances: vec![inst("n1", "10.0.0.1", "", 1)] };
        let reply = build(&found, &qname("web.service.consul."), RecordType::AAAA, &zone);
        assert_eq!((reply.rcode, reply.answers.len()), (ResponseCode::NoError, 0));
        assert_eq!(reply.authority[0].record_type(), RecordType::SOA);
        let reply = build(&Found::Nothing, &qname("db.service.consul."), RecordType::A, &zone);
        assert_eq!(reply.rcode, ResponseCode::NXDomain);
        assert_eq!(reply.authority[0].record_type(), RecordType::SOA);
    }

    #[test]
    fn a_record_limit_cuts_answers_and_hostnames_become_cnames() {
        let mut cfg = config();
        cfg.a_record_limit = Some(2);
        let zone = Zone { domain: "consul.", config: &cfg, serial: 7 };
        let instances = (1..=5).map(|i| inst(&format!("n{i}"), &format!("10.0.0.{i}"), "", 1)).collect();
        let found = Found::Service { name: "web".into(), instances };
        assert_eq!(build(&found, &qname("web.service.consul."), RecordType::A, &zone).answers.len(), 2);
        let found = Found::Service {
            name: "db".into(),
            instances: vec![inst("n1", "10.0.0.1", "db.example.com", 1)],
        };
        let reply = build(&found, &qname("db.service.consul."), RecordType::A, &zone);
        assert_eq!(reply.answers[0].data().to_string(), "db.example.com.");
    }

    #[test]
    fn node_txt_follows_rfc1464_and_apex_has_soa_and_ns() {
        let cfg = config();
        let zone = Zone { domain: "consul.", config: &cfg, serial: 7 };
        let node = NodeFacts {
            name: "n1".into(),
            address: "10.0.0.1".into(),
            meta: [("rack".to_string(), "r1".to_string()), ("rfc1035-raw".to_string(), "v=spf1".to_string())]
                .into(),
        };
        let reply = build(&Found::Node(node), &qname("n1.node.consul."), RecordType::TXT, &zone);
        let texts: Vec<String> = reply.answers.iter().map(|r| r.data().to_string()).collect();
        assert_eq!(texts, ["rack=r1", "v=spf1"]);
        let found = Found::Apex { servers: vec![("server1".into(), "10.0.0.1".into())] };
        let reply = build(&found, &qname("consul."), RecordType::ANY, &zone);
        let types: Vec<RecordType> = reply.answers.iter().map(Record::record_type).collect();
        assert_eq!(types, [RecordType::SOA, RecordType::NS]);
        assert_eq!(reply.additionals[0].name().to_string(), "server1.node.dc1.consul.");
    }
}
