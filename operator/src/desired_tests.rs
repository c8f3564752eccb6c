use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Pod, PodCondition, PodStatus};
use kube::api::ObjectMeta;

use super::*;
use crate::crd::{Endpoint, KVEntrySpec, KeyRef, ServiceCheck, ServiceSpec, ValueFrom};

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

pub fn pod(name: &str, app: &str, ip: &str, ready: bool) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("default".into()),
            labels: Some(labels(&[("app", app)])),
            ..Default::default()
        },
        status: Some(PodStatus {
            phase: Some("Running".into()),
            pod_ip: Some(ip.into()),
            conditions: Some(vec![PodCondition {
                type_: "Ready".into(),
                status: if ready { "True" } else { "False" }.into(),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn web() -> ServiceSpec {
    ServiceSpec {
        tags: vec!["v1".into()],
        port: Some(8080),
        selector: Some(labels(&[("app", "web")])),
        ..Default::default()
    }
}

#[test]
fn selected_pods_become_instances_with_their_readiness_and_the_owner_in_meta() {
    let plan = plan_service(&web(), "default", "web").expect("valid");
    let pods = [
        pod("web-1", "web", "10.0.0.1", true),
        pod("web-2", "web", "10.0.0.2", false),
        pod("db-1", "db", "10.0.0.3", true),
    ];
    let got = plan.instances(&pods);
    assert_eq!(
        got.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(),
        ["default-web-web-1", "default-web-web-2"]
    );
    assert_eq!(got[0].address, "10.0.0.1");
    assert_eq!(got[0].port, 8080);
    assert_eq!(got[0].pod_ready, Some(true));
    assert_eq!(got[1].pod_ready, Some(false));
    assert_eq!(got[0].meta.get("census-owner").map(String::as_str), Some("default/web"));
    assert_eq!(got[0].meta.get("external-source").map(String::as_str), Some("kubernetes"));
    assert_eq!(got[0].service, "web");
}

#[test]
fn pods_without_ip_finished_or_terminating_are_left_out() {
    let plan = plan_service(&web(), "default", "web").expect("valid");
    let mut no_ip = pod("a", "web", "", true);
    if let Some(s) = no_ip.status.as_mut() {
        s.pod_ip = None;
    }
    let mut done = pod("b", "web", "10.0.0.2", false);
    if let Some(s) = done.status.as_mut() {
        s.phase = Some("Succeeded".into());
    }
    let mut leaving = pod("c", "web", "10.0.0.3", true);
    leaving.metadata.deletion_timestamp =
        Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::now()));
    assert!(plan.instances(&[no_ip, done, leaving]).is_empty());
}

#[test]
fn static_endpoints_take_their_port_or_the_spec_port_and_a_check_per_address() {
    let spec = ServiceSpec {
        name: Some("db".into()),
        port: Some(5432),
        endpoints: vec![
            Endpoint { address: "10.1.0.1".into(), port: None },
            Endpoint { address: "db.example.com".into(), port: Some(6432) },
        ],
        check: Some(ServiceCheck {
            http: Some("healthz".into()),
            interval: Some("5s".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let plan = plan_service(&spec, "prod", "database").expect("valid");
    let got = plan.instances(&[]);
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].id, "prod-database-10.1.0.1-5432");
    assert_eq!(got[0].service, "db");
    assert_eq!(got[0].pod_ready, None);
    let check = got[1].check.clone().expect("check");
    assert_eq!(check.probe, Probe::Http { url: "http://db.example.com:6432/healthz".into() });
    assert_eq!(check.interval, Duration::from_secs(5));
    assert_eq!(check.timeout, Duration::from_secs(5));
}

#[test]
fn invalid_specs_name_their_reason() {
    let reason = |spec: ServiceSpec| plan_service(&spec, "default", "web").err().map(|e| e.reason);
    assert_eq!(reason(ServiceSpec { name: Some("bad name".into()), ..web() }), Some("InvalidName"));
    assert_eq!(reason(ServiceSpec { selector: None, ..web() }), Some("NoInstanceSource"));
    assert_eq!(reason(ServiceSpec { port: None, ..web() }), Some("MissingPort"));
    assert_eq!(reason(ServiceSpec { selector: Some(BTreeMap::new()), ..web() }), Some("InvalidSelector"));
    assert_eq!(reason(ServiceSpec { meta: labels(&[("census-owner", "x")]), ..web() }), Some("ReservedMeta"));
    let two = ServiceCheck { http: Some("/".into()), tcp: Some(true), ..Default::default() };
    assert_eq!(reason(ServiceSpec { check: Some(two), ..web() }), Some("InvalidCheck"));
    let bad_interval = ServiceCheck { tcp: Some(true), interval: Some("soon".into()), ..Default::default() };
    assert_eq!(reason(ServiceSpec { check: Some(bad_interval), ..web() }), Some("InvalidCheck"));
}

#[test]
fn key_sources() {
    let inline = KVEntrySpec { key: "app/config".into(), value: Some("x".into()), ..Default::default() };
    assert_eq!(plan_key(&inline), Ok(ValueSource::Inline(b"x".to_vec())));
    let from_cm = KVEntrySpec {
        key: "app/config".into(),
        value_from: Some(ValueFrom {
            config_map_key_ref: Some(KeyRef { name: "cm".into(), key: "k".into() }),
            secret_key_ref: None,
        }),
        ..Default::default()
    };
    assert_eq!(plan_key(&from_cm), Ok(ValueSource::ConfigMap { name: "cm".into(), key: "k".into() }));
    let both = KVEntrySpec { value: Some("x".into()), ..from_cm };
    assert_eq!(plan_key(&both).err().map(|e| e.reason), Some("InvalidValueSource"));
    let slash = KVEntrySpec { key: "/abs".into(), value: Some("x".into()), ..Default::default() };
    assert_eq!(plan_key(&slash).err().map(|e| e.reason), Some("InvalidKey"));
    let big =
        KVEntrySpec { key: "k".into(), value: Some("x".repeat(MAX_VALUE_BYTES + 1)), ..Default::default() };
    assert_eq!(plan_key(&big).err().map(|e| e.reason), Some("ValueTooLarge"));
}
