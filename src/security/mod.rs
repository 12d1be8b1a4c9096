//! Capabilities, no_new_privs and seccomp.
pub mod caps;
pub mod seccomp;
