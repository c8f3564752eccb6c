//! census-sidecar: `render` (consul-template for nginx, with validate-then-swap), `register`
//! (registrator, for a pod or a Docker host) and `docker-proxy` (a read-only Docker socket).

pub mod cli;
pub mod consul_template_config;
pub mod process;
pub mod register;
pub mod render;
