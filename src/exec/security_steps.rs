//! The security steps of a box's process (capabilities, no_new_privs, seccomp): the security
//! layer's calls, their errors as step errors. The seccomp program is compiled by the parent
//! before the clone ([`compile`]), so the child only installs it.

use crate::exec::error::StepError;
use crate::plan::{Plan, Seccomp};
use crate::security::caps::CapSet;
use crate::security::capset;
use crate::security::seccomp::{self, Program};

fn cap_err(e: capset::CapError) -> StepError {
    StepError::new(e.errno().unwrap_or(0), e.to_string())
}

/// Set the bounding set to `bounding`, and effective, permitted, inheritable and ambient to
/// `granted` (within it).
pub fn set_capabilities(bounding: CapSet, granted: CapSet) -> Result<(), StepError> {
    capset::set_sets(bounding, granted).map_err(cap_err)
}

pub fn set_no_new_privs() -> Result<(), StepError> {
    capset::set_no_new_privs().map_err(cap_err)
}

/// The filter for the plan (none when unconfined), compiled for the box's final capabilities.
pub fn compile(plan: &Plan) -> Result<Option<Program>, StepError> {
    let caps = plan.capabilities.value;
    let compiled = match &plan.seccomp.value {
        Seccomp::Unconfined => return Ok(None),
        Seccomp::Default => seccomp::compile_native(seccomp::default_profile(), caps),
        Seccomp::Profile { profile, .. } => seccomp::compile_native(profile, caps),
    };
    compiled.map(Some).map_err(|e| {
        StepError::msg(format!("cannot compile the seccomp profile: {e}"))
            .with_hint("simplify the profile, or use profile = \"default\"")
    })
}

/// Install the parent-compiled filter on this (the child's) thread.
pub fn install_seccomp(program: Option<&Program>, no_new_privs: bool) -> Result<(), StepError> {
    let Some(p) = program else { return Ok(()) };
    seccomp::install(p, no_new_privs).map_err(|e| {
        let err = StepError::new(e.errno().unwrap_or(0), e.to_string());
        match e.help() {
            Some(h) => err.with_hint(h),
            None => err,
        }
    })
}
