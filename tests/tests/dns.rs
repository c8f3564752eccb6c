//! The DNS interface of real agents, asked with `dig` (Debian dnsutils) and hickory's resolver.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use census_client::Client;
use census_e2e::{Cluster, dig, eventually, put, single_server};
use hickory_resolver::config::{NameServerConfigGroup, ResolverConfig, ResolverOpts};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::rr::RecordType;
use hickory_resolver::{ResolveError, TokioResolver};

/// Registers `service` (ID `id`) on node `node` at `addr` through the catalog API, with one check.
async fn register(client: &Client, node: &str, addr: &str, service: serde_json::Value, status: &str) {
    let id = service["ID"].as_str().unwrap_or_default().to_string();
    let body = serde_json::json!({
        "Node": node, "Address": addr, "NodeMeta": {"rack": "r1"},
        "Service": service,
        "Check": {"CheckID": format!("check-{id}"), "Name": "probe", "Status": status, "ServiceID": id},
    });
    put(client, "/v1/catalog/register", Some(body)).await;
}

fn lines(text: &str) -> BTreeSet<String> {
    text.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn resolver(port: u16) -> TokioResolver {
    let servers = NameServerConfigGroup::from_ips_clear(&[IpAddr::V4(Ipv4Addr::LOCALHOST)], port, true);
    let mut opts = ResolverOpts::default();
    opts.cache_size = 0;
    opts.attempts = 1;
    opts.timeout = Duration::from_secs(2);
    TokioResolver::builder_with_config(
        ResolverConfig::from_parts(None, vec![], servers),
        TokioConnectionProvider::default(),
    )
    .with_options(opts)
    .build()
}

fn is_nxdomain(e: &ResolveError) -> bool {
    e.proto().is_some_and(|p| p.is_nx_domain())
}

/// Instances of `big`: their A records overflow 512 bytes and EDNS's usual 1232.
const BIG: usize = 100;

async fn web_fixture(client: &Client) {
    use serde_json::json;
    register(
        client,
        "n1",
        "10.1.0.1",
        json!({"ID": "web1", "Service": "web", "Tags": ["rails"], "Port": 8080}),
        "passing",
    )
    .await;
    register(
        client,
        "n2",
        "10.1.0.2",
        json!({"ID": "web2", "Service": "web", "Port": 8081, "Weights": {"Passing": 5, "Warning": 1}}),
        "passing",
    )
    .await;
    register(client, "n3", "10.1.0.3", json!({"ID": "web3", "Service": "web", "Port": 8082}), "critical")
        .await;
    register(client, "n4", "10.1.0.4", json!({"ID": "web4", "Service": "web", "Port": 8083}), "warning")
        .await;
    register(
        client,
        "n5",
        "10.1.0.5",
        json!({"ID": "c1", "Service": "critical-only", "Port": 1}),
        "critical",
    )
    .await;
    for i in 0..BIG {
        let node = format!("big{i}");
        let addr = format!("10.2.{}.{}", i / 200, i % 200 + 1);
        register(client, &node, &addr, json!({"ID": "big", "Service": "big", "Port": 80}), "passing").await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn dig_gets_every_record_kind() {
    let (agent, _dir) = single_server("dns-dig", &[]).await;
    web_fixture(&agent.client()).await;
    let p = agent.dns_port;

    // A: critical excluded, warning included; names are case-insensitive.
    let healthy = set(&["10.1.0.1", "10.1.0.2", "10.1.0.4"]);
    assert_eq!(lines(&dig(p, &["+short", "web.service.consul"])), healthy);
    assert_eq!(lines(&dig(p, &["+short", "WEB.Service.Consul"])), healthy);
    // Tag, and RFC 2782 with a tag and with _tcp (no tag filter).
    assert_eq!(lines(&dig(p, &["+short", "rails.web.service.consul"])), set(&["10.1.0.1"]));
    assert_eq!(
        lines(&dig(p, &["+short", "_web._rails.service.consul", "SRV"])),
        set(&["1 1 8080 n1.node.dc1.consul."])
    );
    assert_eq!(lines(&dig(p, &["+short", "_web._tcp.service.dc1.consul", "SRV"])).len(), 3);

    // SRV: weight from Weights, target the node, its A record in the additional section.
    let srv = dig(p, &["+noall", "+answer", "+additional", "web.service.consul", "SRV"]);
    assert!(srv.lines().any(|l| l.ends_with("SRV\t1 5 8081 n2.node.dc1.consul.")), "{srv}");
    assert!(srv.lines().any(|l| l.starts_with("n2.node.dc1.consul.") && l.ends_with("A\t10.1.0.2")), "{srv}");

    // Node: A and TXT from node meta; PTR back to the node.
    assert_eq!(lines(&dig(p, &["+short", "n1.node.consul"])), set(&["10.1.0.1"]));
    assert_eq!(lines(&dig(p, &["+short", "n1.node.consul", "TXT"])), set(&["\"rack=r1\""]));
    assert_eq!(lines(&dig(p, &["+short", "-x", "10.1.0.1"])), set(&["n1.node.dc1.consul."]));

    // SOA at the apex is an answer (Consul says NXDOMAIN).
    let soa = dig(p, &["+noall", "+comments", "+answer", "consul.", "SOA"]);
    assert!(soa.contains("status: NOERROR") && soa.contains("\tSOA\t"), "{soa}");
    // No such service: NXDOMAIN with the SOA for negative caching.
    let nx = dig(p, &["+noall", "+comments", "+authority", "nope.service.consul"]);
    assert!(nx.contains("status: NXDOMAIN") && nx.contains("\tSOA\t"), "{nx}");
    // The name exists without AAAA records: NOERROR, no answer, SOA in authority.
    let nodata = dig(p, &["+noall", "+comments", "+authority", "web.service.consul", "AAAA"]);
    assert!(nodata.contains("status: NOERROR") && nodata.contains("ANSWER: 0"), "{nodata}");
    assert!(nodata.contains("\tSOA\t"), "{nodata}");
    // Only critical instances: NXDOMAIN, not an empty answer.
    let crit = dig(p, &["+noall", "+comments", "critical-only.service.consul"]);
    assert!(crit.contains("status: NXDOMAIN"), "{crit}");

    // 100 A records do not fit in 512 bytes: TC is set, and dig's TCP retry gets all of them.
    let udp = dig(p, &["+noedns", "+ignore", "+noall", "+comments", "big.service.consul"]);
    let flags = udp.lines().find(|l| l.contains("flags:")).unwrap_or_default();
    assert!(flags.contains(" tc"), "no TC flag: {udp}");
    assert_eq!(lines(&dig(p, &["+noedns", "+short", "big.service.consul"])).len(), BIG);
}

#[tokio::test(flavor = "multi_thread")]
async fn hickory_resolver_reads_services_nodes_and_falls_back_to_tcp() {
    let (agent, _dir) = single_server("dns-hickory", &[]).await;
    web_fixture(&agent.client()).await;
    let r = resolver(agent.dns_port);

    let ips: BTreeSet<IpAddr> = r.lookup_ip("web.service.consul.").await.expect("web").iter().collect();
    let want: BTreeSet<IpAddr> =
        ["10.1.0.1", "10.1.0.2", "10.1.0.4"].iter().map(|s| s.parse().expect("ip")).collect();
    assert_eq!(ips, want);

    let srv = r.srv_lookup("_web._rails.service.consul.").await.expect("srv");
    let targets: Vec<(u16, String)> = srv.iter().map(|s| (s.port(), s.target().to_string())).collect();
    assert_eq!(targets, [(8080, "n1.node.dc1.consul.".to_string())]);

    let txt = r.txt_lookup("n1.node.consul.").await.expect("txt");
    assert_eq!(txt.iter().map(|t| t.to_string()).collect::<Vec<_>>(), ["rack=r1"]);

    let ptr = r.reverse_lookup("10.1.0.2".parse().expect("ip")).await.expect("ptr");
    assert_eq!(ptr.iter().map(|n| n.to_string()).collect::<Vec<_>>(), ["n2.node.dc1.consul."]);

    let soa = r.lookup("consul.", RecordType::SOA).await.expect("soa");
    assert_eq!(soa.record_iter().next().map(|r| r.record_type()), Some(RecordType::SOA));

    let err = r.lookup_ip("nope.service.consul.").await.expect_err("nxdomain");
    assert!(is_nxdomain(&err), "{err}");
    let err = r.lookup("web.service.consul.", RecordType::AAAA).await.expect_err("nodata");
    assert!(!is_nxdomain(&err) && err.is_no_records_found(), "{err}");

    // 100 A records overflow the UDP answer: the resolver sees TC and asks again over TCP.
    let big = r.lookup_ip("big.service.consul.").await.expect("big");
    assert_eq!(big.iter().count(), BIG, "all instances, over TCP after a truncated UDP answer");
}

/// Polls DNS until `want` says yes; returns how long it took.
async fn time_until(
    r: &TokioResolver,
    name: &str,
    want: impl Fn(&Result<usize, ResolveError>) -> bool,
) -> Duration {
    let start = Instant::now();
    eventually(Duration::from_secs(1), name, || async {
        let answer = r.lookup_ip(name).await.map(|l| l.iter().count());
        want(&answer).then_some(())
    })
    .await;
    start.elapsed()
}

#[tokio::test(flavor = "multi_thread")]
async fn critical_instance_leaves_dns_within_a_second() {
    let (agent, _dir) = single_server("dns-health", &[]).await;
    let client = agent.client();
    let body = serde_json::json!({"ID": "api1", "Name": "api", "Port": 9000, "Check": {"CheckID": "api-ttl", "TTL": "30s"}});
    put(&client, "/v1/agent/service/register", Some(body)).await;
    let r = resolver(agent.dns_port);
    // A TTL check starts critical: the service is not answered.
    let err = r.lookup_ip("api.service.consul.").await.expect_err("critical at first");
    assert!(is_nxdomain(&err), "{err}");
    put(&client, "/v1/agent/check/pass/api-ttl", None).await;
    time_until(&r, "api.service.consul.", |a| matches!(a, Ok(1))).await;
    put(&client, "/v1/agent/check/fail/api-ttl", None).await;
    let took = time_until(&r, "api.service.consul.", |a| a.as_ref().is_err_and(is_nxdomain)).await;
    println!("critical → gone from DNS after {took:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn registration_is_answered_on_every_server_within_a_second() {
    let cluster = Cluster::start(3).await;
    let client = cluster.agents[0].client();
    let service = serde_json::json!({"ID": "pay1", "Service": "payments", "Port": 7000});
    register(&client, "pay-node", "10.3.0.1", service, "passing").await;
    let registered = Instant::now();
    for agent in &cluster.agents {
        let r = resolver(agent.dns_port);
        time_until(&r, "payments.service.consul.", |a| matches!(a, Ok(1))).await;
    }
    println!("registered → answered by all three servers after {:?}", registered.elapsed());
    assert!(registered.elapsed() < Duration::from_secs(1), "took {:?}", registered.elapsed());
}

#[tokio::test(flavor = "multi_thread")]
async fn recursors_alt_domain_and_service_ttls_from_config() {
    // The upstream is itself a census agent, answering for the domain `upstream.`.
    let (upstream, _up_dir) = single_server("dns-up", &["-domain=upstream"]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("dns.json");
    let settings = r#"{"alt_domain": "census", "dns_config": {"service_ttl": {"*": "7s", "db": "1m"}}}"#;
    std::fs::write(&config, settings).expect("config");
    let recursor = format!("-recursor=127.0.0.1:{}", upstream.dns_port);
    let config_file = format!("-config-file={}", config.display());
    let (agent, _dir) = single_server("dns-recursing", &[&recursor, &config_file]).await;
    use serde_json::json;
    register(
        &agent.client(),
        "n1",
        "10.4.0.1",
        json!({"ID": "web1", "Service": "web", "Port": 80}),
        "passing",
    )
    .await;
    register(
        &agent.client(),
        "n2",
        "10.4.0.2",
        json!({"ID": "db1", "Service": "db", "Port": 5432}),
        "passing",
    )
    .await;
    register(
        &upstream.client(),
        "u1",
        "10.5.0.1",
        json!({"ID": "far1", "Service": "far", "Port": 80}),
        "passing",
    )
    .await;
    let p = agent.dns_port;

    // The alt domain answers under the name asked; TTLs follow service_ttl (exact name over "*").
    let web = dig(p, &["+noall", "+answer", "web.service.census"]);
    assert_eq!(
        web.split_whitespace().collect::<Vec<_>>(),
        ["web.service.census.", "7", "IN", "A", "10.4.0.1"]
    );
    let db = dig(p, &["+noall", "+answer", "db.service.consul"]);
    assert!(db.split_whitespace().nth(1) == Some("60"), "{db}");

    // A name outside both domains goes to the recursor, which answers it from its own catalog.
    assert_eq!(lines(&dig(p, &["+short", "far.service.upstream"])), set(&["10.5.0.1"]));
    assert_eq!(lines(&dig(p, &["+short", "+tcp", "far.service.upstream"])), set(&["10.5.0.1"]));
    // The upstream has no recursors of its own: it refuses, and census passes that on.
    let refused = dig(upstream.dns_port, &["+noall", "+comments", "example.com"]);
    assert!(refused.contains("status: REFUSED"), "{refused}");
}
