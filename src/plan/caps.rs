//! Capability names and sets. Setting them on a process lives in the executor; this module only
//! knows names and numbers, so the spec can validate without touching the host.

use serde::{Serialize, Serializer};

/// Capability names by number (linux/capability.h), without the `CAP_` prefix.
pub const NAMES: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// The highest capability number foxbox knows.
pub const LAST_CAP: u32 = NAMES.len() as u32 - 1;

/// podman's default capability set (containers.conf `default_capabilities`).
pub const PODMAN_DEFAULT: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

/// Parse a capability name: case-insensitive, `CAP_` prefix optional. `ALL` is not a single
/// capability and is handled by the caller.
pub fn parse(name: &str) -> Option<u32> {
    let upper = name.trim().to_ascii_uppercase();
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    NAMES.iter().position(|n| *n == bare).map(|i| i as u32)
}

/// A set of capabilities as a bit mask (bit N = capability N).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct CapSet(pub u64);

impl CapSet {
    pub const EMPTY: CapSet = CapSet(0);

    pub fn all() -> CapSet {
        CapSet((1u64 << (LAST_CAP + 1)) - 1)
    }

    pub fn podman_default() -> CapSet {
        let mut s = CapSet::EMPTY;
        for name in PODMAN_DEFAULT {
            if let Some(c) = parse(name) {
                s.insert(c);
            }
        }
        s
    }

    pub fn insert(&mut self, cap: u32) {
        self.0 |= 1u64 << cap;
    }

    pub fn remove(&mut self, cap: u32) {
        self.0 &= !(1u64 << cap);
    }

    pub fn contains(&self, cap: u32) -> bool {
        cap <= 63 && self.0 & (1u64 << cap) != 0
    }

    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        (0..=LAST_CAP).filter(|c| self.contains(*c))
    }

    /// Names with the `CAP_` prefix, in number order.
    pub fn names(&self) -> Vec<String> {
        self.iter()
            .map(|c| format!("CAP_{}", NAMES[c as usize]))
            .collect()
    }
}

impl Serialize for CapSet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.names().serialize(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_in_any_case_with_or_without_prefix() {
        assert_eq!(parse("net_bind_service"), Some(10));
        assert_eq!(parse("CAP_SYS_ADMIN"), Some(21));
        assert_eq!(parse("cap_chown"), Some(0));
        assert_eq!(parse("NOPE"), None);
    }

    #[test]
    fn podman_default_has_eleven() {
        let s = CapSet::podman_default();
        assert_eq!(s.iter().count(), 11);
        assert!(s.contains(parse("SYS_CHROOT").unwrap()));
        assert!(!s.contains(parse("NET_RAW").unwrap()));
    }

    #[test]
    fn all_covers_every_known_cap() {
        assert_eq!(CapSet::all().iter().count(), NAMES.len());
    }
}
