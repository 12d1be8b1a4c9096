//! foxbox: a rootless Linux container runtime driven by a committed `Foxbox.toml`.
//!
//! The library holds everything but argument parsing: spec → plan → executor, and the stores.

pub mod boxes;
pub mod build;
pub mod cgroup;
pub mod diag;
pub mod exec;
pub mod export;
pub mod fault;
pub mod fs;
pub mod image;
pub mod lint;
pub mod net;
pub mod oci;
pub mod oci_runtime;
pub mod plan;
pub mod preflight;
pub mod runner;
pub mod security;
pub mod spec;
pub mod step_error;
pub mod store;
pub mod sys;
pub mod volume;
