//! Query names → what is asked, as Consul reads them. Pure: no catalog, no sockets.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What a query name asks for.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Question {
    /// The zone apex itself (`consul.`): SOA and NS live here.
    Apex,
    /// `[tag.]name.service[.dc]` or RFC 2782 `_name._tag[.service][.dc]`.
    Service { name: String, tag: Option<String>, dc: Option<String> },
    /// `node.node[.dc]`.
    Node { name: String, dc: Option<String> },
    /// `<hex-ip>.addr[.dc]`: an address spelled as a name (Consul's SRV targets for service addresses).
    Addr { ip: IpAddr, dc: Option<String> },
    /// A reverse lookup under `in-addr.arpa.` or `ip6.arpa.`.
    Reverse(IpAddr),
    /// Inside the domain, but not a name census serves.
    Unknown,
}

/// Where a name falls relative to the zones census answers for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// Inside one of census' domains; `domain` is the one it was asked under (primary or alt).
    Inside { question: Question, domain: String },
    /// A reverse name (answered if census knows the address, otherwise passed on).
    Reverse(IpAddr),
    /// Anywhere else: for the recursors, if any.
    Outside,
}

/// The domains a server answers for, lower case, each ending in a dot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Domains {
    pub primary: String,
    pub alt: Option<String>,
}

/// `consul`, `Consul.`, `.consul.` → `consul.`.
pub fn normalize_domain(domain: &str) -> String {
    let trimmed = domain.trim().trim_matches('.').to_ascii_lowercase();
    format!("{trimmed}.")
}

impl Domains {
    pub fn new(primary: &str, alt: Option<&str>) -> Domains {
        Domains { primary: normalize_domain(primary), alt: alt.map(normalize_domain).filter(|a| a != ".") }
    }

    /// The labels in front of the domain `name` ends with, and that domain.
    fn strip<'a>(&'a self, name: &str) -> Option<(String, &'a str)> {
        let lower = name.to_ascii_lowercase();
        let lower = if lower.ends_with('.') { lower } else { format!("{lower}.") };
        for domain in std::iter::once(&self.primary).chain(self.alt.iter()) {
            if lower == *domain {
                return Some((String::new(), domain));
            }
            if let Some(front) = lower.strip_suffix(domain.as_str())
                && let Some(front) = front.strip_suffix('.')
            {
                return Some((front.to_string(), domain));
            }
        }
        None
    }
}

/// Reads a query name (ASCII, case ignored).
pub fn parse(name: &str, domains: &Domains) -> Parsed {
    if let Some(ip) = parse_reverse(name) {
        return Parsed::Reverse(ip);
    }
    let Some((front, domain)) = domains.strip(name) else { return Parsed::Outside };
    let domain = domain.to_string();
    if front.is_empty() {
        return Parsed::Inside { question: Question::Apex, domain };
    }
    let labels: Vec<&str> = front.split('.').collect();
    Parsed::Inside { question: parse_labels(&labels), domain }
}

/// The labels in front of the domain. The type label (`service`, `node`, `addr`) is the last one or,
/// when a datacenter follows it, the one before.
fn parse_labels(labels: &[&str]) -> Question {
    let n = labels.len();
    let typed = |i: usize| matches!(labels[i], "service" | "node" | "addr");
    let (kind_at, dc) = if typed(n - 1) {
        (n - 1, None)
    } else if n >= 2 && typed(n - 2) {
        (n - 2, Some(labels[n - 1].to_string()))
    } else {
        return rfc2782_without_type(labels);
    };
    let before = &labels[..kind_at];
    if before.is_empty() || before.iter().any(|l| l.is_empty()) {
        return Question::Unknown;
    }
    match labels[kind_at] {
        "service" => service_question(before, dc),
        "node" => Question::Node { name: before.join("."), dc },
        _ => match parse_hex_ip(&before.join("")) {
            Some(ip) if before.len() == 1 => Question::Addr { ip, dc },
            _ => Question::Unknown,
        },
    }
}

/// `_web._tcp[.dc]` with no `service` label.
fn rfc2782_without_type(labels: &[&str]) -> Question {
    match labels {
        [name, tag] | [name, tag, _] if name.starts_with('_') && tag.starts_with('_') => {
            let dc = labels.get(2).map(|d| d.to_string());
            service_question(&labels[..2], dc)
        }
        _ => Question::Unknown,
    }
}

fn service_question(before: &[&str], dc: Option<String>) -> Question {
    let (name, tag) = match before {
        [name] => (name.to_string(), None),
        [name, tag] if name.starts_with('_') && tag.starts_with('_') && name.len() > 1 && tag.len() > 1 => {
            let tag = &tag[1..];
            (name[1..].to_string(), (tag != "tcp" && tag != "udp").then(|| tag.to_string()))
        }
        [tags @ .., name] => (name.to_string(), Some(tags.join("."))),
        [] => return Question::Unknown,
    };
    Question::Service { name, tag, dc }
}

/// `0a000001` → 10.0.0.1; 32 hex digits → an IPv6 address.
fn parse_hex_ip(hex: &str) -> Option<IpAddr> {
    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    match hex.len() {
        8 => u32::from_str_radix(hex, 16).ok().map(|v| IpAddr::V4(Ipv4Addr::from(v))),
        32 => u128::from_str_radix(hex, 16).ok().map(|v| IpAddr::V6(Ipv6Addr::from(v))),
        _ => None,
    }
}

/// The `addr` label for an IP: the inverse of `parse_hex_ip`.
pub fn hex_ip(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => format!("{:08x}", u32::from(v4)),
        IpAddr::V6(v6) => format!("{:032x}", u128::from(v6)),
    }
}

/// `4.3.2.1.in-addr.arpa.` → 1.2.3.4; nibble form under `ip6.arpa.` → an IPv6 address.
fn parse_reverse(name: &str) -> Option<IpAddr> {
    let lower = name.to_ascii_lowercase();
    let lower = lower.trim_end_matches('.');
    if let Some(front) = lower.strip_suffix(".in-addr.arpa") {
        let octets: Vec<u8> = front.split('.').map(|o| o.parse::<u8>().ok()).collect::<Option<_>>()?;
        let [d, c, b, a] = octets.as_slice() else { return None };
        return Some(IpAddr::V4(Ipv4Addr::new(*a, *b, *c, *d)));
    }
    let front = lower.strip_suffix(".ip6.arpa")?;
    let nibbles: Vec<&str> = front.split('.').collect();
    if nibbles.len() != 32 || nibbles.iter().any(|n| n.len() != 1) {
        return None;
    }
    let hex: String = nibbles.iter().rev().copied().collect();
    u128::from_str_radix(&hex, 16).ok().map(|v| IpAddr::V6(Ipv6Addr::from(v)))
}

/// The reverse name of an address, for PTR answers.
pub fn reverse_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            format!("{d}.{c}.{b}.{a}.in-addr.arpa.")
        }
        IpAddr::V6(v6) => {
            let hex = format!("{:032x}", u128::from(v6));
            let mut out: String = hex.chars().rev().flat_map(|c| [c, '.']).collect();
            out.push_str("ip6.arpa.");
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn consul() -> Domains {
        Domains::new("consul", Some("alt.example."))
    }

    fn inside(name: &str) -> Question {
        match parse(name, &consul()) {
            Parsed::Inside { question, .. } => question,
            other => panic!("{name}: expected inside, got {other:?}"),
        }
    }

    fn svc(name: &str, tag: Option<&str>, dc: Option<&str>) -> Question {
        Question::Service { name: name.into(), tag: tag.map(Into::into), dc: dc.map(Into::into) }
    }

    #[test]
    fn standard_service_names() {
        assert_eq!(inside("web.service.consul."), svc("web", None, None));
        assert_eq!(inside("WEB.Service.CONSUL"), svc("web", None, None));
        assert_eq!(inside("rails.web.service.consul."), svc("web", Some("rails"), None));
        assert_eq!(inside("web.service.dc1.consul."), svc("web", None, Some("dc1")));
        assert_eq!(inside("v1.rails.web.service.dc2.consul."), svc("web", Some("v1.rails"), Some("dc2")));
    }

    #[test]
    fn rfc2782_names() {
        assert_eq!(inside("_web._tcp.service.consul."), svc("web", None, None));
        assert_eq!(inside("_web._rails.service.consul."), svc("web", Some("rails"), None));
        assert_eq!(inside("_web._rails.service.dc1.consul."), svc("web", Some("rails"), Some("dc1")));
        assert_eq!(inside("_web._tcp.consul."), svc("web", None, None));
        assert_eq!(inside("_web._rails.dc1.consul."), svc("web", Some("rails"), Some("dc1")));
    }

    #[test]
    fn node_addr_and_apex() {
        assert_eq!(inside("consul."), Question::Apex);
        assert_eq!(inside("ALT.example"), Question::Apex);
        assert_eq!(inside("n1.node.consul."), Question::Node { name: "n1".into(), dc: None });
        assert_eq!(
            inside("n1.node.dc1.consul."),
            Question::Node { name: "n1".into(), dc: Some("dc1".into()) }
        );
        let ip: IpAddr = "10.0.0.1".parse().expect("ip");
        assert_eq!(inside("0a000001.addr.dc1.consul."), Question::Addr { ip, dc: Some("dc1".into()) });
        assert_eq!(hex_ip(ip), "0a000001");
    }

    #[test]
    fn alt_domain_answers_under_the_asked_domain() {
        match parse("web.service.alt.example.", &consul()) {
            Parsed::Inside { question, domain } => {
                assert_eq!(question, svc("web", None, None));
                assert_eq!(domain, "alt.example.");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn names_outside_or_unknown() {
        assert_eq!(parse("example.com.", &consul()), Parsed::Outside);
        assert_eq!(parse("notconsul.", &consul()), Parsed::Outside);
        assert_eq!(inside("web.consul."), Question::Unknown);
        assert_eq!(inside("service.consul."), Question::Unknown);
        assert_eq!(inside("zz.addr.consul."), Question::Unknown);
        assert_eq!(inside("a..service.consul."), Question::Unknown);
    }

    #[test]
    fn reverse_names_round_trip() {
        for ip in ["10.1.2.3", "2001:db8::1"] {
            let ip: IpAddr = ip.parse().expect("ip");
            assert_eq!(parse(&reverse_name(ip), &consul()), Parsed::Reverse(ip));
        }
        assert_eq!(parse("1.2.3.in-addr.arpa.", &consul()), Parsed::Outside);
        assert_eq!(parse("300.2.3.4.in-addr.arpa.", &consul()), Parsed::Outside);
    }
}
