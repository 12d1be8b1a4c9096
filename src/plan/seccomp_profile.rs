//! The checked, architecture-independent form of a seccomp profile.

use std::fmt;

use serde::Serialize;

use super::caps::CapSet;

/// A parsed, checked OCI/Docker seccomp profile, ready to compile for an architecture and a
/// capability set.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Profile {
    pub default_action: Action,
    /// `SCMP_ARCH_*` names from `architectures` or `archMap` (all entries and sub-architectures).
    /// Only the native architecture's calls are filtered by rules; calls made through any other
    /// ABI (x32, i386 on x86_64; arm32 on aarch64) are killed, whatever this list says.
    pub architectures: Vec<String>,
    pub flags: Vec<FilterFlag>,
    pub syscalls: Vec<SyscallRule>,
}

/// One entry of `syscalls[]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SyscallRule {
    /// Syscall names; each is a syscall on some architecture, but not necessarily this one.
    pub names: Vec<String>,
    pub action: Action,
    /// All must hold (at most one condition per argument index).
    pub args: Vec<ArgCond>,
    /// The rule applies only when all of these hold.
    pub includes: Condition,
    /// The rule does not apply when any of these holds.
    pub excludes: Condition,
    /// Where the rule came from (`/syscalls/3`), for messages.
    pub pointer: String,
}

/// `includes` / `excludes` of a rule.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Condition {
    pub caps: CapSet,
    /// Docker's architecture names (`amd64`, `arm64`, `x32`, ...).
    pub arches: Vec<String>,
    pub min_kernel: Option<KernelVersion>,
}

impl Condition {
    pub fn is_empty(&self) -> bool {
        self.caps == CapSet::EMPTY && self.arches.is_empty() && self.min_kernel.is_none()
    }
}

/// What the filter returns for a call. The order of the variants is the kernel's precedence
/// (most restrictive first), which is also how overlapping rules of one profile are decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    KillProcess,
    KillThread,
    Trap { data: u16 },
    Errno { errno: u16 },
    Trace { data: u16 },
    Log,
    Allow,
}

const RET_KILL_PROCESS: u32 = 0x8000_0000;
const RET_KILL_THREAD: u32 = 0x0000_0000;
const RET_TRAP: u32 = 0x0003_0000;
const RET_ERRNO: u32 = 0x0005_0000;
const RET_TRACE: u32 = 0x7ff0_0000;
const RET_LOG: u32 = 0x7ffc_0000;
const RET_ALLOW: u32 = 0x7fff_0000;

/// The largest errno the kernel passes through (`MAX_ERRNO`).
pub const MAX_ERRNO: u32 = 4095;

impl Action {
    /// The `SECCOMP_RET_*` value a filter returns for this action.
    pub fn ret(self) -> u32 {
        match self {
            Action::KillProcess => RET_KILL_PROCESS,
            Action::KillThread => RET_KILL_THREAD,
            Action::Trap { data } => RET_TRAP | u32::from(data),
            Action::Errno { errno } => RET_ERRNO | u32::from(errno),
            Action::Trace { data } => RET_TRACE | u32::from(data),
            Action::Log => RET_LOG,
            Action::Allow => RET_ALLOW,
        }
    }

    /// Decode a filter's return value (for the interpreter and tests).
    pub fn from_ret(ret: u32) -> Option<Action> {
        let data = (ret & 0xffff) as u16;
        Some(match ret & 0xffff_0000 {
            RET_KILL_PROCESS => Action::KillProcess,
            RET_KILL_THREAD => Action::KillThread,
            RET_TRAP => Action::Trap { data },
            RET_ERRNO => Action::Errno { errno: data },
            RET_TRACE => Action::Trace { data },
            RET_LOG => Action::Log,
            RET_ALLOW => Action::Allow,
            _ => return None,
        })
    }

    /// Lower is more restrictive: the kernel's precedence, ignoring the data bits.
    pub fn precedence(self) -> i32 {
        (self.ret() & 0xffff_0000) as i32
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::KillProcess => write!(f, "SCMP_ACT_KILL_PROCESS"),
            Action::KillThread => write!(f, "SCMP_ACT_KILL_THREAD"),
            Action::Trap { data } => write!(f, "SCMP_ACT_TRAP({data})"),
            Action::Errno { errno } => write!(f, "SCMP_ACT_ERRNO({errno})"),
            Action::Trace { data } => write!(f, "SCMP_ACT_TRACE({data})"),
            Action::Log => write!(f, "SCMP_ACT_LOG"),
            Action::Allow => write!(f, "SCMP_ACT_ALLOW"),
        }
    }
}

/// A comparison of one syscall argument (64-bit, unsigned, as libseccomp does).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct ArgCond {
    pub index: u8,
    pub op: CmpOp,
    /// The operand; for `MaskedEq`, the mask.
    pub value: u64,
    /// For `MaskedEq`, the value the masked argument must equal; unused otherwise.
    pub value_two: u64,
}

impl ArgCond {
    pub fn matches(&self, args: &[u64; 6]) -> bool {
        let a = args[usize::from(self.index).min(5)];
        match self.op {
            CmpOp::Ne => a != self.value,
            CmpOp::Lt => a < self.value,
            CmpOp::Le => a <= self.value,
            CmpOp::Eq => a == self.value,
            CmpOp::Ge => a >= self.value,
            CmpOp::Gt => a > self.value,
            CmpOp::MaskedEq => a & self.value == self.value_two,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CmpOp {
    Ne,
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
    MaskedEq,
}

impl CmpOp {
    pub const NAMES: &'static [(&'static str, CmpOp)] = &[
        ("SCMP_CMP_NE", CmpOp::Ne),
        ("SCMP_CMP_LT", CmpOp::Lt),
        ("SCMP_CMP_LE", CmpOp::Le),
        ("SCMP_CMP_EQ", CmpOp::Eq),
        ("SCMP_CMP_GE", CmpOp::Ge),
        ("SCMP_CMP_GT", CmpOp::Gt),
        ("SCMP_CMP_MASKED_EQ", CmpOp::MaskedEq),
    ];
}

/// `flags` of an OCI profile: `SECCOMP_FILTER_FLAG_*` passed to seccomp(2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum FilterFlag {
    /// Meaningless for a single-threaded child, accepted for compatibility.
    Tsync,
    Log,
    SpecAllow,
}

impl FilterFlag {
    pub const NAMES: &'static [(&'static str, FilterFlag)] = &[
        ("SECCOMP_FILTER_FLAG_TSYNC", FilterFlag::Tsync),
        ("SECCOMP_FILTER_FLAG_LOG", FilterFlag::Log),
        ("SECCOMP_FILTER_FLAG_SPEC_ALLOW", FilterFlag::SpecAllow),
    ];

    pub fn bits(self) -> u32 {
        match self {
            FilterFlag::Tsync => 1,
            FilterFlag::Log => 2,
            FilterFlag::SpecAllow => 4,
        }
    }
}

/// A kernel version `major.minor`, as `minKernel` gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct KernelVersion {
    pub major: u32,
    pub minor: u32,
}

impl KernelVersion {
    /// Parse `5.8`, `5.8.0` or a release string such as `6.18.44-fc-v669`.
    pub fn parse(s: &str) -> Option<KernelVersion> {
        let mut parts = s.trim().split(['.', '-', '+']);
        let major = parts.next()?.parse().ok()?;
        let minor = match parts.next() {
            Some(m) => m.parse().ok()?,
            None => return None,
        };
        Some(KernelVersion { major, minor })
    }

    /// The running kernel's version, from /proc/sys/kernel/osrelease (read once).
    pub fn running() -> Option<KernelVersion> {
        static RUNNING: std::sync::OnceLock<Option<KernelVersion>> = std::sync::OnceLock::new();
        *RUNNING.get_or_init(|| {
            let s = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
            KernelVersion::parse(&s)
        })
    }
}

impl fmt::Display for KernelVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_round_trip_and_order_like_the_kernel() {
        let all = [
            Action::KillProcess,
            Action::KillThread,
            Action::Trap { data: 3 },
            Action::Errno { errno: 1 },
            Action::Trace { data: 7 },
            Action::Log,
            Action::Allow,
        ];
        for a in all {
            assert_eq!(Action::from_ret(a.ret()), Some(a));
        }
        assert!(all
            .windows(2)
            .all(|w| w[0].precedence() < w[1].precedence()));
        assert_eq!(Action::from_ret(0x1234_0000), None);
    }

    #[test]
    fn kernel_versions() {
        assert_eq!(
            KernelVersion::parse("6.18.44-fc-v669"),
            Some(KernelVersion {
                major: 6,
                minor: 18
            })
        );
        assert_eq!(
            KernelVersion::parse("4.8"),
            Some(KernelVersion { major: 4, minor: 8 })
        );
        assert_eq!(KernelVersion::parse("4"), None);
        assert_eq!(KernelVersion::parse("four.8"), None);
        assert!(KernelVersion::parse("4.8").unwrap() < KernelVersion::parse("4.10").unwrap());
        assert!(KernelVersion::running().is_some());
    }
}
