//! `Connect.SidecarService`: a service registration that also registers its sidecar proxy, as
//! Consul's agent does (ID `<id>-sidecar-proxy`, a port from 21000-21255, a listening check and
//! an alias of the parent's health).

use std::collections::BTreeSet;
use std::ops::RangeInclusive;

use census_client::GoDuration;
use census_client::types::{AgentServiceRegistration, CheckDefinition, ProxyConfig};

use super::error::ApiError;

/// Consul's `sidecar_min_port`..=`sidecar_max_port`.
pub const SIDECAR_PORTS: RangeInclusive<u16> = 21000..=21255;

/// The sidecar proxy's ID for a parent service ID.
pub fn sidecar_id(parent_id: &str) -> String {
    format!("{parent_id}-sidecar-proxy")
}

/// Splits a registration into the parent (without `SidecarService`) and, if it asks for one,
/// its sidecar proxy. `used_ports` are the ports of this node's other services;
/// `current_port` is the sidecar's own port if it is registered already.
pub fn expand(
    mut parent: AgentServiceRegistration,
    used_ports: &BTreeSet<u16>,
    current_port: Option<u16>,
) -> Result<(AgentServiceRegistration, Option<AgentServiceRegistration>), ApiError> {
    let Some(mut sidecar) = parent.connect.as_mut().and_then(|c| c.sidecar_service.take()).map(|b| *b) else {
        return Ok((parent, None));
    };
    if parent.connect.as_ref().is_some_and(|c| !c.native) {
        parent.connect = None;
    }
    if !sidecar.id.is_empty() {
        return Err(ApiError::BadRequest(
            "Invalid SidecarService: A SidecarService cannot specify an ID as this is managed by the agent"
                .into(),
        ));
    }
    let parent_id = if parent.id.is_empty() { parent.name.clone() } else { parent.id.clone() };
    sidecar.id = sidecar_id(&parent_id);
    if sidecar.kind.is_empty() {
        sidecar.kind = "connect-proxy".into();
    }
    if sidecar.name.is_empty() {
        sidecar.name = format!("{}-sidecar-proxy", parent.name);
    }
    if sidecar.address.is_empty() {
        sidecar.address = parent.address.clone();
    }
    if sidecar.tags.is_empty() {
        sidecar.tags = parent.tags.clone();
    }
    if sidecar.meta.is_empty() {
        sidecar.meta = parent.meta.clone();
    }
    if sidecar.locality.is_none() {
        sidecar.locality = parent.locality.clone();
    }
    let proxy = sidecar.proxy.get_or_insert_with(ProxyConfig::default);
    proxy.destination_service_name = parent.name.clone();
    proxy.destination_service_id = parent_id.clone();
    if proxy.local_service_socket_path.is_empty()
        && (proxy.local_service_address.is_empty() || proxy.local_service_port == 0)
    {
        if parent.socket_path.is_empty() {
            if proxy.local_service_address.is_empty() {
                proxy.local_service_address = "127.0.0.1".into();
            }
            if proxy.local_service_port == 0 {
                proxy.local_service_port = parent.port;
            }
        } else {
            proxy.local_service_socket_path = parent.socket_path.clone();
        }
    }
    let local_address = proxy.local_service_address.clone();
    if sidecar.port == 0 {
        sidecar.port = current_port
            .filter(|p| SIDECAR_PORTS.contains(p))
            .or_else(|| SIDECAR_PORTS.clone().find(|p| !used_ports.contains(p)))
            .ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "Invalid SidecarService: no port provided for sidecar_service and none left in the configured range [{}, {}]",
                    SIDECAR_PORTS.start(),
                    SIDECAR_PORTS.end()
                ))
            })?;
    }
    if sidecar.check.is_none() && sidecar.checks.is_empty() {
        let host = if sidecar.address.is_empty() { local_address } else { sidecar.address.clone() };
        let host = if host.is_empty() { "127.0.0.1".to_string() } else { host };
        sidecar.checks = vec![
            CheckDefinition {
                name: "Connect Sidecar Listening".into(),
                tcp: format!("{host}:{}", sidecar.port),
                interval: GoDuration(std::time::Duration::from_secs(10)),
                ..Default::default()
            },
            CheckDefinition {
                name: format!("Connect Sidecar Aliasing {parent_id}"),
                alias_service: parent_id,
                ..Default::default()
            },
        ];
    }
    Ok((parent, Some(sidecar)))
}

#[cfg(test)]
mod tests {
    use census_client::types::AgentServiceConnect;

    use super::*;

    fn parent() -> AgentServiceRegistration {
        AgentServiceRegistration {
            name: "web".into(),
            port: 8080,
            tags: vec!["v1".into()],
            connect: Some(AgentServiceConnect { native: false, sidecar_service: Some(Box::default()) }),
            ..Default::default()
        }
    }

    #[test]
    fn a_sidecar_gets_consuls_defaults_and_the_lowest_free_port() {
        let used: BTreeSet<u16> = [21000].into();
        let (parent, sidecar) = expand(parent(), &used, None).expect("expands");
        assert!(parent.connect.is_none(), "the parent keeps no SidecarService");
        let sidecar = sidecar.expect("a sidecar");
        assert_eq!((sidecar.id.as_str(), sidecar.name.as_str()), ("web-sidecar-proxy", "web-sidecar-proxy"));
        assert_eq!((sidecar.kind.as_str(), sidecar.port), ("connect-proxy", 21001));
        assert_eq!(sidecar.tags, ["v1"]);
        let proxy = sidecar.proxy.expect("proxy");
        assert_eq!(proxy.destination_service_name, "web");
        assert_eq!((proxy.local_service_address.as_str(), proxy.local_service_port), ("127.0.0.1", 8080));
        assert_eq!(sidecar.checks.len(), 2);
        assert_eq!(sidecar.checks[0].tcp, "127.0.0.1:21001");
        assert_eq!(sidecar.checks[1].alias_service, "web");
    }

    #[test]
    fn a_registered_sidecar_keeps_its_port_and_an_id_is_refused() {
        let used: BTreeSet<u16> = [21000, 21003].into();
        let (_, sidecar) = expand(parent(), &used, Some(21003)).expect("expands");
        assert_eq!(sidecar.expect("sidecar").port, 21003);
        let mut with_id = parent();
        if let Some(c) = with_id.connect.as_mut() {
            c.sidecar_service =
                Some(Box::new(AgentServiceRegistration { id: "x".into(), ..Default::default() }));
        }
        assert!(expand(with_id, &used, None).is_err());
        let full: BTreeSet<u16> = SIDECAR_PORTS.collect();
        assert!(expand(parent(), &full, None).is_err());
    }
}
