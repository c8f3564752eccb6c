//! census-sidecar: `render` (consul-template for nginx, with validate-then-swap) and, later,
//! `register` (registrator).

pub mod cli;
pub mod render;
