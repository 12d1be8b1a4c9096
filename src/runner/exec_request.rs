//! What `foxbox exec` hands the executor: the box's recorded [`ExecInfo`] turned into a
//! [`Request`] (the executor reads no box record).

use crate::boxes::execinfo::{ExecInfo, SeccompSource};
use crate::exec::error::{ExecError, StepError};
use crate::exec::join::{Filter, Request};
use crate::exec::steps::Step;
use crate::plan::Plan;
use crate::security::caps::CapSet;
use crate::security::seccomp;

/// The steps `foxbox exec` runs in a box started from `plan` (as its box's user, without a
/// terminal), built the way `exec` builds them from the box's record.
pub fn plan_steps(plan: &Plan) -> Result<Vec<Step>, ExecError> {
    let info = ExecInfo::from_plan(plan, None);
    let req = request(&info, "", Vec::new())?;
    Ok(req.steps(plan.limits.needs_cgroup()))
}

/// The request to run `args` the way the box named `name` runs its command.
pub fn request(info: &ExecInfo, name: &str, args: Vec<String>) -> Result<Request, ExecError> {
    Ok(Request {
        args,
        env: info.env.clone(),
        hostname: info.hostname.clone().unwrap_or_else(|| name.to_string()),
        cwd: info.cwd.clone(),
        user: (&info.user).into(),
        capabilities: info.caps(),
        added_capabilities: CapSet(info.added_capabilities & info.capabilities),
        no_new_privs: info.no_new_privs,
        seccomp: seccomp_filter(info)?,
        tty: false,
        stdin: false,
    })
}

fn refused(message: String, hint: &str) -> ExecError {
    ExecError::step("seccomp", None, StepError::msg(message).with_hint(hint))
}

/// The box's seccomp filter, compiled again from its source and checked against the one the
/// box got: a profile edited since would otherwise give `exec` a different filter.
fn seccomp_filter(info: &ExecInfo) -> Result<Option<Filter>, ExecError> {
    let caps = info.caps();
    let (compiled, profile) = match &info.seccomp {
        SeccompSource::Unconfined => return Ok(None),
        SeccompSource::Default => (
            seccomp::compile_native(seccomp::default_profile(), caps),
            None,
        ),
        SeccompSource::Profile { path } => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                refused(
                    format!(
                        "cannot read the box's seccomp profile {}: {e}",
                        path.display()
                    ),
                    "exec applies the box's own filter; restore the profile file",
                )
            })?;
            let parsed = seccomp::parse_profile(&text).map_err(|errs| {
                let first = errs.first().map(|e| e.message.clone()).unwrap_or_default();
                refused(
                    format!(
                        "the box's seccomp profile {} no longer parses: {first}",
                        path.display()
                    ),
                    "exec applies the box's own filter; restore the profile file",
                )
            })?;
            (seccomp::compile_native(&parsed, caps), Some(path.clone()))
        }
    };
    let program = compiled.map_err(|e| {
        refused(
            format!("cannot compile the seccomp profile: {e}"),
            "restore the box's profile",
        )
    })?;
    if info
        .seccomp_digest
        .as_ref()
        .is_some_and(|d| *d != program.digest())
    {
        return Err(refused(
            "the box's seccomp profile changed since the box started".to_string(),
            "exec applies exactly the box's filter; restore the profile or restart the box",
        ));
    }
    Ok(Some(Filter { program, profile }))
}
