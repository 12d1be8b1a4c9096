//! Installing a compiled filter on the calling thread.

use std::io;

use super::arch::Arch;
use super::bpf::Program;
use crate::sys::security as sys;

#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error(
        "the seccomp filter was compiled for {program:?}, but this process runs on {native:?}"
    )]
    WrongArch { program: Arch, native: Option<Arch> },
    #[error("installing the seccomp filter failed: {source}")]
    Kernel {
        #[source]
        source: io::Error,
        help: Option<&'static str>,
    },
}

impl InstallError {
    /// The errno to report to the parent, when the kernel refused.
    pub fn errno(&self) -> Option<i32> {
        match self {
            InstallError::Kernel { source, .. } => source.raw_os_error(),
            InstallError::WrongArch { .. } => None,
        }
    }

    pub fn help(&self) -> Option<&'static str> {
        match self {
            InstallError::Kernel { help, .. } => *help,
            InstallError::WrongArch { .. } => None,
        }
    }
}

/// Install `program` on the calling thread (children made after this inherit it).
///
/// Without no_new_privs the kernel requires CAP_SYS_ADMIN in the current user namespace: the
/// box's child has it until it drops capabilities, so install before that. `no_new_privs_set`
/// only shapes the error message. Allocation-free: fine between fork and exec.
pub fn install(program: &Program, no_new_privs_set: bool) -> Result<(), InstallError> {
    let native = Arch::native();
    if native != Some(program.arch()) {
        return Err(InstallError::WrongArch {
            program: program.arch(),
            native,
        });
    }
    sys::seccomp_set_filter(program.flags(), program.instructions()).map_err(|source| {
        let help = match source.raw_os_error() {
            Some(libc::EACCES) if !no_new_privs_set => Some(
                "without no_new_privs, installing a seccomp filter needs CAP_SYS_ADMIN: install \
                 it before dropping capabilities, or set no_new_privs first",
            ),
            Some(libc::EINVAL) => Some("the kernel does not support a flag of this filter"),
            Some(libc::EFAULT) => Some("the filter program is malformed"),
            _ => None,
        };
        InstallError::Kernel { source, help }
    })
}
