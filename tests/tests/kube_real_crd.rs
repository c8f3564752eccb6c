//! The CRDs `census crd` prints, on a real kube-apiserver (Debian's kubernetes source, v1.20.2,
//! built by scripts/kube-build.sh; see tests/src/kube_real.rs): accepted as structural and
//! Established; the server itself validates what the README's tables promise, applies the
//! defaults, prunes unknown fields; the status subresource keeps spec and status apart.

use census_e2e::kube_real::{ADMIN_TOKEN, KubeApi, create, install_crds, resources_url, send};
use serde_json::{Value, json};

fn kv_entry(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "census.dev/v1alpha1", "kind": "KVEntry", "metadata": {"name": name, "namespace": "default"}, "spec": spec})
}

fn service(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "census.dev/v1alpha1", "kind": "Service", "metadata": {"name": name, "namespace": "default"}, "spec": spec})
}

#[tokio::test(flavor = "multi_thread")]
async fn the_crds_validate_default_and_prune_on_a_real_api_server() {
    let api = KubeApi::start().await;
    let admin = api.client(ADMIN_TOKEN);
    install_crds(&api, &admin).await;

    // Valid objects are stored with their defaults; unknown fields are pruned.
    let (code, kv) =
        create(&api, &admin, &kv_entry("plain", json!({"key": "app/x", "value": "1", "colour": "red"})))
            .await;
    assert_eq!(code, 201, "{kv:#}");
    assert_eq!(kv["spec"]["deletionPolicy"], "Delete", "default applied: {kv:#}");
    assert_eq!(kv["spec"]["flags"], 0, "default applied: {kv:#}");
    assert!(kv["spec"].get("colour").is_none(), "unknown field pruned: {kv:#}");
    let spec = json!({"port": 8080, "endpoints": [{"address": "10.0.0.1"}, {"address": "10.0.0.2", "port": 9090}],
                      "selector": {"app": "web"}, "tags": ["v1"], "meta": {"team": "a"},
                      "check": {"http": "/healthz", "interval": "5s"}});
    let (code, svc) = create(&api, &admin, &service("web", spec.clone())).await;
    assert_eq!(code, 201, "{svc:#}");
    assert_eq!(svc["spec"], spec, "a valid Service is stored as written");

    // Invalid objects are refused by the server, naming the field (1.20 names a list item's field
    // without its index); nothing is stored.
    let refused = [
        (service("bad-port", json!({"port": 70000})), "spec.port"),
        (service("bad-endpoint", json!({"endpoints": [{"port": 80}]})), "spec.endpoints.address"),
        (
            service("bad-endpoint-port", json!({"endpoints": [{"address": "a", "port": 0}]})),
            "spec.endpoints.port",
        ),
        (kv_entry("no-key", json!({"value": "x"})), "spec.key"),
        (kv_entry("bad-policy", json!({"key": "k", "deletionPolicy": "Keep"})), "spec.deletionPolicy"),
        (kv_entry("big-flags", json!({"key": "k", "flags": 4294967296u64})), "spec.flags"),
        (
            kv_entry(
                "ref-without-key",
                json!({"key": "k", "valueFrom": {"configMapKeyRef": {"name": "cm"}}}),
            ),
            "spec.valueFrom.configMapKeyRef.key",
        ),
        (kv_entry("no-spec", Value::Null), "spec"),
    ];
    for (obj, field) in refused {
        let name = obj["metadata"]["name"].as_str().unwrap_or_default().to_string();
        let (code, body) = create(&api, &admin, &obj).await;
        assert_eq!(code, 422, "{name} must be refused: {body:#}");
        let message = body["message"].as_str().unwrap_or_default();
        assert!(message.contains(field), "{name}: the refusal names {field}: {message}");
        let url = resources_url(
            &api,
            "census.dev/v1alpha1",
            &census_e2e::kube_real::plural_of(obj["kind"].as_str().unwrap_or_default()),
            Some("default"),
        );
        let (code, _) = send(admin.get(format!("{url}/{name}"))).await;
        assert_eq!(code, 404, "{name} was not stored");
    }

    // The status subresource: status in a create or spec update is ignored; /status changes only
    // status; the generation counts spec changes only.
    let url = resources_url(&api, "census.dev/v1alpha1", "kventries", Some("default"));
    let mut with_status = kv_entry("with-status", json!({"key": "app/y", "value": "1"}));
    with_status["status"] = json!({"key": "forged"});
    let (code, created) = create(&api, &admin, &with_status).await;
    assert_eq!(code, 201, "{created:#}");
    assert!(created["status"]["key"].is_null(), "status ignored on create: {created:#}");
    let merge = |body: Value| body.to_string();
    let (code, patched) = send(
        admin
            .patch(format!("{url}/with-status/status"))
            .header("content-type", "application/merge-patch+json")
            .body(merge(json!({"status": {"key": "app/y", "modifyIndex": 7}, "spec": {"value": "sneaked"}}))),
    )
    .await;
    assert_eq!(code, 200, "{patched:#}");
    assert_eq!(
        (patched["status"]["modifyIndex"].as_u64(), patched["spec"]["value"].as_str()),
        (Some(7), Some("1"))
    );
    assert_eq!(patched["metadata"]["generation"], 1, "a status change is no new generation");
    let (code, patched) = send(
        admin
            .patch(format!("{url}/with-status"))
            .header("content-type", "application/merge-patch+json")
            .body(merge(json!({"spec": {"value": "2"}, "status": {"modifyIndex": 1}}))),
    )
    .await;
    assert_eq!(code, 200, "{patched:#}");
    assert_eq!(patched["metadata"]["generation"], 2, "a spec change is a new generation");
    assert_eq!(patched["status"]["modifyIndex"], 7, "status untouched by a spec update: {patched:#}");
}
