//! Thin safe wrappers over the syscalls foxbox uses. Unsafe code lives here, wrapped once.
pub mod idmap;
pub mod userns;
