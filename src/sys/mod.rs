//! Thin safe wrappers over the syscalls foxbox uses. Unsafe code lives here, wrapped once.
pub mod bpf;
pub mod fd;
pub mod holder;
pub mod idmap;
pub mod memory;
pub mod mount;
pub mod mountinfo;
pub mod net;
pub mod netns;
pub mod process;
pub mod security;
pub mod stack;
pub mod tty;
pub mod userns;
