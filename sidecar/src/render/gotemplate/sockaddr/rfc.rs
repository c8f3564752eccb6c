//! Address blocks by the RFC that reserves them, as go-sockaddr's `rfc` filter and its private
//! and forwardable tests use them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// (RFC, network, prefix length).
type Block = (u32, IpAddr, u8);

const fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

const fn v6(segments: [u16; 8]) -> IpAddr {
    let [a, b, c, d, e, f, g, h] = segments;
    IpAddr::V6(Ipv6Addr::new(a, b, c, d, e, f, g, h))
}

/// The blocks of each RFC the filter knows; RFC 6890 (special-purpose addresses) is what
/// go-sockaddr calls private.
const BLOCKS: &[Block] = &[
    (1122, v4(0, 0, 0, 0), 8),
    (1122, v4(127, 0, 0, 0), 8),
    (1918, v4(10, 0, 0, 0), 8),
    (1918, v4(172, 16, 0, 0), 12),
    (1918, v4(192, 168, 0, 0), 16),
    (3927, v4(169, 254, 0, 0), 16),
    (4193, v6([0xfc00, 0, 0, 0, 0, 0, 0, 0]), 7),
    (4291, v6([0, 0, 0, 0, 0, 0, 0, 1]), 128),
    (4291, v6([0xfe80, 0, 0, 0, 0, 0, 0, 0]), 10),
    (6598, v4(100, 64, 0, 0), 10),
    (6890, v4(0, 0, 0, 0), 8),
    (6890, v4(10, 0, 0, 0), 8),
    (6890, v4(100, 64, 0, 0), 10),
    (6890, v4(127, 0, 0, 0), 8),
    (6890, v4(169, 254, 0, 0), 16),
    (6890, v4(172, 16, 0, 0), 12),
    (6890, v4(192, 0, 0, 0), 24),
    (6890, v4(192, 0, 2, 0), 24),
    (6890, v4(192, 88, 99, 0), 24),
    (6890, v4(192, 168, 0, 0), 16),
    (6890, v4(198, 18, 0, 0), 15),
    (6890, v4(198, 51, 100, 0), 24),
    (6890, v4(203, 0, 113, 0), 24),
    (6890, v4(240, 0, 0, 0), 4),
    (6890, v4(255, 255, 255, 255), 32),
    (6890, v6([0, 0, 0, 0, 0, 0, 0, 1]), 128),
    (6890, v6([0, 0, 0, 0, 0, 0, 0, 0]), 128),
    (6890, v6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0]), 96),
    (6890, v6([0, 0, 0, 0, 0, 0xffff, 0, 0]), 96),
    (6890, v6([0x100, 0, 0, 0, 0, 0, 0, 0]), 64),
    (6890, v6([0x2001, 0, 0, 0, 0, 0, 0, 0]), 23),
    (6890, v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0]), 32),
    (6890, v6([0x2002, 0, 0, 0, 0, 0, 0, 0]), 16),
    (6890, v6([0xfc00, 0, 0, 0, 0, 0, 0, 0]), 7),
    (6890, v6([0xfe80, 0, 0, 0, 0, 0, 0, 0]), 10),
];

/// Special-purpose blocks a router must not forward (RFC 6890's "Forwardable: False").
const NOT_FORWARDABLE: &[(IpAddr, u8)] = &[
    (v4(0, 0, 0, 0), 8),
    (v4(127, 0, 0, 0), 8),
    (v4(169, 254, 0, 0), 16),
    (v4(192, 0, 0, 0), 24),
    (v4(192, 0, 2, 0), 24),
    (v4(198, 51, 100, 0), 24),
    (v4(203, 0, 113, 0), 24),
    (v4(240, 0, 0, 0), 4),
    (v6([0, 0, 0, 0, 0, 0, 0, 1]), 128),
    (v6([0, 0, 0, 0, 0, 0, 0, 0]), 128),
    (v6([0, 0, 0, 0, 0, 0xffff, 0, 0]), 96),
    (v6([0x2001, 0, 0, 0, 0, 0, 0, 0]), 23),
    (v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0]), 32),
    (v6([0xfe80, 0, 0, 0, 0, 0, 0, 0]), 10),
];

/// The address properties the `flag` filter takes besides the interface's own flags.
pub const ADDRESS_FLAGS: &[&str] =
    &["global unicast", "link-local unicast", "link-local multicast", "unspecified"];

pub fn known(rfc: u32) -> bool {
    BLOCKS.iter().any(|(n, _, _)| *n == rfc)
}

pub fn contains(rfc: u32, ip: IpAddr) -> bool {
    BLOCKS.iter().any(|(n, net, prefix)| *n == rfc && within(ip, *net, *prefix))
}

pub fn forwardable(ip: IpAddr) -> bool {
    !NOT_FORWARDABLE.iter().any(|(net, prefix)| within(ip, *net, *prefix))
}

fn bits(ip: IpAddr) -> (u128, u8) {
    match ip {
        IpAddr::V4(a) => (u128::from(u32::from(a)), 32),
        IpAddr::V6(a) => (u128::from(a), 128),
    }
}

/// Whether `ip` lies in `net/prefix` (of the same family).
pub fn within(ip: IpAddr, net: IpAddr, prefix: u8) -> bool {
    let ((a, width), (b, net_width)) = (bits(ip), bits(net));
    if width != net_width || prefix > width {
        return false;
    }
    let shift = u32::from(width - prefix);
    shift >= 128 || (a >> shift) == (b >> shift)
}

/// The network address of `ip/prefix`.
pub fn network(ip: IpAddr, prefix: u8) -> IpAddr {
    let (a, width) = bits(ip);
    let host = u32::from(width.saturating_sub(prefix));
    let masked = if host >= 128 { 0 } else { (a >> host) << host };
    match ip {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from(masked as u32)),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(masked)),
    }
}

/// How many addresses `ip/prefix` spans (saturating at u128::MAX for a /0 IPv6 network).
pub fn size(ip: IpAddr, prefix: u8) -> u128 {
    let (_, width) = bits(ip);
    1u128.checked_shl(u32::from(width.saturating_sub(prefix))).unwrap_or(u128::MAX)
}

/// `global unicast`, `link-local unicast`, `link-local multicast`, `unspecified`, as Go's
/// `net.IP` methods of those names decide.
pub fn address_flag(ip: IpAddr, flag: &str) -> bool {
    let link_local_unicast = match ip {
        IpAddr::V4(a) => a.is_link_local(),
        IpAddr::V6(a) => within(IpAddr::V6(a), v6([0xfe80, 0, 0, 0, 0, 0, 0, 0]), 10),
    };
    let link_local_multicast = match ip {
        IpAddr::V4(a) => within(IpAddr::V4(a), v4(224, 0, 0, 0), 24),
        IpAddr::V6(a) => within(IpAddr::V6(a), v6([0xff02, 0, 0, 0, 0, 0, 0, 0]), 16),
    };
    let broadcast = ip == v4(255, 255, 255, 255);
    match flag {
        "unspecified" => ip.is_unspecified(),
        "link-local unicast" => link_local_unicast,
        "link-local multicast" => link_local_multicast,
        "global unicast" => {
            !(ip.is_unspecified() || ip.is_loopback() || ip.is_multicast() || link_local_unicast || broadcast)
        }
        _ => false,
    }
}
