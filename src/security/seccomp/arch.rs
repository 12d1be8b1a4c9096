//! Architectures: the ones foxbox compiles filters for, and the names profiles may use.

use serde::Serialize;

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::OnceLock;

use super::tables;

/// FNV-1a: syscall names are short and trusted, so a fast non-keyed hash is right here.
#[derive(Default)]
struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        self.0 = h;
    }
}

type NameMap = HashMap<&'static str, u32, BuildHasherDefault<Fnv>>;

/// An architecture foxbox can compile a filter for (little-endian, 64-bit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Arch {
    X86_64,
    Aarch64,
}

/// `AUDIT_ARCH_*` values the kernel puts in `seccomp_data.arch`.
const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
const AUDIT_ARCH_AARCH64: u32 = 0xC000_00B7;

/// Syscall numbers with this bit set on an x86_64 kernel are x32 calls.
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;

impl Arch {
    /// The architecture this binary runs on, when foxbox can filter it.
    pub fn native() -> Option<Arch> {
        if cfg!(target_arch = "x86_64") {
            Some(Arch::X86_64)
        } else if cfg!(target_arch = "aarch64") {
            Some(Arch::Aarch64)
        } else {
            None
        }
    }

    pub fn audit_arch(self) -> u32 {
        match self {
            Arch::X86_64 => AUDIT_ARCH_X86_64,
            Arch::Aarch64 => AUDIT_ARCH_AARCH64,
        }
    }

    /// The name Docker profiles use in `includes.arches` / `excludes.arches` (Go's GOARCH).
    pub fn profile_name(self) -> &'static str {
        match self {
            Arch::X86_64 => "amd64",
            Arch::Aarch64 => "arm64",
        }
    }

    pub fn scmp_name(self) -> &'static str {
        match self {
            Arch::X86_64 => "SCMP_ARCH_X86_64",
            Arch::Aarch64 => "SCMP_ARCH_AARCH64",
        }
    }

    fn table(self) -> &'static [(&'static str, u32)] {
        match self {
            Arch::X86_64 => tables::x86_64::SYSCALLS,
            Arch::Aarch64 => tables::aarch64::SYSCALLS,
        }
    }

    /// The number of a syscall on this architecture, if it has one.
    pub fn syscall(self, name: &str) -> Option<u32> {
        // A hash map: a binary search over the sorted table cost ~0.3 µs per name, which made
        // name lookup most of the time to compile a profile before each box starts.
        static X86_64: OnceLock<NameMap> = OnceLock::new();
        static AARCH64: OnceLock<NameMap> = OnceLock::new();
        let cell = match self {
            Arch::X86_64 => &X86_64,
            Arch::Aarch64 => &AARCH64,
        };
        cell.get_or_init(|| self.table().iter().copied().collect())
            .get(name)
            .copied()
    }

    /// The name of a syscall number on this architecture.
    pub fn syscall_name(self, nr: u32) -> Option<&'static str> {
        self.table().iter().find(|(_, n)| *n == nr).map(|(s, _)| *s)
    }

    /// The highest syscall number foxbox knows for this architecture.
    pub fn max_syscall(self) -> u32 {
        self.table().iter().map(|(_, n)| *n).max().unwrap_or(0)
    }
}

/// Whether a name is a system call on any Linux architecture (libseccomp's view, plus newer).
pub fn is_syscall_anywhere(name: &str) -> bool {
    tables::names::ALL.binary_search(&name).is_ok()
}

/// The closest known syscall name, for "did you mean" help.
pub fn closest_syscall(name: &str) -> Option<&'static str> {
    closest(name, tables::names::ALL.iter().copied())
}

/// `SCMP_ARCH_*` names accepted in `architectures` and `archMap` (libseccomp's list).
pub const SCMP_ARCHES: &[&str] = &[
    "SCMP_ARCH_NATIVE",
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X86_64",
    "SCMP_ARCH_X32",
    "SCMP_ARCH_ARM",
    "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_MIPS",
    "SCMP_ARCH_MIPS64",
    "SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL",
    "SCMP_ARCH_MIPSEL64",
    "SCMP_ARCH_MIPSEL64N32",
    "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64",
    "SCMP_ARCH_PPC64LE",
    "SCMP_ARCH_S390",
    "SCMP_ARCH_S390X",
    "SCMP_ARCH_PARISC",
    "SCMP_ARCH_PARISC64",
    "SCMP_ARCH_RISCV64",
    "SCMP_ARCH_LOONGARCH64",
    "SCMP_ARCH_M68K",
    "SCMP_ARCH_SH",
    "SCMP_ARCH_SHEB",
];

/// Architecture names accepted in `includes.arches` / `excludes.arches`: Docker compares them
/// with Go's GOARCH, and its own profile also uses `x86` and `x32`.
pub const PROFILE_ARCHES: &[&str] = &[
    "386",
    "x86",
    "amd64",
    "x32",
    "arm",
    "arm64",
    "mips",
    "mipsle",
    "mips64",
    "mips64le",
    "mips64n32",
    "mips64len32",
    "ppc",
    "ppc64",
    "ppc64le",
    "s390",
    "s390x",
    "parisc",
    "parisc64",
    "riscv64",
    "loong64",
    "m68k",
    "sh",
    "sheb",
];

/// The most similar candidate, if it is similar enough to be a likely typo.
pub(crate) fn closest<'a>(
    word: &str,
    candidates: impl Iterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .map(|c| (strsim::normalized_damerau_levenshtein(word, c), c))
        .filter(|(score, _)| *score >= 0.7)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_sorted_and_resolve() {
        for arch in [Arch::X86_64, Arch::Aarch64] {
            let t = arch.table();
            assert!(t.windows(2).all(|w| w[0].0 < w[1].0), "{arch:?} sorted");
        }
        assert!(tables::names::ALL.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(Arch::X86_64.syscall("read"), Some(0));
        assert_eq!(Arch::X86_64.syscall("keyctl"), Some(250));
        assert_eq!(Arch::X86_64.syscall("fchmodat2"), Some(452));
        assert_eq!(Arch::X86_64.syscall("file_setattr"), Some(469));
        assert_eq!(Arch::X86_64.syscall("_llseek"), None);
        assert_eq!(Arch::Aarch64.syscall("openat"), Some(56));
        assert_eq!(Arch::Aarch64.syscall("open"), None);
        assert!(is_syscall_anywhere("_llseek"));
        assert!(is_syscall_anywhere("s390_runtime_instr"));
        assert!(!is_syscall_anywhere("opne"));
        assert_eq!(closest_syscall("opne"), Some("open"));
    }

    #[test]
    fn every_name_in_an_arch_table_is_known_everywhere() {
        for arch in [Arch::X86_64, Arch::Aarch64] {
            for (n, _) in arch.table() {
                assert!(is_syscall_anywhere(n), "{n}");
            }
        }
    }

    #[test]
    fn native_numbers_match_libc() {
        if Arch::native() == Some(Arch::X86_64) {
            let a = Arch::X86_64;
            assert_eq!(a.syscall("keyctl"), Some(libc::SYS_keyctl as u32));
            assert_eq!(a.syscall("add_key"), Some(libc::SYS_add_key as u32));
            assert_eq!(a.syscall("unshare"), Some(libc::SYS_unshare as u32));
            assert_eq!(a.syscall("mount"), Some(libc::SYS_mount as u32));
            assert_eq!(a.syscall("clone3"), Some(libc::SYS_clone3 as u32));
            assert_eq!(a.syscall("personality"), Some(libc::SYS_personality as u32));
        }
    }
}
