//! What `foxbox exec` hands the executor: the box's recorded [`ExecInfo`] turned into a
//! [`Request`], its fox and its cgroup (the executor reads no box record, and the CLI reaches
//! the executor only through here).

use crate::boxes::execinfo::{ExecInfo, SeccompSource};
use crate::boxes::{BoxEntry, ProcId, Status};
use crate::diag::codes;
use crate::exec::error::{ExecError, StepError};
use crate::exec::join::{self, Filter, Request, Target};
use crate::exec::steps::Step;
use crate::plan::Plan;
use crate::security::caps::CapSet;
use crate::security::seccomp;
use crate::sys::process::Exit;

use super::RunError;

/// A running box and the request to run one more command in it, which the caller may still
/// adjust (`--env`, `--workdir`, `--user`, a terminal) before [`Joinable::join`].
pub struct Joinable<'a> {
    entry: &'a BoxEntry,
    fox: ProcId,
    pub request: Request,
}

/// The box `entry` as `foxbox exec` joins it: refused when it is not running or has no
/// record of how its fox runs; `args` run the way its command runs.
pub fn joinable(entry: &BoxEntry, args: Vec<String>) -> Result<Joinable<'_>, RunError> {
    let name = &entry.config.name;
    let fox = match entry.state.fox.filter(|p| p.alive()) {
        Some(f) if entry.state.status == Status::Running => f,
        _ => {
            return Err(RunError::new(
                codes::boxes::NOT_RUNNING,
                format!("box {name} is not running"),
            ))
        }
    };
    let info = entry.config.exec.as_ref().ok_or_else(|| {
        RunError::new(
            codes::boxes::LOOKUP,
            format!("box {name} has no record of how its fox runs"),
        )
    })?;
    let request = request(info, name, args).map_err(RunError::from_exec)?;
    Ok(Joinable {
        entry,
        fox,
        request,
    })
}

impl Joinable<'_> {
    /// Join the box (its cgroup as recorded, its namespaces), run the command and follow it
    /// to its end.
    pub fn join(&self) -> Result<Exit, RunError> {
        let cgroup = super::cgroup_record::recorded(self.entry)
            .map_err(super::typed(codes::limits::CGROUP))?;
        let fox = self.fox;
        let target = Target {
            pid: fox.pid,
            alive: &|| fox.alive(),
        };
        join::run(target, cgroup.as_ref(), &self.request).map_err(RunError::from_exec)
    }
}

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
