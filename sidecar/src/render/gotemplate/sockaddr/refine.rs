//! go-sockaddr's refiners over a list of interface addresses: `include`, `exclude`, `sort`,
//! `limit`, `offset`, `unique`, `attr`, `join`.

use std::cmp::Ordering;
use std::net::IpAddr;

use gotmpl::{TemplateError, Value};

use super::{FLAGS, IfAddr, rfc};
use crate::render::gotemplate::text::regex;
use crate::render::gotemplate::value::{Args, fail, list, string};

pub(super) fn to_list(addresses: Vec<IfAddr>) -> Value {
    list(addresses.iter().map(IfAddr::to_value).collect())
}

fn addresses(args: &Args<'_>, i: usize) -> Result<Vec<IfAddr>, TemplateError> {
    match args.value(i) {
        Value::Map(_) => Ok(vec![IfAddr::from_value(args.value(i))?]),
        _ => args.list(i)?.iter().map(IfAddr::from_value).collect(),
    }
}

/// IPv4 before IPv6.
pub(super) fn by_type(a: &IfAddr, b: &IfAddr) -> Ordering {
    b.ip.is_ipv4().cmp(&a.ip.is_ipv4())
}

pub(super) fn join_addresses(found: &[IfAddr], all: bool) -> String {
    let take = if all { found.len() } else { found.len().min(1) };
    found[..take].iter().map(|a| a.ip.to_string()).collect::<Vec<_>>().join(" ")
}

/// `include|exclude KIND SELECTOR ADDRS`: `name` and `address` (regular expressions), `type`
/// (`IPv4`, `IPv6`), `flag`/`flags` (`up`, `loopback`, `forwardable`, ... `|` for any of them),
/// `network` (a CIDR that holds the address), `rfc` (numbers, `|` for any).
pub(super) fn filter(values: &[Value], name: &'static str, keep: bool) -> Result<Value, TemplateError> {
    let args = Args::new(name, values, 3, 3)?;
    let (kind, selector) = (args.str(0)?.to_ascii_lowercase(), args.str(1)?);
    let test: Box<dyn Fn(&IfAddr) -> bool> = match kind.as_str() {
        "name" => {
            let re = regex(name, selector)?;
            Box::new(move |a| re.is_match(&a.name))
        }
        "address" => {
            let re = regex(name, selector)?;
            Box::new(move |a| re.is_match(&a.ip.to_string()))
        }
        "type" => {
            let want = selector.to_ascii_lowercase();
            if !["ipv4", "ipv6", "ip"].contains(&want.as_str()) {
                return Err(fail(format!("{name}: unsupported type {selector:?}")));
            }
            Box::new(move |a| want == "ip" || (want == "ipv4") == a.ip.is_ipv4())
        }
        "flag" | "flags" => {
            let wanted: Vec<String> = selector.split('|').map(str::to_ascii_lowercase).collect();
            for w in &wanted {
                if !FLAGS.contains(&w.as_str()) && !rfc::ADDRESS_FLAGS.contains(&w.as_str()) && w != "down" {
                    return Err(fail(format!("{name}: unsupported flag {w:?}")));
                }
            }
            Box::new(move |a| wanted.iter().any(|w| has_flag(a, w)))
        }
        "network" => {
            let (net, prefix) = selector
                .split_once('/')
                .and_then(|(ip, p)| Some((ip.parse::<IpAddr>().ok()?, p.parse::<u8>().ok()?)))
                .ok_or_else(|| fail(format!("{name}: not a network: {selector:?}")))?;
            Box::new(move |a| rfc::within(a.ip, net, prefix))
        }
        "rfc" | "rfcs" => {
            let numbers: Vec<u32> = selector
                .split('|')
                .map(|n| n.trim().parse().ok().filter(|n| rfc::known(*n)))
                .collect::<Option<_>>()
                .ok_or_else(|| fail(format!("{name}: unsupported RFC {selector:?}")))?;
            Box::new(move |a| numbers.iter().any(|n| rfc::contains(*n, a.ip)))
        }
        other => return Err(fail(format!("{name}: unsupported kind {other:?}"))),
    };
    let kept = addresses(&args, 2)?.into_iter().filter(|a| test(a) == keep).collect();
    Ok(to_list(kept))
}

fn has_flag(a: &IfAddr, flag: &str) -> bool {
    match flag {
        "down" => !a.flags.contains(&"up"),
        "forwardable" => rfc::forwardable(a.ip),
        f if FLAGS.contains(&f) => a.flags.contains(&f),
        f => rfc::address_flag(a.ip, f),
    }
}

/// `sort "KEY,KEY" ADDRS`: `address`, `default`, `name`, `private`, `size`, `type`, each
/// ascending or with `-` descending (`+` allowed).
pub(super) fn sort(values: &[Value]) -> Result<Value, TemplateError> {
    let args = Args::new("sort", values, 2, 2)?;
    let mut keys = Vec::new();
    for key in args.str(0)?.split(',').map(str::trim).filter(|k| !k.is_empty()) {
        let (desc, key) = match key.strip_prefix('-') {
            Some(k) => (true, k),
            None => (false, key.strip_prefix('+').unwrap_or(key)),
        };
        let cmp: fn(&IfAddr, &IfAddr) -> Ordering = match key {
            "address" => |a, b| by_type(a, b).then(a.ip.cmp(&b.ip)),
            "default" => |a, b| b.default.cmp(&a.default),
            "name" => |a, b| a.name.cmp(&b.name),
            "private" => |a, b| b.private().cmp(&a.private()),
            "size" => |a, b| rfc::size(b.ip, b.prefix).cmp(&rfc::size(a.ip, a.prefix)),
            "type" => by_type,
            other => return Err(fail(format!("sort: unsupported key {other:?}"))),
        };
        keys.push((desc, cmp));
    }
    let mut found = addresses(&args, 1)?;
    found.sort_by(|a, b| {
        keys.iter().fold(Ordering::Equal, |acc, (desc, cmp)| {
            acc.then_with(|| if *desc { cmp(a, b).reverse() } else { cmp(a, b) })
        })
    });
    Ok(to_list(found))
}

pub(super) fn limit(values: &[Value]) -> Result<Value, TemplateError> {
    let args = Args::new("limit", values, 2, 2)?;
    let n = usize::try_from(args.int(0)?).map_err(|_| fail("limit: negative count"))?;
    Ok(to_list(addresses(&args, 1)?.into_iter().take(n).collect()))
}

/// `offset N ADDRS`: skips N; a negative N keeps the last |N|.
pub(super) fn offset(values: &[Value]) -> Result<Value, TemplateError> {
    let args = Args::new("offset", values, 2, 2)?;
    let (n, found) = (args.int(0)?, addresses(&args, 1)?);
    let skip = if n >= 0 { n as usize } else { found.len().saturating_sub(n.unsigned_abs() as usize) };
    Ok(to_list(found.into_iter().skip(skip).collect()))
}

pub(super) fn unique(values: &[Value]) -> Result<Value, TemplateError> {
    let args = Args::new("unique", values, 2, 2)?;
    let name = args.str(0)?;
    let mut seen = std::collections::BTreeSet::new();
    let mut kept = Vec::new();
    for a in addresses(&args, 1)? {
        if seen.insert(a.attr(name)?) {
            kept.push(a);
        }
    }
    Ok(to_list(kept))
}

/// `attr NAME ADDRS`: the attribute of the first address ("" when there is none).
pub(super) fn attr(values: &[Value]) -> Result<Value, TemplateError> {
    let args = Args::new("attr", values, 2, 2)?;
    let name = args.str(0)?;
    match addresses(&args, 1)?.first() {
        Some(a) => Ok(string(a.attr(name)?)),
        None => Ok(string("")),
    }
}

/// `join NAME SEP ADDRS`: the attribute of every address, joined.
pub(super) fn join(values: &[Value]) -> Result<Value, TemplateError> {
    let args = Args::new("join", values, 3, 3)?;
    let (name, sep) = (args.str(0)?, args.str(1)?);
    let parts = addresses(&args, 2)?.iter().map(|a| a.attr(name)).collect::<Result<Vec<_>, _>>()?;
    Ok(string(parts.join(sep)))
}
