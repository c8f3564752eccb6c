//! `PUT /v1/txn`: Consul's transaction endpoint.

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Value, json};

use super::AppState;
use super::authz::Authz;
use super::authz_records::{check_deregistration, check_registration, may_read_check};
use super::convert;
use super::decode::{MAX_BODY, json_field as field, read_body};
use super::error::{ApiError, ApiResult};
use crate::acl::{Access, Resource};
use crate::catalog::txn::{CatalogVerb, KvVerb, MAX_TXN_OPS, RegisterTarget, TxnOp, TxnResult};
use crate::catalog::{CatalogState, Command, CommandResult};

fn text(obj: &Value, name: &str) -> String {
    field(obj, name).and_then(Value::as_str).unwrap_or_default().to_string()
}

fn number(obj: &Value, name: &str) -> u64 {
    field(obj, name).and_then(Value::as_u64).unwrap_or(0)
}

fn kv_verb(verb: &str) -> Option<KvVerb> {
    Some(match verb {
        "set" => KvVerb::Set,
        "cas" => KvVerb::Cas,
        "lock" => KvVerb::Lock,
        "unlock" => KvVerb::Unlock,
        "get" => KvVerb::Get,
        "get-or-empty" => KvVerb::GetOrEmpty,
        "get-tree" => KvVerb::GetTree,
        "check-index" => KvVerb::CheckIndex,
        "check-session" => KvVerb::CheckSession,
        "check-not-exists" => KvVerb::CheckNotExists,
        "delete" => KvVerb::Delete,
        "delete-tree" => KvVerb::DeleteTree,
        "delete-cas" => KvVerb::DeleteCas,
        _ => return None,
    })
}

fn catalog_verb(verb: &str, what: &str) -> Result<CatalogVerb, String> {
    match verb {
        "get" => Ok(CatalogVerb::Get),
        "delete" => Ok(CatalogVerb::Delete),
        "delete-cas" => Ok(CatalogVerb::DeleteCas),
        other => Err(format!("unknown {what} verb {other:?}")),
    }
}

/// `value` without the fields a read answer carries but a registration does not take.
fn writable(value: &Value, drop: &[&str]) -> Value {
    let mut value = value.clone();
    if let Some(obj) = value.as_object_mut() {
        for name in ["CreateIndex", "ModifyIndex"].iter().chain(drop) {
            obj.remove(*name);
        }
    }
    value
}

/// A node, service or check `set`/`cas`, checked as `/v1/catalog/register` checks its body.
fn register_op(kind: &str, op: &Value, verb: &str, datacenter: &str) -> Result<TxnOp, String> {
    let entity = field(op, kind).cloned().unwrap_or_default();
    let index = number(&entity, "ModifyIndex");
    let (body, target) = match kind {
        "Node" => {
            let mut body = json!({"Node": text(&entity, "Node"), "ID": text(&entity, "ID"),
                                  "Address": text(&entity, "Address")});
            if let Some(tagged) = field(&entity, "TaggedAddresses") {
                body["TaggedAddresses"] = tagged.clone();
            }
            if let Some(meta) = field(&entity, "Meta") {
                body["NodeMeta"] = meta.clone();
            }
            (body, RegisterTarget::Node)
        }
        "Service" => {
            let mut service = writable(&entity, &["Service", "Datacenter"]);
            if field(&service, "Name").is_none() {
                service["Name"] = json!(text(&entity, "Service"));
            }
            let id = match text(&entity, "ID") {
                id if id.is_empty() => text(&service, "Name"),
                id => id,
            };
            (
                json!({"Node": text(op, "Node"), "SkipNodeUpdate": true, "Service": service}),
                RegisterTarget::Service(id),
            )
        }
        _ => {
            let check = writable(&entity, &["Node", "Definition", "Type", "ServiceName", "ServiceTags"]);
            let id = text(&entity, "CheckID");
            (
                json!({"Node": text(&entity, "Node"), "SkipNodeUpdate": true, "Check": check}),
                RegisterTarget::Check(id),
            )
        }
    };
    let bytes = serde_json::to_vec(&body).map_err(|e| e.to_string())?;
    let reg: census_client::types::CatalogRegistration =
        super::decode::decode_json(&bytes).map_err(|e| format!("{kind}: {e}"))?;
    let registration = super::catalog::registration(&reg, datacenter).map_err(|e| format!("{kind}: {e}"))?;
    Ok(TxnOp::Register { target, cas: verb == "cas", index, registration: Box::new(registration) })
}

/// One operation of the request body.
fn parse_op(op: &Value, datacenter: &str) -> Result<TxnOp, String> {
    for kind in ["Node", "Service", "Check"] {
        if let Some(inner) = field(op, kind) {
            let verb = text(inner, "Verb");
            if verb == "set" || verb == "cas" {
                return register_op(kind, inner, &verb, datacenter);
            }
        }
    }
    if let Some(kv) = field(op, "KV") {
        let verb = text(kv, "Verb");
        let verb = kv_verb(&verb).ok_or_else(|| format!("unknown KV verb {verb:?}"))?;
        let value = match field(kv, "Value").and_then(Value::as_str) {
            Some(b64) => base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|e| format!("KV Value is not base64: {e}"))?,
            None => Vec::new(),
        };
        let key = text(kv, "Key");
        if key.is_empty() && !matches!(verb, KvVerb::GetTree | KvVerb::DeleteTree) {
            return Err("Missing key name".into());
        }
        return Ok(TxnOp::Kv {
            verb,
            key,
            value,
            flags: number(kv, "Flags"),
            index: number(kv, "Index"),
            session: text(kv, "Session"),
        });
    }
    if let Some(n) = field(op, "Node") {
        let verb = catalog_verb(&text(n, "Verb"), "Node")?;
        let node = field(n, "Node").cloned().unwrap_or_default();
        return Ok(TxnOp::Node { verb, node: text(&node, "Node"), index: number(&node, "ModifyIndex") });
    }
    if let Some(s) = field(op, "Service") {
        let verb = catalog_verb(&text(s, "Verb"), "Service")?;
        let service = field(s, "Service").cloned().unwrap_or_default();
        return Ok(TxnOp::Service {
            verb,
            node: text(s, "Node"),
            service_id: text(&service, "ID"),
            index: number(&service, "ModifyIndex"),
        });
    }
    if let Some(c) = field(op, "Check") {
        let verb = catalog_verb(&text(c, "Verb"), "Check")?;
        let check = field(c, "Check").cloned().unwrap_or_default();
        return Ok(TxnOp::Check {
            verb,
            node: text(&check, "Node"),
            check_id: text(&check, "CheckID"),
            index: number(&check, "ModifyIndex"),
        });
    }
    Err("each operation needs one of KV, Node, Service or Check".into())
}

fn result_json(result: &TxnResult, datacenter: &str) -> Value {
    match result {
        TxnResult::Kv(r) => {
            let mut pair = serde_json::to_value(convert::kv_pair(r)).unwrap_or_default();
            if r.value.is_empty()
                && let Some(obj) = pair.as_object_mut()
            {
                obj.insert("Value".into(), Value::Null);
            }
            json!({ "KV": pair })
        }
        TxnResult::Node(n) => json!({ "Node": convert::node(n) }),
        TxnResult::Service(s) => json!({ "Service": convert::agent_service(s, datacenter) }),
        TxnResult::Check(c) => json!({ "Check": convert::health_check(c) }),
    }
}

/// What the token lacks for one operation, in Consul's words; `None` when it may run it. A
/// `get-tree` needs nothing: its answer is filtered to the keys the token may read.
fn denied(authz: &Authz, s: &CatalogState, op: &TxnOp) -> Option<String> {
    let need = |r: Resource, name: &str, a: Access| authz.require(r, name, a);
    let outcome = match op {
        TxnOp::Register { registration, .. } => check_registration(authz, s, registration),
        TxnOp::Kv { verb, key, .. } => match verb {
            KvVerb::GetTree => Ok(()),
            KvVerb::Get | KvVerb::GetOrEmpty | KvVerb::CheckIndex | KvVerb::CheckSession => {
                need(Resource::Key, key, Access::Read)
            }
            KvVerb::DeleteTree if !authz.0.authorizer.allows_all_under(Resource::Key, key, Access::Write) => {
                Err(authz.denied(Resource::Key, key, Access::Write))
            }
            KvVerb::DeleteTree => Ok(()),
            _ => need(Resource::Key, key, Access::Write),
        },
        TxnOp::Node { verb: CatalogVerb::Get, node, .. } => need(Resource::Node, node, Access::Read),
        TxnOp::Node { node, .. } => need(Resource::Node, node, Access::Write),
        TxnOp::Service { verb: CatalogVerb::Get, node, service_id, .. } => {
            let name = s.service(node, service_id).map(|svc| svc.name.clone()).unwrap_or_default();
            need(Resource::Service, &name, Access::Read)
        }
        TxnOp::Service { node, service_id, .. } => check_deregistration(authz, s, node, service_id, ""),
        TxnOp::Check { verb: CatalogVerb::Get, node, check_id, .. } => match s.check(node, check_id) {
            Some(c) if !may_read_check(authz, c) => Err(authz.denied(Resource::Node, node, Access::Read)),
            _ => Ok(()),
        },
        TxnOp::Check { node, check_id, .. } => check_deregistration(authz, s, node, "", check_id),
    };
    outcome.err().map(|e| e.to_string())
}

pub async fn txn(
    axum::extract::State(state): axum::extract::State<AppState>,
    authz: Authz,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let body = read_body(&headers, body, MAX_BODY, "Transaction").await?;
    let ops: Vec<Value> = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("Failed to parse body: {e}")))?;
    if ops.len() > MAX_TXN_OPS {
        return Err(ApiError::TooLarge(format!(
            "Transaction contains too many operations ({} > {MAX_TXN_OPS})",
            ops.len()
        )));
    }
    let mut parsed = Vec::with_capacity(ops.len());
    let mut errors = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        match parse_op(op, &state.info.datacenter) {
            Ok(op) => parsed.push(op),
            Err(what) => errors.push(json!({ "OpIndex": i, "What": what })),
        }
    }
    if errors.is_empty() {
        state.catalog.read(|s| {
            for (i, op) in parsed.iter().enumerate() {
                if let Some(what) = denied(&authz, s, op) {
                    errors.push(json!({ "OpIndex": i, "What": what }));
                }
            }
        });
    }
    if !errors.is_empty() {
        return Ok(answer(StatusCode::CONFLICT, json!({ "Results": null, "Errors": errors })));
    }
    let (index, result) = state.cluster.write(Command::Txn { ops: parsed, now_ms: 0 }).await?;
    match result {
        CommandResult::Txn(Ok(results)) => {
            let results: Vec<Value> = results
                .iter()
                .filter(|r| !matches!(r, TxnResult::Kv(kv) if !authz.allows(Resource::Key, &kv.key, Access::Read)))
                .map(|r| result_json(r, &state.info.datacenter))
                .collect();
            let mut response = answer(StatusCode::OK, json!({ "Results": results, "Errors": null }));
            response.headers_mut().insert("X-Consul-Index", state.catalog.client_index_of(index).into());
            Ok(response)
        }
        CommandResult::Txn(Err(failed)) => {
            let errors: Vec<Value> =
                failed.iter().map(|e| json!({ "OpIndex": e.op_index, "What": e.what })).collect();
            Ok(answer(StatusCode::CONFLICT, json!({ "Results": null, "Errors": errors })))
        }
        other => Err(ApiError::Internal(format!("unexpected transaction result {other:?}"))),
    }
}

fn answer(status: StatusCode, body: Value) -> Response {
    (status, [("Content-Type", "application/json")], body.to_string()).into_response()
}
