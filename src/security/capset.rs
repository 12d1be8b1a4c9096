//! Setting the calling thread's capability sets and no_new_privs.
//!
//! The order in the box's child matters, because each step needs a capability a later step
//! removes:
//! 1. groups and gid, then [`set_keep_caps`]`(true)` and the uid: a change from uid 0 to a
//!    non-zero uid clears the permitted set unless keep-caps is on, and always clears the
//!    effective and ambient sets (the next step restores them);
//! 2. [`set_sets`]: drops the bounding set (needs CAP_SETPCAP, so first), then sets
//!    effective, permitted and inheritable, then raises ambient (ambient needs the cap in both
//!    permitted and inheritable, so last); a non-root uid gets only the added capabilities in
//!    those four (podman's rule, applied by the executor's `capabilities` step);
//! 3. [`set_no_new_privs`], then the seccomp filter (with no_new_privs, installing needs no
//!    capability); without no_new_privs, the filter goes in before step 1, while the child
//!    still has CAP_SYS_ADMIN in its user namespace (runc's order), and must allow the calls
//!    of steps 1-2;
//! 4. exec. keep-caps is reset by exec.
//!
//! None of these allocate, so they may run between fork and exec.

use std::io;

use crate::plan::caps::CapSet;
use crate::sys::security::{self as sys, CapData};

#[derive(Debug, thiserror::Error)]
#[error("{op}{}: {source}", cap.map(|c| format!(" ({})", cap_name(c))).unwrap_or_default())]
pub struct CapError {
    /// The operation that failed, e.g. `capset` or `PR_CAPBSET_DROP`.
    pub op: &'static str,
    pub cap: Option<u32>,
    #[source]
    pub source: io::Error,
}

impl CapError {
    pub fn errno(&self) -> Option<i32> {
        self.source.raw_os_error()
    }
}

fn cap_name(c: u32) -> String {
    crate::plan::caps::NAMES
        .get(c as usize)
        .map(|n| format!("CAP_{n}"))
        .unwrap_or_else(|| format!("capability {c}"))
}

fn fail(op: &'static str, cap: Option<u32>) -> impl FnOnce(io::Error) -> CapError {
    move |source| CapError { op, cap, source }
}

/// The five capability sets of a thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CapState {
    pub effective: CapSet,
    pub permitted: CapSet,
    pub inheritable: CapSet,
    pub bounding: CapSet,
    pub ambient: CapSet,
}

fn join(lo: u32, hi: u32) -> CapSet {
    CapSet(u64::from(lo) | (u64::from(hi) << 32))
}

fn split(set: CapSet) -> (u32, u32) {
    (set.0 as u32, (set.0 >> 32) as u32)
}

fn data(effective: CapSet, permitted: CapSet, inheritable: CapSet) -> [CapData; 2] {
    let (e0, e1) = split(effective);
    let (p0, p1) = split(permitted);
    let (i0, i1) = split(inheritable);
    [
        CapData {
            effective: e0,
            permitted: p0,
            inheritable: i0,
        },
        CapData {
            effective: e1,
            permitted: p1,
            inheritable: i1,
        },
    ]
}

const PR_CAPBSET_READ: i32 = libc::PR_CAPBSET_READ;
const PR_CAPBSET_DROP: i32 = libc::PR_CAPBSET_DROP;
const PR_CAP_AMBIENT: i32 = libc::PR_CAP_AMBIENT;
const CAP_SETPCAP: u32 = 8;

/// Whether `cap` is in the bounding set; `None` past the kernel's last capability.
fn in_bounding(cap: u32) -> Result<Option<bool>, CapError> {
    match sys::prctl(PR_CAPBSET_READ, cap.into(), 0, 0, 0) {
        Ok(v) => Ok(Some(v == 1)),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(None),
        Err(e) => Err(fail("PR_CAPBSET_READ", Some(cap))(e)),
    }
}

/// The calling thread's capability sets.
pub fn current() -> Result<CapState, CapError> {
    let d = sys::capget().map_err(fail("capget", None))?;
    let mut bounding = CapSet::EMPTY;
    let mut ambient = CapSet::EMPTY;
    for cap in 0..64u32 {
        match in_bounding(cap)? {
            None => break,
            Some(true) => bounding.insert(cap),
            Some(false) => {}
        }
        let a = sys::prctl(
            PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_IS_SET as _,
            cap.into(),
            0,
            0,
        )
        .map_err(fail("PR_CAP_AMBIENT_IS_SET", Some(cap)))?;
        if a == 1 {
            ambient.insert(cap);
        }
    }
    Ok(CapState {
        effective: join(d[0].effective, d[1].effective),
        permitted: join(d[0].permitted, d[1].permitted),
        inheritable: join(d[0].inheritable, d[1].inheritable),
        bounding,
        ambient,
    })
}

/// Set all five capability sets of the calling thread to exactly `set`: bounding, effective,
/// permitted, inheritable and ambient (see [`set_sets`]).
pub fn set_capabilities(set: CapSet) -> Result<(), CapError> {
    set_sets(set, set)
}

/// Set the bounding set of the calling thread to `bounding`, and its effective, permitted,
/// inheritable and ambient sets to `granted` (which must lie within it). Ambient matters only
/// for a non-root user (it is what carries the sets across exec); for uid 0 it is set too, so
/// that every set says the same.
///
/// Call it after the uid change (see the module docs). Capabilities the kernel does not have
/// are dropped from the bounding set like any other cap outside `bounding`.
pub fn set_sets(bounding: CapSet, granted: CapSet) -> Result<(), CapError> {
    let d = sys::capget().map_err(fail("capget", None))?;
    let permitted = join(d[0].permitted, d[1].permitted);
    let effective = join(d[0].effective, d[1].effective);
    let inheritable = join(d[0].inheritable, d[1].inheritable);

    // Dropping from the bounding set needs CAP_SETPCAP in the effective set; after a uid change
    // with keep-caps it is only permitted.
    if permitted.contains(CAP_SETPCAP) && !effective.contains(CAP_SETPCAP) {
        sys::capset(&data(permitted, permitted, inheritable)).map_err(fail("capset", None))?;
    }
    for cap in 0..64u32 {
        match in_bounding(cap)? {
            None => break,
            Some(true) if !bounding.contains(cap) => {
                sys::prctl(PR_CAPBSET_DROP, cap.into(), 0, 0, 0)
                    .map_err(fail("PR_CAPBSET_DROP", Some(cap)))?;
            }
            Some(_) => {}
        }
    }
    sys::prctl(PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_CLEAR_ALL as _, 0, 0, 0)
        .map_err(fail("PR_CAP_AMBIENT_CLEAR_ALL", None))?;
    sys::capset(&data(granted, granted, granted)).map_err(fail("capset", None))?;
    for cap in granted.iter() {
        sys::prctl(
            PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_RAISE as _,
            cap.into(),
            0,
            0,
        )
        .map_err(fail("PR_CAP_AMBIENT_RAISE", Some(cap)))?;
    }
    Ok(())
}

/// Keep the permitted set across a change from uid 0 to a non-zero uid (reset by exec).
pub fn set_keep_caps(on: bool) -> Result<(), CapError> {
    sys::prctl(libc::PR_SET_KEEPCAPS, on.into(), 0, 0, 0)
        .map(|_| ())
        .map_err(fail("PR_SET_KEEPCAPS", None))
}

/// Set no_new_privs on the calling thread (inherited, and irreversible).
pub fn set_no_new_privs() -> Result<(), CapError> {
    sys::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
        .map(|_| ())
        .map_err(fail("PR_SET_NO_NEW_PRIVS", None))
}

/// Whether no_new_privs is set on the calling thread.
pub fn no_new_privs() -> Result<bool, CapError> {
    sys::prctl(libc::PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0)
        .map(|v| v == 1)
        .map_err(fail("PR_GET_NO_NEW_PRIVS", None))
}
