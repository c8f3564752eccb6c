//! `POST /v1/acl/login` with a `kubernetes` auth method: the pod's service-account JWT is checked
//! by the API server (a TokenReview, made with the method's `ServiceAccountJWT`), the account's
//! namespace, name and UID become the selector variables, and the method's binding rules decide
//! what the new token carries (a service or node identity, roles or policies by name). `jwt` and
//! `oidc` logins are not built (400 naming the type).

use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{AppState, body, new_id, save, tokens};
use crate::acl::records::{
    AuthMethod, BindingRule, Link, NodeIdentity, Policy, Role, ServiceIdentity, Token,
};
use crate::acl::store;
use crate::http::error::{ApiError, ApiResult};
use crate::http::filter::Filter;
use crate::http::query::json_response;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct LoginRequest {
    auth_method: String,
    bearer_token: String,
    meta: std::collections::BTreeMap<String, String>,
}

/// The variables a kubernetes login gives the binding rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAccount {
    pub namespace: String,
    pub name: String,
    pub uid: String,
}

impl ServiceAccount {
    fn variables(&self) -> Value {
        json!({"serviceaccount": {"namespace": self.namespace, "name": self.name, "uid": self.uid}})
    }

    /// `${serviceaccount.name}` and its siblings replaced in a bind name.
    fn interpolate(&self, template: &str) -> String {
        template
            .replace("${serviceaccount.namespace}", &self.namespace)
            .replace("${serviceaccount.name}", &self.name)
            .replace("${serviceaccount.uid}", &self.uid)
    }
}

/// Asks the API server who `jwt` is (TokenReview), as the method's reviewer account.
async fn review(config: &Value, jwt: &str) -> ApiResult<ServiceAccount> {
    let field = |name: &str| config.get(name).and_then(Value::as_str).unwrap_or_default().to_string();
    let (host, ca, reviewer) = (field("Host"), field("CACert"), field("ServiceAccountJWT"));
    let mut builder = reqwest::Client::builder().timeout(Duration::from_secs(10));
    if host.starts_with("https://") {
        let cert = reqwest::Certificate::from_pem(ca.as_bytes())
            .map_err(|e| ApiError::Internal(format!("auth method CACert: {e}")))?;
        builder = builder.add_root_certificate(cert);
    }
    let http = builder.build().map_err(|e| ApiError::Internal(e.to_string()))?;
    let review =
        json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": jwt}});
    let answer = http
        .post(format!("{}/apis/authentication.k8s.io/v1/tokenreviews", host.trim_end_matches('/')))
        .bearer_auth(reviewer)
        .json(&review)
        .send()
        .await
        .map_err(|e| ApiError::Internal(format!("TokenReview: {e}")))?;
    let status = answer.status();
    let answer: Value = answer.json().await.map_err(|e| ApiError::Internal(format!("TokenReview: {e}")))?;
    if !status.is_success() {
        return Err(ApiError::Internal(format!("TokenReview: the API server answered {status}")));
    }
    if answer["status"]["authenticated"] != Value::Bool(true) {
        return Err(ApiError::PermissionDenied(format!(
            "Permission denied: lookup failed: {}",
            answer["status"]["error"].as_str().unwrap_or("the token is not valid")
        )));
    }
    let username = answer["status"]["user"]["username"].as_str().unwrap_or_default();
    let parts: Vec<&str> = username.split(':').collect();
    let ["system", "serviceaccount", namespace, name] = parts.as_slice() else {
        return Err(ApiError::PermissionDenied(format!(
            "Permission denied: {username:?} is not a service account"
        )));
    };
    Ok(ServiceAccount {
        namespace: namespace.to_string(),
        name: name.to_string(),
        uid: answer["status"]["user"]["uid"].as_str().unwrap_or_default().to_string(),
    })
}

/// What the matching binding rules grant.
#[derive(Debug, Default)]
struct Bound {
    services: Vec<ServiceIdentity>,
    nodes: Vec<NodeIdentity>,
    roles: Vec<Link>,
    policies: Vec<Link>,
}

fn bind(state: &AppState, method: &AuthMethod, account: &ServiceAccount) -> ApiResult<Bound> {
    let vars = account.variables();
    let rules: Vec<BindingRule> = state.catalog.read(|s| {
        store::all::<BindingRule>(s).into_iter().filter(|r| r.auth_method == method.name).collect()
    });
    let mut bound = Bound::default();
    for rule in rules {
        if !rule.selector.trim().is_empty() {
            let selector = Filter::parse(&rule.selector)
                .map_err(|e| ApiError::Internal(format!("binding rule {}: {e}", rule.id)))?;
            if !selector.matches(&vars) {
                continue;
            }
        }
        let name = account.interpolate(&rule.bind_name);
        match rule.bind_type.as_str() {
            "service" => bound.services.push(ServiceIdentity { service_name: name, datacenters: Vec::new() }),
            "node" => {
                bound.nodes.push(NodeIdentity { node_name: name, datacenter: state.info.datacenter.clone() })
            }
            "role" => {
                if let Some(r) = state.catalog.read(|s| store::by_name::<Role>(s, &name)) {
                    bound.roles.push(Link { id: r.id, name: r.name });
                }
            }
            "policy" => {
                if let Some(p) = state.catalog.read(|s| store::by_name::<Policy>(s, &name)) {
                    bound.policies.push(Link { id: p.id, name: p.name });
                }
            }
            _ => {}
        }
    }
    Ok(bound)
}

/// `POST /v1/acl/login`: an unknown method is `ACL not found`, as Consul answers.
pub async fn login(State(state): State<AppState>, headers: HeaderMap, raw: Body) -> ApiResult<Response> {
    if !state.acl.enabled() {
        return Err(ApiError::AclDisabled);
    }
    let req: LoginRequest = body(&headers, raw).await?;
    if req.bearer_token.is_empty() {
        return Err(ApiError::BadRequest("BearerToken is required".into()));
    }
    let method = state
        .catalog
        .read(|s| store::get::<AuthMethod>(s, &req.auth_method))
        .ok_or_else(|| ApiError::PermissionDenied("ACL not found".into()))?;
    if method.kind != "kubernetes" {
        return Err(ApiError::BadRequest(format!(
            "census: logging in with a {:?} auth method is not supported yet",
            method.kind
        )));
    }
    let account = review(&method.config, &req.bearer_token).await?;
    let bound = bind(&state, &method, &account)?;
    if bound.services.is_empty()
        && bound.nodes.is_empty()
        && bound.roles.is_empty()
        && bound.policies.is_empty()
    {
        return Err(ApiError::PermissionDenied("Permission denied: no binding rule matched".into()));
    }
    let mut meta = req.meta.clone();
    meta.insert("authMethod".into(), method.name.clone());
    meta.insert("serviceaccount".into(), format!("{}/{}", account.namespace, account.name));
    let now = std::time::SystemTime::now();
    let expiration = census_client::parse_duration(&method.max_token_ttl)
        .ok()
        .filter(|ttl| !ttl.is_zero())
        .map(|ttl| crate::agent::log_stream::rfc3339(now + ttl));
    let token = Token {
        accessor_id: new_id(),
        secret_id: new_id(),
        description: format!("token created via login: {}", serde_json::to_string(&meta).unwrap_or_default()),
        policies: bound.policies,
        roles: bound.roles,
        service_identities: bound.services,
        node_identities: bound.nodes,
        local: method.token_locality != "global",
        auth_method: method.name.clone(),
        expiration_time: expiration,
        create_time: crate::agent::log_stream::rfc3339(now),
        ..Token::default()
    };
    save(
        &state,
        store::put(&token, Some(0)),
        "Invalid Token: AccessorID is already in use",
        "Invalid Token: SecretID is already in use",
    )
    .await?;
    tracing::info!(method = %method.name, account = %format!("{}/{}", account.namespace, account.name), accessor = %token.accessor_id, "login");
    let stored = state.catalog.read(|s| store::get::<Token>(s, &token.accessor_id)).unwrap_or(token);
    json_response(&tokens::view(&stored, true), false)
}
