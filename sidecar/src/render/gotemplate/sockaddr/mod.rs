//! consul-template's `sockaddr`: go-sockaddr's template language over this host's interface
//! addresses. `{{ sockaddr "GetPrivateIP" }}` runs `{{GetPrivateIP}}` as a Go template whose
//! functions select addresses (`GetAllInterfaces`, `GetDefaultInterfaces`, `GetPrivateInterfaces`,
//! `GetPublicInterfaces`, `GetPrivateIP(s)`, `GetPublicIP(s)`, `GetInterfaceIP(s)`) and refine
//! them (`include`, `exclude`, `sort`, `limit`, `offset`, `unique`, `attr`, `join`).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use gotmpl::{TemplateError, Value, ValueFunc};

use super::text::{HelperFn, regex};
use super::value::{Args, fail, field, map, string};

mod refine;
mod rfc;

use self::refine::{attr, by_type, filter, join, join_addresses, limit, offset, sort, to_list, unique};

/// One address of one interface, as go-sockaddr's `IfAddr`.
#[derive(Debug, Clone, PartialEq)]
pub struct IfAddr {
    pub name: String,
    pub ip: IpAddr,
    pub prefix: u8,
    pub flags: Vec<&'static str>,
    /// On an interface that carries the default route.
    pub default: bool,
}

impl IfAddr {
    fn attr(&self, name: &str) -> Result<String, TemplateError> {
        Ok(match name {
            "address" | "host" => self.ip.to_string(),
            "name" => self.name.clone(),
            "string" => format!("{}/{}", self.ip, self.prefix),
            "network" => format!("{}/{}", rfc::network(self.ip, self.prefix), self.prefix),
            "mask_bits" => self.prefix.to_string(),
            "size" => rfc::size(self.ip, self.prefix).to_string(),
            "type" => if self.ip.is_ipv4() { "IPv4" } else { "IPv6" }.to_string(),
            "flags" => self.flags.join("|"),
            "port" => "0".to_string(),
            other => return Err(fail(format!("sockaddr: unsupported attribute name {other:?}"))),
        })
    }

    fn private(&self) -> bool {
        rfc::contains(6890, self.ip)
    }

    /// As a template value: a map of its attributes, so `.address` works in a `range`.
    fn to_value(&self) -> Value {
        let mut fields = BTreeMap::new();
        for name in ["address", "name", "string", "network", "mask_bits", "size", "type", "flags"] {
            fields.insert(Arc::from(name), string(self.attr(name).unwrap_or_default()));
        }
        fields.insert(Arc::from("default"), Value::Bool(self.default));
        map(fields)
    }

    fn from_value(value: &Value) -> Result<IfAddr, TemplateError> {
        let text = |name| field(value, name).and_then(Value::as_str).unwrap_or_default();
        let (ip, prefix) = text("string")
            .split_once('/')
            .and_then(|(ip, prefix)| Some((ip.parse().ok()?, prefix.parse().ok()?)))
            .ok_or_else(|| fail("sockaddr: not an interface address (use GetAllInterfaces and friends)"))?;
        let flags =
            text("flags").split('|').filter_map(|f| FLAGS.iter().find(|k| **k == f).copied()).collect();
        let default = matches!(field(value, "default"), Some(Value::Bool(true)));
        Ok(IfAddr { name: text("name").to_string(), ip, prefix, flags, default })
    }
}

const FLAGS: &[&str] = &["up", "broadcast", "loopback", "point-to-point", "multicast"];

/// This host's interface addresses (IPv4 and IPv6), in the kernel's order.
pub fn host_addresses() -> Vec<IfAddr> {
    let defaults = default_interfaces();
    let Ok(found) = nix::ifaddrs::getifaddrs() else { return Vec::new() };
    let mut out = Vec::new();
    for entry in found {
        let ip: Option<IpAddr> = entry.address.as_ref().and_then(|a| {
            a.as_sockaddr_in()
                .map(|s| IpAddr::V4(s.ip()))
                .or_else(|| a.as_sockaddr_in6().map(|s| IpAddr::V6(s.ip())))
        });
        let Some(ip) = ip else { continue };
        let prefix = entry
            .netmask
            .as_ref()
            .and_then(|m| {
                m.as_sockaddr_in()
                    .map(|s| u32::from(s.ip()).count_ones() as u8)
                    .or_else(|| m.as_sockaddr_in6().map(|s| u128::from(s.ip()).count_ones() as u8))
            })
            .unwrap_or(if ip.is_ipv4() { 32 } else { 128 });
        use nix::net::if_::InterfaceFlags as F;
        let known = [
            (F::IFF_UP, "up"),
            (F::IFF_BROADCAST, "broadcast"),
            (F::IFF_LOOPBACK, "loopback"),
            (F::IFF_POINTOPOINT, "point-to-point"),
            (F::IFF_MULTICAST, "multicast"),
        ];
        let flags = known.iter().filter(|(f, _)| entry.flags.contains(*f)).map(|(_, n)| *n).collect();
        let default = defaults.contains(&entry.interface_name);
        out.push(IfAddr { name: entry.interface_name, ip, prefix, flags, default });
    }
    out
}

/// The interfaces that carry a default route (IPv4, then IPv6), from the kernel's route tables.
fn default_interfaces() -> Vec<String> {
    let mut names = Vec::new();
    if let Ok(table) = std::fs::read_to_string("/proc/net/route") {
        for line in table.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            if cols.len() > 7 && cols[1] == "00000000" && cols[7] == "00000000" {
                names.push(cols[0].to_string());
            }
        }
    }
    if let Ok(table) = std::fs::read_to_string("/proc/net/ipv6_route") {
        for line in table.lines() {
            let cols: Vec<&str> = line.split_whitespace().collect();
            if cols.len() == 10 && cols[0].bytes().all(|b| b == b'0') && cols[1] == "00" && cols[9] != "lo" {
                names.push(cols[9].to_string());
            }
        }
    }
    names.dedup();
    names
}

/// `sockaddr "EXPR"`: EXPR evaluated as go-sockaddr's template over this host's addresses.
pub fn sockaddr(values: &[Value]) -> Result<Value, TemplateError> {
    let args = Args::new("sockaddr", values, 1, usize::MAX)?;
    let words: Vec<&str> = (0..args.count()).map(|i| args.str(i)).collect::<Result<_, _>>()?;
    evaluate(&words.join(" "), host_addresses())
}

/// Evaluates `expr` over `addresses` (tests give their own).
pub fn evaluate(expr: &str, addresses: Vec<IfAddr>) -> Result<Value, TemplateError> {
    let addresses = Arc::new(addresses);
    let template = gotmpl::Template::new("sockaddr")
        .funcs(functions(&addresses))
        .parse(&format!("{{{{{expr}}}}}"))
        .map_err(|e| fail(format!("sockaddr: {expr:?}: {e}")))?;
    let text = template.execute_to_string(&Value::Nil).map_err(|e| fail(format!("sockaddr: {e}")))?;
    Ok(string(text))
}

type Addrs = Arc<Vec<IfAddr>>;

/// Which addresses a source or shortcut function picks.
type Select = fn(&IfAddr) -> bool;

/// go-sockaddr's private: RFC 6890, forwardable, on an interface with the default route.
fn private_default(a: &IfAddr) -> bool {
    a.default && a.private() && rfc::forwardable(a.ip)
}

/// go-sockaddr's public: not RFC 6890, forwardable, on an interface with the default route.
fn public_default(a: &IfAddr) -> bool {
    a.default && !a.private() && rfc::forwardable(a.ip)
}

fn functions(addresses: &Addrs) -> BTreeMap<String, ValueFunc> {
    let mut funcs: BTreeMap<String, ValueFunc> = BTreeMap::new();
    let sources: [(&str, Select); 4] = [
        ("GetAllInterfaces", |_| true),
        ("GetDefaultInterfaces", |a| a.default),
        ("GetPrivateInterfaces", private_default),
        ("GetPublicInterfaces", public_default),
    ];
    for (name, keep) in sources {
        let addresses = addresses.clone();
        funcs.insert(
            name.into(),
            Arc::new(move |args: &[Value]| {
                Args::new(name, args, 0, 0)?;
                Ok(to_list(addresses.iter().filter(|a| keep(a)).cloned().collect()))
            }),
        );
    }
    let ips: [(&str, Select, bool); 4] = [
        ("GetPrivateIP", private_default, false),
        ("GetPrivateIPs", private_default, true),
        ("GetPublicIP", public_default, false),
        ("GetPublicIPs", public_default, true),
    ];
    for (name, keep, all) in ips {
        let addresses = addresses.clone();
        funcs.insert(
            name.into(),
            Arc::new(move |args: &[Value]| {
                Args::new(name, args, 0, 0)?;
                let mut found: Vec<IfAddr> = addresses.iter().filter(|a| keep(a)).cloned().collect();
                found.sort_by(by_type);
                Ok(string(join_addresses(&found, all)))
            }),
        );
    }
    for (name, all) in [("GetInterfaceIP", false), ("GetInterfaceIPs", true)] {
        let addresses = addresses.clone();
        funcs.insert(
            name.into(),
            Arc::new(move |args: &[Value]| {
                let args = Args::new(name, args, 1, 1)?;
                let pattern = regex(name, args.str(0)?)?;
                let mut found: Vec<IfAddr> = addresses
                    .iter()
                    .filter(|a| pattern.is_match(&a.name) && rfc::forwardable(a.ip))
                    .cloned()
                    .collect();
                found.sort_by(|a, b| by_type(a, b).then(b.prefix.cmp(&a.prefix).reverse()));
                Ok(string(join_addresses(&found, all)))
            }),
        );
    }
    let refine: [(&str, HelperFn); 8] = [
        ("include", |v| filter(v, "include", true)),
        ("exclude", |v| filter(v, "exclude", false)),
        ("sort", sort),
        ("limit", limit),
        ("offset", offset),
        ("unique", unique),
        ("attr", attr),
        ("join", join),
    ];
    for (name, f) in refine {
        funcs.insert(name.into(), Arc::new(f));
    }
    funcs
}

#[cfg(test)]
mod tests;
