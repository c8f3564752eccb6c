//! ACL enforcement on every route: the request's token is resolved once (`X-Consul-Token`,
//! `Authorization: Bearer`, `?token=`), and each route says what it needs (`need`). A route
//! that `need` does not know is refused, so a new route cannot ship open; the router test
//! checks that every route of the table has an entry.

use std::sync::Arc;

use axum::extract::{FromRequestParts, MatchedPath, RawPathParams, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::error::ApiError;
use crate::acl::{Access, AclError, Identity, Resource};

/// Where the name a rule is checked on comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Name {
    /// A path parameter of the route.
    Param(&'static str),
    /// This agent's node name.
    SelfNode,
    /// No name (global resources), or every name (`""` as a prefix).
    Empty,
}

/// What a route needs of the request's token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Nothing: Consul answers these without a token.
    Open,
    /// One permission, checked before the handler runs.
    Rule(Resource, Name, Access),
    /// The handler checks: what it needs depends on the body or the record, or it filters a
    /// listing to what the token may read.
    Handler,
}

use Access::{Read, Write};
use Name::{Empty, Param, SelfNode};
use Need::{Handler, Open, Rule};
use Resource::{Acl, Agent, Event, Keyring, Node, Operator, Query, Service, Session};

/// The need of `method` on the route pattern `route` (as the router spells it); `None` for a
/// route this table does not know.
pub fn need(method: &Method, route: &str) -> Option<Need> {
    let write = !matches!(*method, Method::GET | Method::HEAD);
    let rw = if write { Write } else { Read };
    Some(match route {
        "/v1/agent/service/register"
        | "/v1/agent/service/deregister/{id}"
        | "/v1/agent/services"
        | "/v1/agent/service/{id}"
        | "/v1/agent/health/service/id/{id}"
        | "/v1/agent/checks"
        | "/v1/agent/check/register"
        | "/v1/agent/check/deregister/{id}"
        | "/v1/agent/check/update/{id}"
        | "/v1/agent/check/{verb}/{id}"
        | "/v1/agent/members"
        | "/v1/agent/service/maintenance/{id}"
        | "/v1/agent/token/{kind}"
        | "/v1/event/list" => Handler,
        "/v1/agent/health/service/name/{name}" => Rule(Service, Param("name"), Read),
        "/v1/agent/self" | "/v1/agent/monitor" | "/v1/agent/metrics" => Rule(Agent, SelfNode, Read),
        "/v1/agent/version" | "/v1/agent/ready" => Open,
        "/v1/agent/host" => Rule(Operator, Empty, Read),
        "/v1/agent/force-leave/{node}" => Rule(Operator, Empty, Write),
        "/v1/operator/keyring" => Rule(Keyring, Empty, rw),
        "/v1/agent/join/{addr}" | "/v1/agent/leave" | "/v1/agent/reload" => Rule(Agent, SelfNode, Write),
        "/v1/agent/maintenance" => Rule(Node, SelfNode, Write),
        "/v1/event/fire/{name}" => Rule(Event, Param("name"), Write),

        "/v1/catalog/register" | "/v1/catalog/deregister" | "/v1/catalog/nodes" | "/v1/catalog/services" => {
            Handler
        }
        "/v1/catalog/datacenters" | "/v1/coordinate/datacenters" => Open,
        "/v1/catalog/service/{name}" => Rule(Service, Param("name"), Read),
        "/v1/catalog/node/{node}" | "/v1/health/node/{node}" | "/v1/coordinate/node/{node}" => {
            Rule(Node, Param("node"), Read)
        }
        "/v1/catalog/connect/{service}"
        | "/v1/health/checks/{service}"
        | "/v1/health/service/{service}"
        | "/v1/health/connect/{service}"
        | "/v1/health/ingress/{service}"
        | "/v1/discovery-chain/{service}" => Rule(Service, Param("service"), Read),
        "/v1/catalog/gateway-services/{gateway}" => Rule(Service, Param("gateway"), Read),
        "/v1/health/state/{state}" | "/v1/internal/ui/services" | "/v1/internal/ui/nodes" => Handler,
        // Stricter than Consul, which filters: these need the right on every name.
        "/v1/coordinate/nodes" => Rule(Node, Empty, Read),
        "/v1/coordinate/update" => Rule(Node, Empty, Write),
        "/v1/query" | "/v1/query/{id}" | "/v1/query/{id}/execute" | "/v1/query/{id}/explain" => {
            Rule(Query, Empty, rw)
        }
        "/v1/operator/autopilot/configuration"
        | "/v1/operator/autopilot/state"
        | "/v1/operator/autopilot/health"
        | "/v1/operator/usage"
        | "/v1/operator/raft/configuration"
        | "/v1/operator/raft/peer"
        | "/v1/operator/raft/transfer-leader" => Rule(Operator, Empty, rw),
        "/v1/config" | "/v1/config/" | "/v1/config/{kind}" | "/v1/config/{kind}/{name}" => {
            Rule(Operator, Empty, rw)
        }
        "/v1/kv" | "/v1/kv/" | "/v1/kv/{*key}" | "/v1/txn" => Handler,
        "/v1/session/create"
        | "/v1/session/destroy/{id}"
        | "/v1/session/renew/{id}"
        | "/v1/session/info/{id}"
        | "/v1/session/list" => Handler,
        "/v1/session/node/{node}" => Rule(Session, Param("node"), Read),
        // A snapshot holds every record, tokens included: management only.
        "/v1/snapshot" => Rule(Acl, Empty, Write),
        "/v1/status/leader" | "/v1/status/peers" => Open,
        // The ACL endpoints check themselves (`token/self` needs only the token).
        r if r.starts_with("/v1/acl/") => Handler,
        _ => return None,
    })
}

/// The token a request carries: `X-Consul-Token`, `Authorization: Bearer`, or `?token=`.
pub fn request_token(headers: &HeaderMap, query: Option<&str>) -> String {
    if let Some(token) = headers.get("X-Consul-Token").and_then(|v| v.to_str().ok())
        && !token.is_empty()
    {
        return token.to_string();
    }
    if let Some(token) = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        return token.trim().to_string();
    }
    query
        .and_then(|q| serde_urlencoded::from_str::<Vec<(String, String)>>(q).ok())
        .and_then(|pairs| pairs.into_iter().find(|(k, _)| k == "token").map(|(_, v)| v))
        .unwrap_or_default()
}

/// The request's identity, as the middleware resolved it.
#[derive(Clone)]
pub struct Authz(pub Arc<Identity>);

impl Authz {
    /// Whether the token may `access` `name` of `resource`.
    pub fn allows(&self, resource: Resource, name: &str, access: Access) -> bool {
        self.0.authorizer.allows(resource, name, access)
    }

    /// `Ok` when allowed, else Consul's 403 naming what is missing.
    pub fn require(&self, resource: Resource, name: &str, access: Access) -> Result<(), ApiError> {
        if self.allows(resource, name, access) { Ok(()) } else { Err(self.denied(resource, name, access)) }
    }

    pub fn denied(&self, resource: Resource, name: &str, access: Access) -> ApiError {
        let on = if resource.is_global() { String::new() } else { format!(" on {name:?}") };
        ApiError::PermissionDenied(format!(
            "Permission denied: token with AccessorID '{}' lacks permission '{}:{}'{on}",
            self.0.accessor_id,
            resource.as_str(),
            access.as_str()
        ))
    }

    /// Whether a listing that dropped records should say so (only to a request that named a token).
    pub fn names_a_token(&self) -> bool {
        self.0.named
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Authz {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Authz>()
            .cloned()
            .ok_or_else(|| ApiError::Internal("census: the route was not authorized".into()))
    }
}

/// Marks a listing that dropped records the token may not read: `X-Consul-Results-Filtered-By-ACLs`,
/// only for a request that named a token (as Consul).
pub fn filtered_header(response: &mut Response, authz: &Authz) {
    if authz.names_a_token() {
        response
            .headers_mut()
            .insert("X-Consul-Results-Filtered-By-ACLs", axum::http::HeaderValue::from_static("true"));
    }
}

/// Keeps the items the token may `access` (named by `name_of`) and says whether any were dropped.
pub fn keep_allowed<T>(
    items: Vec<T>,
    authz: &Authz,
    resource: Resource,
    access: Access,
    name_of: impl Fn(&T) -> &str,
) -> (Vec<T>, bool) {
    let total = items.len();
    let kept: Vec<T> = items.into_iter().filter(|t| authz.allows(resource, name_of(t), access)).collect();
    let dropped = kept.len() < total;
    (kept, dropped)
}

/// The middleware: resolves the token, checks the route's need, and hands the identity on.
pub async fn authorize(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let secret = request_token(req.headers(), req.uri().query());
    let identity = match state.acl.resolve(&secret).await {
        Ok(identity) => identity,
        Err(e @ (AclError::NotFound | AclError::Unresolved)) => {
            return ApiError::PermissionDenied(e.to_string()).into_response();
        }
    };
    let authz = Authz(identity);
    if state.acl.enabled() {
        let route = req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string()).unwrap_or_default();
        match need(req.method(), &route) {
            None => {
                return ApiError::PermissionDenied(format!("Permission denied: no ACL rule for {route}"))
                    .into_response();
            }
            Some(Open | Handler) => {}
            Some(Rule(resource, name, access)) => {
                let name = match name {
                    Empty => String::new(),
                    SelfNode => state.info.node_name.clone(),
                    Param(param) => {
                        let (mut parts, body) = req.into_parts();
                        let params = RawPathParams::from_request_parts(&mut parts, &state).await;
                        req = Request::from_parts(parts, body);
                        params
                            .ok()
                            .and_then(|p| p.iter().find(|(k, _)| *k == param).map(|(_, v)| v.to_string()))
                            .unwrap_or_default()
                    }
                };
                if let Err(e) = authz.require(resource, &name, access) {
                    return e.into_response();
                }
            }
        }
    }
    req.extensions_mut().insert(authz);
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(METHOD, route)` of every `.route(...)` in a router's source.
    fn routes_in(source: &str) -> Vec<(Method, String)> {
        let mut out = Vec::new();
        let mut rest = source;
        while let Some(at) = rest.find(".route(") {
            rest = &rest[at + ".route(".len()..];
            let Some(open) = rest.find('"') else { break };
            let Some(len) = rest[open + 1..].find('"') else { break };
            let route = rest[open + 1..open + 1 + len].to_string();
            let call_end = rest.find("))\n").unwrap_or(rest.len());
            let call = &rest[..call_end];
            for (needle, method) in [
                ("get(", Method::GET),
                ("put(", Method::PUT),
                ("post(", Method::POST),
                ("delete(", Method::DELETE),
            ] {
                if call.contains(needle) {
                    out.push((method, route.clone()));
                }
            }
        }
        out
    }

    #[test]
    fn every_route_of_the_router_has_an_acl_rule() {
        let mut routes = routes_in(include_str!("mod.rs"));
        routes.extend(routes_in(include_str!("acl/mod.rs")));
        assert!(routes.len() > 100, "the route scan found only {} routes", routes.len());
        let missing: Vec<String> =
            routes.iter().filter(|(m, r)| need(m, r).is_none()).map(|(m, r)| format!("{m} {r}")).collect();
        assert!(missing.is_empty(), "routes without an ACL rule in authz::need: {missing:?}");
    }

    #[test]
    fn an_unknown_route_has_no_rule_so_it_is_refused() {
        assert_eq!(need(&Method::GET, "/v1/brand-new"), None);
        assert_eq!(need(&Method::PUT, "/v1/kv/{*key}"), Some(Handler));
        assert_eq!(need(&Method::GET, "/v1/status/leader"), Some(Open));
        assert_eq!(need(&Method::PUT, "/v1/operator/keyring"), Some(Rule(Keyring, Empty, Write)));
    }

    #[test]
    fn the_token_comes_from_the_header_then_bearer_then_the_query() {
        let mut headers = HeaderMap::new();
        assert_eq!(request_token(&headers, Some("token=q&x=1")), "q");
        headers.insert("authorization", "Bearer b".parse().expect("header"));
        assert_eq!(request_token(&headers, Some("token=q")), "b");
        headers.insert("x-consul-token", "h".parse().expect("header"));
        assert_eq!(request_token(&headers, Some("token=q")), "h");
    }
}
