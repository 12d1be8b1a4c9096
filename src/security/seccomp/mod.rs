//! seccomp profiles: the built-in default, and OCI/Docker/podman JSON profiles.
//!
//! The path: [`parse_profile`] checks a profile's JSON (at `check` time; every problem at once,
//! each with a JSON pointer) → [`compile_native`] resolves it for the box's capability set and
//! the architecture and generates a classic BPF [`Program`] (in the parent, before fork; ~35 µs
//! for the default profile, ~100 instructions) → [`install`] loads it on the calling thread (in
//! the child, just before exec). The built-in profile is [`default_profile`].
//!
//! `check` should also compile (for the plan's capability set) to report a profile too large for
//! the kernel's 4096-instruction limit as a spec error rather than a run-time one.
//!
//! Meaning of a profile, and where foxbox departs from runc + libseccomp:
//! - Names that are a system call on *some* architecture but not on the target one are skipped,
//!   as libseccomp does (podman's profile lists `_llseek`, `s390_runtime_instr`, ...). A name
//!   that is no system call anywhere is an error (a typo would otherwise weaken a deny rule).
//! - `includes`/`excludes`: `caps` against the box's final capability set (all listed caps
//!   needed to include; any present excludes), `arches` against Docker's name for the target
//!   (`amd64`, `arm64`), `minKernel` against the running kernel (also honoured in `excludes`).
//! - When several rules for one call match, the most restrictive action wins (the kernel's
//!   order: kill, trap, errno, trace, log, allow); equal ones go by profile order. No rule
//!   matching means the default action.
//! - Two conditions on the same argument in one rule are an error: runc reads them as "any",
//!   libseccomp as "all", and either choice would silently change what a profile allows.
//! - Only the native ABI is filtered. Calls through another one (x32 or i386 on x86_64) are
//!   killed, even when `architectures`/`archMap` list it as a sub-architecture.
//! - With an errno default, a call numbered above every call the profile names returns ENOSYS
//!   (as runc does), so libc falls back to older calls; it is still refused.
//! - `SCMP_ACT_NOTIFY`, `listenerPath` and the notification flags are errors: foxbox has no
//!   notification agent. ERRNO without `errnoRet` returns EPERM.
//!
//! `tests/seccomp_differential.rs` compiles the same resolved rules with libseccomp and
//! compares every verdict; besides the points above, it names these differences:
//! - Call number -1 (every bit set, the x32 bit among them) is killed as a foreign-ABI call;
//!   libseccomp passes it to the rules (tracers use it to skip a call).
//! - When rules with different actions hold for one call, libseccomp lets an unconditional rule
//!   replace the call's conditional ones (the built-in default's EINVAL for audit netlink
//!   sockets beside its `socket` allow would be lost) and leaves other combinations
//!   unspecified; foxbox applies the kernel's precedence, so it is only ever the stricter.
//! - libseccomp 2.5 merges one call's rules into an argument tree and can apply one rule's
//!   range comparison to another rule's values (`a0 < 1 && a2 < X` beside `a0 > 4` killed a
//!   call that neither matches, in the kernel too); foxbox keeps every rule whole.
//! - Calls newer than libseccomp's table cannot be named for a foreign architecture there;
//!   foxbox's tables come from the kernel's.
//! - The kernel lets x86_64's `uretprobe` and `uprobe` past every filter: no profile can refuse
//!   them, whichever compiler made it.

pub mod arch;
pub mod bpf;
mod default;
mod errno;
mod install;
pub mod interp;
mod parse;
/// The checked profile is a plan value; here at its old path too.
pub use crate::plan::seccomp_profile as profile;
pub mod resolve;
mod tables;

use std::sync::OnceLock;

pub use arch::Arch;
pub use bpf::{CompileError, Insn, Program, MAX_INSNS};
pub use install::{install, InstallError};
pub use profile::{
    Action, ArgCond, CmpOp, Condition, FilterFlag, KernelVersion, Profile, SyscallRule,
};
pub use resolve::{resolve, Rule, Ruleset, Target};

use crate::plan::caps::CapSet;

/// One problem in a profile: what and, where known, the JSON pointer to it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ProfileError {
    pub message: String,
    /// JSON pointer of the offending value (e.g. `/syscalls/3/names/0`), when known.
    pub pointer: Option<String>,
    pub help: Option<String>,
}

/// Parse and check a profile's JSON text. Every problem found is returned, not just the first.
pub fn parse_profile(text: &str) -> Result<Profile, Vec<ProfileError>> {
    parse::parse(text)
}

/// foxbox's built-in profile, equivalent to podman's default (`default.rs` lists every
/// difference and why).
pub fn default_profile() -> &'static Profile {
    static DEFAULT: OnceLock<Profile> = OnceLock::new();
    DEFAULT.get_or_init(default::build)
}

/// Compile `profile` for a box whose final capability set is `caps`, on `arch`, for the running
/// kernel (`minKernel`).
pub fn compile(profile: &Profile, caps: CapSet, arch: Arch) -> Result<Program, CompileError> {
    compile_for(
        profile,
        &Target {
            arch,
            caps,
            kernel: KernelVersion::running(),
        },
    )
}

/// Compile `profile` for the architecture this binary runs on: what the executor calls in the
/// parent, before fork, with the box's final capability set.
pub fn compile_native(profile: &Profile, caps: CapSet) -> Result<Program, CompileError> {
    let arch = Arch::native().ok_or(CompileError::UnsupportedArch(std::env::consts::ARCH))?;
    compile(profile, caps, arch)
}

/// Compile `profile` for an explicit target.
pub fn compile_for(profile: &Profile, target: &Target) -> Result<Program, CompileError> {
    bpf::compile(&resolve(profile, target))
}

#[cfg(test)]
mod tests;
