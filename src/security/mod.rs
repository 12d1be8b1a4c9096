//! Capabilities, no_new_privs and seccomp.
//!
//! What the executor calls, in this order (see [`capset`] for why):
//! - parent, before fork: [`seccomp::compile`] (or [`seccomp::compile_for`]) the box's profile
//!   for its final capability set, so the child only installs;
//! - child, with no_new_privs: user and groups ([`capset::set_keep_caps`] before `setresuid`),
//!   [`capset::set_capabilities`], [`capset::set_no_new_privs`], [`seccomp::install`], exec;
//! - child, without no_new_privs: [`seccomp::install`] first (it needs CAP_SYS_ADMIN), then user
//!   and groups, [`capset::set_capabilities`], exec.
/// Capability names and sets are plan values; here at their old path too.
pub use crate::plan::caps;
pub mod capset;
pub mod seccomp;
