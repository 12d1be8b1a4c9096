//! The child's calls into capabilities, no_new_privs and seccomp, in one place so the security
//! layer can take them over at merge.
//!
//! INTERIM: capabilities and no_new_privs are real (capset, PR_CAPBSET_DROP, PR_CAP_AMBIENT,
//! PR_SET_NO_NEW_PRIVS). [`install_seccomp`] installs nothing yet: it is the hook the real
//! compiler/installer (`foxbox::security::seccomp`) replaces.

use crate::exec::error::{Context, StepError};
use crate::plan::Seccomp;
use crate::security::caps::CapSet;
use crate::sys::process::{self as p, CapSets};

/// Highest capability number the kernel could know (bits of a u64 mask).
const MAX_CAP: u32 = 63;

/// Set all five capability sets to exactly `want`. Runs after the user change (which, with
/// keep-caps, left the permitted set intact but cleared the effective one).
pub fn set_capabilities(want: CapSet) -> Result<(), StepError> {
    let cur = p::capget().ctx(|| "capget".into())?;
    // Effective again, so that CAP_SETPCAP allows the bounding-set drops below.
    p::capset(CapSets {
        effective: cur.permitted,
        ..cur
    })
    .ctx(|| "raise the effective set".into())?;
    for cap in 0..=MAX_CAP {
        if !want.contains(cap) && p::in_bounding_set(cap) {
            p::drop_bounding_cap(cap)
                .ctx(|| format!("drop capability {cap} from the bounding set"))?;
        }
    }
    let bits = want.0 & cur.permitted;
    if bits != want.0 {
        let missing = CapSet(want.0 & !cur.permitted);
        return Err(StepError::new(
            libc::EPERM,
            format!(
                "the box's user namespace lacks {}",
                missing.names().join(", ")
            ),
        ));
    }
    p::capset(CapSets {
        effective: bits,
        permitted: bits,
        inheritable: bits,
    })
    .ctx(|| "capset".into())?;
    p::ambient_clear_all().ctx(|| "clear the ambient set".into())?;
    for cap in want.iter() {
        p::ambient_raise(cap).ctx(|| format!("raise ambient capability {cap}"))?;
    }
    Ok(())
}

pub fn set_no_new_privs() -> Result<(), StepError> {
    p::set_no_new_privs().ctx(|| "prctl(PR_SET_NO_NEW_PRIVS)".into())
}

/// INTERIM: no filter is installed until the seccomp compiler lands (see the module docs).
pub fn install_seccomp(_profile: &Seccomp) -> Result<(), StepError> {
    Ok(())
}

/// Whether [`install_seccomp`] really installs a filter (the parent warns when not).
pub const SECCOMP_ENFORCED: bool = false;
