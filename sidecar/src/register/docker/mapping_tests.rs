use super::*;

fn rules(internal: bool) -> HostRules {
    HostRules {
        hostname: "dock1".into(),
        internal,
        ip: None,
        tags: vec![],
        deregister: Deregister::Always,
        check_interval: Duration::from_secs(10),
        check_timeout: Duration::from_secs(5),
    }
}

fn web() -> ContainerView {
    ContainerView {
        id: "0123456789abcdef0123".into(),
        name: "demo-web-1".into(),
        image: "registry.local:5000/demo/helloworld:latest".into(),
        running: true,
        settings: BTreeMap::from([
            ("SERVICE_80_NAME".to_string(), "my-web-server".to_string()),
            ("SERVICE_TAGS".to_string(), "backend-1, blue".to_string()),
            ("SERVICE_REGION".to_string(), "eu".to_string()),
        ]),
        exposed: vec![(80, "tcp".into())],
        published: vec![Published {
            container_port: 80,
            proto: "tcp".into(),
            host_ip: "0.0.0.0".into(),
            host_port: 32768,
        }],
        networks: BTreeMap::from([("demo_default".to_string(), "172.20.0.5".to_string())]),
        ..Default::default()
    }
}

#[test]
fn internal_registers_the_exposed_port_on_the_container_ip_as_the_seed_demo_does() {
    let planned = plan(&web(), &rules(true));
    assert_eq!(planned.len(), 1);
    let i = &planned[0].instance;
    assert_eq!(i.id, "dock1:demo-web-1:80");
    assert_eq!(i.name, "my-web-server");
    assert_eq!((i.address.as_str(), i.port), ("172.20.0.5", 80));
    assert_eq!(i.tags, vec!["backend-1", "blue"]);
    assert_eq!(i.meta.get("region").map(String::as_str), Some("eu"));
    assert_eq!(i.meta.get("docker-container").map(String::as_str), Some("0123456789ab"));
    assert_eq!(i.status.health, Health::Passing);
    assert!(planned[0].probe.is_none());
}

#[test]
fn published_ports_need_an_address_from_ip_or_the_binding() {
    assert!(plan(&web(), &rules(false)).is_empty(), "0.0.0.0 binding and no -ip: nothing routable");
    let mut r = rules(false);
    r.ip = Some("192.168.1.10".into());
    let planned = plan(&web(), &r);
    assert_eq!((planned[0].instance.address.as_str(), planned[0].instance.port), ("192.168.1.10", 32768));
    let mut c = web();
    c.published[0].host_ip = "10.0.0.7".into();
    assert_eq!(plan(&c, &rules(false))[0].instance.address, "10.0.0.7");
}

#[test]
fn several_ports_get_port_suffixed_names_and_udp_ids() {
    let mut c = web();
    c.settings.clear();
    c.exposed = vec![(53, "udp".into()), (8080, "tcp".into())];
    let names: Vec<(String, String)> =
        plan(&c, &rules(true)).into_iter().map(|p| (p.instance.name, p.instance.id)).collect();
    assert_eq!(
        names,
        vec![
            ("helloworld-53".to_string(), "dock1:demo-web-1:53:udp".to_string()),
            ("helloworld-8080".to_string(), "dock1:demo-web-1:8080".to_string()),
        ]
    );
}

#[test]
fn ignore_and_stopped_containers_give_nothing() {
    let mut c = web();
    c.settings.insert("SERVICE_IGNORE".into(), "true".into());
    assert!(plan(&c, &rules(true)).is_empty());
    let mut c = web();
    c.settings.insert("SERVICE_80_IGNORE".into(), "1".into());
    assert!(plan(&c, &rules(true)).is_empty());
    let mut c = web();
    c.running = false;
    c.exit_code = 1;
    assert!(plan(&c, &rules(true)).is_empty());
}

#[test]
fn on_success_keeps_a_failed_container_as_critical() {
    let mut c = web();
    c.running = false;
    c.exit_code = 137;
    let mut r = rules(true);
    r.deregister = Deregister::OnSuccess;
    let planned = plan(&c, &r);
    assert_eq!(planned[0].instance.status.health, Health::Critical);
    assert!(planned[0].instance.status.output.contains("137"));
    c.exit_code = 0;
    assert!(plan(&c, &r).is_empty());
}

#[test]
fn docker_healthcheck_is_the_status_and_checks_become_probes() {
    let mut c = web();
    c.health = Some(("unhealthy".into(), "curl: connection refused".into()));
    c.settings.insert("SERVICE_CHECK_HTTP".into(), "health".into());
    c.settings.insert("SERVICE_CHECK_INTERVAL".into(), "2s".into());
    let planned = plan(&c, &rules(true));
    let i = &planned[0].instance;
    assert_eq!(i.status.health, Health::Critical);
    assert_eq!(i.check_name.as_deref(), Some("Docker HEALTHCHECK and HTTP GET http://172.20.0.5:80/health"));
    let (probe, interval, _) = planned[0].probe.clone().expect("probe");
    assert_eq!(probe, Probe::Http { url: "http://172.20.0.5:80/health".into() });
    assert_eq!(interval, Duration::from_secs(2));
    c.health = Some(("starting".into(), String::new()));
    assert_eq!(plan(&c, &rules(true))[0].instance.status.health, Health::Critical);
    c.health = Some(("healthy".into(), "ok".into()));
    assert_eq!(plan(&c, &rules(true))[0].instance.status.health, Health::Passing);
}

#[test]
fn service_network_chooses_the_address() {
    let mut c = web();
    c.networks.insert("backend".into(), "10.9.0.2".into());
    c.settings.insert("SERVICE_NETWORK".into(), "demo_default".into());
    assert_eq!(plan(&c, &rules(true))[0].instance.address, "172.20.0.5");
    c.settings.insert("SERVICE_NETWORK".into(), "backend".into());
    assert_eq!(plan(&c, &rules(true))[0].instance.address, "10.9.0.2");
}

#[test]
fn combine_keeps_the_worse_status() {
    let ok = Status::new(Health::Passing, "ok");
    let warn = Status::new(Health::Warning, "slow");
    let bad = Status::new(Health::Critical, "down");
    assert_eq!(combine(&ok, &warn), warn);
    assert_eq!(combine(&bad, &ok), bad);
    assert_eq!(combine(&warn, &bad).health, Health::Critical);
}
