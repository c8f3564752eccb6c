use super::*;

fn addr(name: &str, ip: &str, prefix: u8, default: bool) -> IfAddr {
    let ip: IpAddr = ip.parse().expect("ip");
    let mut flags = vec!["up", "multicast"];
    if name == "lo" {
        flags = vec!["up", "loopback"];
    }
    IfAddr { name: name.into(), ip, prefix, flags, default }
}

/// A host with loopback, a private default interface (v4 and v6 link-local), a public address on
/// a second interface and a down one.
fn host() -> Vec<IfAddr> {
    vec![
        addr("lo", "127.0.0.1", 8, false),
        addr("lo", "::1", 128, false),
        addr("eth0", "10.1.2.3", 16, true),
        addr("eth0", "fe80::1", 64, true),
        addr("eth1", "203.0.114.7", 24, false),
        addr("eth0", "198.19.0.5", 24, true),
        IfAddr { flags: vec!["broadcast"], ..addr("eth2", "192.168.9.9", 24, false) },
    ]
}

fn eval(expr: &str) -> String {
    match evaluate(expr, host()) {
        Ok(Value::String(s)) => s.to_string(),
        other => panic!("{expr}: {other:?}"),
    }
}

#[test]
fn the_helpers_pick_addresses_as_go_sockaddr_does() {
    // Private: RFC 6890 and forwardable, on a default-route interface; IPv4 first.
    assert_eq!(eval("GetPrivateIP"), "10.1.2.3");
    assert_eq!(eval("GetPrivateIPs"), "10.1.2.3 198.19.0.5");
    // Public: none on the default interface (eth1's address is public but has no default route).
    assert_eq!(eval("GetPublicIP"), "");
    assert_eq!(eval(r#"GetInterfaceIP "eth1""#), "203.0.114.7");
    // Loopback is not forwardable, as in go-sockaddr.
    assert_eq!(eval(r#"GetInterfaceIP "lo""#), "");
}

#[test]
fn pipelines_filter_sort_and_extract() {
    assert_eq!(eval(r#"GetAllInterfaces | include "name" "^lo$" | attr "address""#), "127.0.0.1");
    assert_eq!(eval(r#"GetAllInterfaces | include "type" "IPv6" | join "address" " ""#), "::1 fe80::1");
    assert_eq!(
        eval(r#"GetAllInterfaces | exclude "flag" "loopback" | include "rfc" "1918" | join "string" ",""#),
        "10.1.2.3/16,192.168.9.9/24"
    );
    assert_eq!(eval(r#"GetAllInterfaces | include "flag" "down" | attr "name""#), "eth2");
    assert_eq!(eval(r#"GetAllInterfaces | include "network" "10.1.0.0/16" | attr "network""#), "10.1.0.0/16");
    assert_eq!(
        eval(r#"GetAllInterfaces | include "type" "ipv4" | sort "-address" | limit 2 | join "address" " ""#),
        "203.0.114.7 198.19.0.5"
    );
    assert_eq!(
        eval(r#"GetAllInterfaces | include "type" "ipv4" | offset -1 | attr "address""#),
        "192.168.9.9"
    );
    assert_eq!(eval(r#"GetDefaultInterfaces | unique "name" | join "name" " ""#), "eth0");
    assert_eq!(eval(r#"GetAllInterfaces | include "flag" "link-local unicast" | attr "address""#), "fe80::1");
    assert_eq!(eval(r#"GetAllInterfaces | include "name" "eth0" | attr "size""#), "65536");
}

#[test]
fn mistakes_are_errors_that_say_what() {
    for (expr, says) in [
        (r#"GetAllInterfaces | include "colour" "red""#, "unsupported kind"),
        (r#"GetAllInterfaces | include "rfc" "9999""#, "unsupported RFC"),
        (r#"GetAllInterfaces | attr "colour""#, "unsupported attribute"),
        (r#"GetAllInterfaces | sort "colour""#, "unsupported key"),
        ("GetNothing", "GetNothing"),
    ] {
        let e = evaluate(expr, host()).expect_err(expr).to_string();
        assert!(e.contains(says), "{expr}: {e}");
    }
}

#[test]
fn this_hosts_loopback_is_found() {
    let found = host_addresses();
    assert!(
        found
            .iter()
            .any(|a| a.name == "lo" && a.ip.to_string() == "127.0.0.1" && a.flags.contains(&"loopback")),
        "{found:?}"
    );
    let Ok(Value::String(s)) = sockaddr(&[string(
        r#"GetAllInterfaces | include "name" "^lo$" | include "type" "ipv4" | attr "address""#,
    )]) else {
        panic!("sockaddr failed")
    };
    assert_eq!(&*s, "127.0.0.1");
}
