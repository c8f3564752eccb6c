//! census on Kubernetes: the `Service` and `KVEntry` custom resources and the reconcilers that
//! write them into the catalog while this server leads. The catalog is reached through
//! [`port::CatalogPort`], so this crate knows nothing of Raft or HTTP.

pub mod conditions;
pub mod context;
pub mod crd;
pub mod desired;
pub mod drift;
pub mod kv_entry;
pub mod ownership;
pub mod port;
pub mod run;
pub mod service;

pub use crd::{KVEntry, Service, crds_yaml};
pub use kube;
pub use port::{CatalogPort, Instance, InstanceCheck, PortError, Probe, StoredInstance, StoredKey};
pub use run::{OperatorConfig, run};
