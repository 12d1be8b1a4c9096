//! One box from plan to exit: the image, the box's record, its rootfs, volumes, cgroup and
//! network, the executor, and the state it leaves. `foxbox up` and `foxbox run` (attached or
//! detached) all come through here, so a box is the same thing however it was started.

pub mod box_plan;
pub mod cgroup_record;
pub mod check;
pub mod exec_request;
pub mod holder;
mod hooks;
pub mod keep_id;
pub mod lifecycle;
pub mod remove;
pub mod supervisor;
pub mod system;

use std::collections::HashMap;
use std::fs;
use std::path::PathBuf;
use std::time::Instant;

use crate::boxes::execinfo::ExecInfo;
use crate::boxes::{BoxConfig, BoxError, Boxes};
use crate::cgroup::{self, BoxCgroup, Host};
use crate::diag::{codes, Diagnostic};
use crate::exec::{self, BoxRootfs, Launch, Layers};
use crate::image::{Image, Store};
use crate::plan::{BoxPlan, ImageRef, MountKind, NetMode, Plan};
use crate::store::paths::Paths;
use crate::volume::Volumes;

pub use hooks::BoxHooks;
pub use lifecycle::{BoxLife, Outcome};
pub use supervisor::{detach, Detached};

/// How a box is started, beyond its plan.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Remove the box when it exits.
    pub auto_remove: bool,
    /// Parent cgroup (relative to each hierarchy's root), from `--cgroup-parent`.
    pub cgroup_parent: Option<String>,
    /// A terminal for the box; `None`: when stdin is one.
    pub tty: Option<bool>,
    /// When the image is pulled (`--pull`).
    pub pull: crate::image::PullPolicy,
    /// Mount the upper dir `volatile` although the box is kept: its caller reads the upper
    /// dir after the box ends and syncs what it keeps (a build step's layer), so the overlay
    /// need not fsync every file it copies up.
    pub volatile_upper: bool,
}

/// A box that could not be run: diagnostics to render against the plan, and the exit code
/// (125 for foxbox's own errors, 126/127 for a command that cannot run).
#[derive(Debug, thiserror::Error)]
#[error("{}", diagnostics.first().map(|d| d.message.as_str()).unwrap_or("the box could not run"))]
pub struct RunError {
    pub diagnostics: Vec<Diagnostic>,
    pub exit: u8,
}

impl RunError {
    pub fn new(code: &str, message: impl Into<String>) -> RunError {
        RunError {
            diagnostics: vec![Diagnostic::error(code, message)],
            exit: 125,
        }
    }

    pub(crate) fn from_exec(e: exec::ExecError) -> RunError {
        RunError {
            exit: e.exit_code(),
            diagnostics: vec![e.diagnostic()],
        }
    }
}

fn err(code: &'static str) -> impl Fn(String) -> RunError {
    move |m| RunError::new(code, m)
}

/// A typed error at the runner's boundary, as a diagnostic that keeps its chain of sources.
fn typed<E: std::error::Error + 'static>(code: &'static str) -> impl Fn(E) -> RunError {
    move |e| RunError {
        diagnostics: vec![Diagnostic::from_error(code, &e)],
        exit: 125,
    }
}

/// A box made and ready to start: its record staged (or written), its image, rootfs,
/// volumes and cgroup.
pub struct ReadyBox {
    /// The plan with the image's defaults (workdir, user, env, command) under the spec's.
    pub plan: BoxPlan,
    /// The box's record, through its life.
    pub life: BoxLife,
    pub image: Image,
    pub rootfs: BoxRootfs,
    pub volumes: HashMap<String, PathBuf>,
    pub cgroup: Option<BoxCgroup>,
    /// Warnings to show before the box runs (limits not enforced under best-effort, ...).
    pub warnings: Vec<Diagnostic>,
    /// How long resolving (or importing) the image took.
    pub image_took: std::time::Duration,
    /// The plan's seccomp filter, compiled (`None`: unconfined, or left to the executor).
    pub seccomp: Option<crate::security::seccomp::Program>,
}

/// The image from the store; a registry reference (or a pinned digest) that is not there is
/// pulled first.
fn resolve_image(
    store: &Store,
    plan: &Plan,
    policy: crate::image::PullPolicy,
) -> Result<Image, RunError> {
    let fail = |e: &(dyn std::error::Error + 'static)| RunError {
        diagnostics: vec![Diagnostic::from_error(codes::image::RESOLVE, e)
            .with_span(plan.image.span)
            .with_label("this image")],
        exit: 125,
    };
    let pullable = matches!(plan.image.value, ImageRef::Stored { .. });
    // The common case first, without reading the registry settings.
    if !pullable || policy == crate::image::PullPolicy::Missing {
        match store.resolve(&plan.image.value) {
            Ok(image) => return Ok(image),
            Err(local) if !pullable => return Err(fail(&local)),
            Err(_) => {}
        }
    }
    let settings = crate::oci::Settings::from_env().map_err(|e| fail(&e))?;
    let client = crate::oci::Client::new(settings);
    let ctx = crate::image::PullContext::new(&client);
    store
        .resolve_with(&plan.image.value, &ctx, policy)
        .map_err(|e| fail(&e))
}

/// Let this process die of SIGPIPE, quietly, when its reader goes away (for commands that only
/// read and print: `foxbox ps | head -1`).
pub fn default_sigpipe() {
    crate::sys::process::default_sigpipe();
}

/// What the image reference looks like to a person (`ps`'s IMAGE column).
pub fn image_label(r: &ImageRef) -> String {
    match r {
        ImageRef::Stored(n) => n.to_string(),
        ImageRef::Tarball { path } => path.display().to_string(),
    }
}

/// The plan with each forward that asked for any host port given a free one, so that the
/// helper, the box's record, `ps` and `port` all use the port picked.
fn with_host_ports(plan: Plan) -> Result<Plan, crate::net::NetError> {
    if plan.network.ports.iter().all(|p| p.value.host_port != 0) {
        return Ok(plan);
    }
    let mut p = plan;
    p.network.ports = crate::net::ports::pick_free(&p.network.ports)?;
    Ok(p)
}

/// A host port that cannot be had, at its spec line, with what to do.
fn port_error(plan: &Plan) -> impl Fn(crate::net::NetError) -> RunError + '_ {
    move |e| RunError {
        diagnostics: vec![Diagnostic::from_error(codes::net::PORT, &e)
            .with_span(e.span().or(plan.network.mode.span))
            .with_label("this port")
            .with_help(match e {
                crate::net::NetError::PortPrivileged { .. } => {
                    "use a port at or above `sysctl net.ipv4.ip_unprivileged_port_start`, \
                     or (as root) lower that sysctl"
                }
                _ => "choose another host port, or stop what holds this one",
            })],
        exit: 125,
    }
}

/// Resolve the image, record the box, and make its rootfs, volumes and cgroup. On failure
/// nothing of the box is left behind.
pub fn prepare(paths: &Paths, plan: &Plan, opts: &RunOptions) -> Result<ReadyBox, RunError> {
    let t = Instant::now();
    let store = Store::open_for_boxes(paths).map_err(typed(codes::image::STORE))?;
    let image = resolve_image(&store, plan, opts.pull)?;
    prepare_image(paths, plan, opts, store, image, t.elapsed())
}

/// [`prepare`] for an image the caller already has (a build step's), not the plan's.
pub fn prepare_image(
    paths: &Paths,
    plan: &Plan,
    opts: &RunOptions,
    store: Store,
    image: Image,
    image_took: std::time::Duration,
) -> Result<ReadyBox, RunError> {
    let with_ports = with_host_ports(plan.clone()).map_err(port_error(plan))?;
    let plan = &box_plan::box_plan(&with_ports, &image);
    let command = plan.process.args.value.clone();
    if command.is_empty() {
        return Err(RunError {
            diagnostics: vec![Diagnostic::error(
                codes::spec::NO_COMMAND,
                "no command: the spec names none, the image has no default and no /bin/sh",
            )
            .with_span(plan.process.args.span.or(plan.image.span))
            .with_help(
                "set `box.command` (or `box.entrypoint`), or give the command after the image",
            )],
            exit: 125,
        });
    }

    // A taken host port is refused here, at its own spec line, before anything is made.
    crate::net::ports::check_free(&plan.network.ports).map_err(port_error(plan))?;
    let boxes = Boxes::open_unswept(paths.boxes()).map_err(typed(codes::boxes::STORE))?;
    // Compiled once, for the executor and for `exec`'s record. A profile that does not
    // compile is left to the executor's seccomp step, which reports it against the spec.
    let seccomp = exec::security_steps::compile(plan).ok().flatten();
    let volume_names: Vec<String> = plan
        .mounts
        .iter()
        .filter_map(|m| match &m.kind {
            MountKind::Volume { name } => Some(name.clone()),
            _ => None,
        })
        .collect();
    let config = BoxConfig {
        id: String::new(),
        name: plan
            .name
            .as_ref()
            .map(|n| n.value.clone())
            .unwrap_or_default(),
        created: 0,
        image: image_label(&plan.image.value),
        image_id: Some(image.id.clone()),
        command,
        spec: match &plan.origin {
            crate::plan::Origin::Spec { path, .. } => Some(path.clone()),
            crate::plan::Origin::CommandLine => None,
        },
        ports: plan
            .network
            .ports
            .iter()
            .map(|p| crate::net::ports::describe(&p.value))
            .collect(),
        volumes: volume_names.clone(),
        auto_remove: opts.auto_remove,
        plan: serde_json::to_value(plan)
            .map_err(|e| err(codes::boxes::CREATE)(format!("cannot encode the box's plan: {e}")))?,
        exec: Some(ExecInfo::from_plan(
            plan,
            seccomp.as_ref().map(|p| p.digest()),
        )),
        creator: None,
        initial: None,
    };
    let life = BoxLife::stage(boxes, config).map_err(|e| RunError {
        diagnostics: vec![Diagnostic::from_error(codes::boxes::CREATE, &e)
            .with_span(plan.name.as_ref().and_then(|n| n.span))],
        exit: 125,
    })?;
    crate::store::fault::point("start.staged");
    // A box that makes nothing outside its own directory (no cgroup, no network helper) is
    // recorded once it runs, or later (see [`BoxHooks`]); any other is recorded
    // first, so that `rm` finds all it made even if foxbox is killed on the way.
    let outside = plan.limits.needs_cgroup()
        || !matches!(plan.network.mode.value, NetMode::None | NetMode::Host);
    if outside {
        if let Err(e) = life.record() {
            life.discard(paths);
            return Err(typed(codes::boxes::CREATE)(e));
        }
    }

    let mut made = ReadyBox {
        plan: plan.clone(),
        life,
        image,
        rootfs: BoxRootfs {
            layers: Layers::Dir(PathBuf::new()),
            mountpoint: PathBuf::new(),
        },
        volumes: HashMap::new(),
        cgroup: None,
        warnings: Vec::new(),
        image_took,
        seccomp,
    };
    match make_rootfs_volumes_cgroup(paths, plan, opts, &store, &mut made, &volume_names) {
        Ok(()) => Ok(made),
        Err(e) => {
            made.discard(paths);
            Err(e)
        }
    }
}

/// What a staged box is made of besides its record: its image use marker and rootfs, its
/// volumes (made when missing) and its cgroup.
fn make_rootfs_volumes_cgroup(
    paths: &Paths,
    plan: &Plan,
    opts: &RunOptions,
    store: &Store,
    made: &mut ReadyBox,
    volume_names: &[String],
) -> Result<(), RunError> {
    let id = made.life.id().to_string();
    let dir = made.life.entry().dir.clone();
    store
        .add_user(&made.image.id, &id)
        .map_err(typed(codes::image::USERS))?;
    let r = match keep_id::moved_rootfs(plan, store.id_maps()) {
        Some(k) => store
            .prepare_moved_rootfs(&made.image, &dir, &k.moves, &k.etc)
            .map_err(typed(codes::habits::KEEP_ID_ROOTFS))?,
        None => store
            .prepare_box_rootfs(&made.image, &dir)
            .map_err(typed(codes::image::ROOTFS))?,
    };
    // Every box mounts its root over this one directory, each inside its own mount namespace
    // (see [`BoxRootfs::mountpoint`]): no directory to make and delete per box.
    let mountpoint = made.life.boxes().mountpoint();
    fs::create_dir_all(&mountpoint)
        .map_err(|e| err(codes::boxes::MOUNTPOINT)(format!("{}: {e}", mountpoint.display())))?;
    made.rootfs = BoxRootfs {
        layers: r.volatile(opts.auto_remove || opts.volatile_upper),
        mountpoint,
    };

    if !volume_names.is_empty() {
        let vols =
            Volumes::open(paths.volumes(), paths.boxes()).map_err(typed(codes::volume::VOLUME))?;
        for name in volume_names {
            let v = vols.ensure(name).map_err(|e| {
                let span = plan
                    .mounts
                    .iter()
                    .find(|m| matches!(&m.kind, MountKind::Volume { name: n } if n == name))
                    .and_then(|m| m.span);
                RunError {
                    diagnostics: vec![
                        Diagnostic::from_error(codes::volume::VOLUME, &e).with_span(span)
                    ],
                    exit: 125,
                }
            })?;
            vols.add_user(name, &id)
                .map_err(typed(codes::volume::VOLUME))?;
            made.volumes.insert(name.clone(), v.mountpoint);
        }
    }

    if plan.limits.needs_cgroup() {
        let host = Host::detect().map_err(typed(codes::limits::DETECT))?;
        let lp = cgroup::plan(&plan.limits, &host, opts.cgroup_parent.as_deref());
        let diags = lp.diagnostics(plan.limits.enforce());
        if lp.refuses(plan.limits.enforce()) {
            return Err(RunError {
                diagnostics: diags,
                exit: 125,
            });
        }
        made.warnings.extend(diags);
        if lp.has_limits() {
            // Recorded before it is made: a CLI killed while making it leaves a record that
            // `rm` can clean up from.
            let name = cgroup::cgroup_name(&id).map_err(typed(codes::limits::CGROUP))?;
            let intended = BoxCgroup {
                nodes: lp
                    .sites
                    .iter()
                    .map(|(site, controllers)| cgroup::BoxNode {
                        node: cgroup::Node::new(site.version, site.parent.join(&name)),
                        controllers: controllers.clone(),
                    })
                    .collect(),
            };
            cgroup_record::write(made.life.entry(), &intended)
                .map_err(typed(codes::limits::CGROUP))?;
            crate::store::fault::point("start.cgroup-recorded");
            let cg = BoxCgroup::create(&lp, &id).map_err(typed(codes::limits::CGROUP))?;
            cgroup_record::write(made.life.entry(), &cg).map_err(typed(codes::limits::CGROUP))?;
            made.cgroup = Some(cg);
        }
    }
    Ok(())
}

impl ReadyBox {
    /// The executor's launch for this box.
    pub fn launch<'a>(&'a self, paths: &Paths, opts: &RunOptions) -> Launch<'a> {
        let plan = &self.plan;
        let config = &self.life.entry().config;
        let mut l = Launch::new(plan, self.rootfs.clone(), &config.name);
        l.volumes = self.volumes.clone();
        l.seccomp = self.seccomp.as_ref();
        l.holder = holder::get(&paths.runtime, &l.id_maps);
        l.id_maps = keep_id::box_maps(plan, &l.id_maps);
        l.tty = opts
            .tty
            .or(plan.process.tty)
            .unwrap_or_else(|| std::io::IsTerminal::is_terminal(&std::io::stdin()));
        l
    }

    /// The box's runtime directory (helper sockets and logs): short, for unix socket paths.
    pub fn run_dir(&self, paths: &Paths) -> PathBuf {
        box_run_dir(paths, self.id())
    }

    pub fn id(&self) -> &str {
        self.life.id()
    }

    /// The box's name (given or generated).
    pub fn name(&self) -> &str {
        &self.life.entry().config.name
    }

    /// Remove the box after a failed start (or once a build step is done with it): all of
    /// it once recorded, else what was staged.
    pub fn discard(&self, paths: &Paths) {
        self.life.discard(paths);
    }
}

/// A box's runtime directory (helper sockets and logs): short, for unix socket paths.
pub fn box_run_dir(paths: &Paths, id: &str) -> PathBuf {
    paths.runtime.join(&id[..id.len().min(RUN_DIR_ID)])
}

/// How much of a box's id names its runtime directory.
const RUN_DIR_ID: usize = 12;

/// Run a prepared box attached to this terminal; returns how it ended and the step timings.
/// The box is left on record, exited (unless `--rm`: its caller removes it, see
/// [`run_attached`]).
pub fn run_foreground(
    paths: &Paths,
    opts: &RunOptions,
    ready: &ReadyBox,
) -> Result<(Outcome, Vec<exec::Timing>), RunError> {
    let launch = ready.launch(paths, opts);
    let mut hooks = BoxHooks::new(ready, ready.run_dir(paths), true).in_background();
    if opts.auto_remove {
        hooks = hooks.with_reaper(paths);
    }
    let result = exec::run_foreground(&launch, &mut hooks);
    hooks.finish();
    hooks.stop_network();
    match result {
        Ok(done) => {
            let outcome = Outcome::collect(
                ready.cgroup.as_ref(),
                done.exit.shell_code(),
                done.timed_out,
            );
            // A box removed on exit needs no exit record: [`run_attached`] writes one only
            // when the removal fails. One fsync fewer on every `run --rm`. A box whose record
            // could not be written is not one to update (its staging lock is still held,
            // here): the caller removes it.
            if !opts.auto_remove && ready.life.is_recorded() {
                let _ = ready.life.exited(&outcome, None);
            }
            Ok((outcome, done.timings))
        }
        Err(e) => {
            let e = RunError::from_exec(e);
            // An exited box holds no cgroup, whether it ran or never started (the detached
            // start's failure does the same).
            if let Some(cg) = &ready.cgroup {
                let _ = cg.destroy();
            }
            ready.life.failed(&e, !opts.auto_remove);
            Err(e)
        }
    }
}

/// How an attached box went ([`run_attached`]).
pub struct Attached {
    /// How it ended and the step timings, or why it could not run.
    pub result: Result<(Outcome, Vec<exec::Timing>), RunError>,
    /// Why a `--rm` box could not be removed (it stays, recorded with how it ended).
    pub not_removed: Option<BoxError>,
}

/// [`run_foreground`], then the box's end as its options say: a box that failed before it
/// was recorded leaves nothing; a `--rm` box is removed. `run` and `up` attached.
pub fn run_attached(paths: &Paths, opts: &RunOptions, ready: &ReadyBox) -> Attached {
    let result = run_foreground(paths, opts, ready);
    let mut not_removed = None;
    if !ready.life.is_recorded() {
        ready.discard(paths);
    } else if opts.auto_remove {
        not_removed = ready
            .life
            .remove_on_exit(paths, result.as_ref().ok().map(|(o, _)| o))
            .err();
    }
    Attached {
        result,
        not_removed,
    }
}
