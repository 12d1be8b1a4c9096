//! `foxbox oci <command>`, and the binary invoked as `foxbox-runc`: runc's command line, so
//! that podman, conmon and containerd drive foxbox as they drive runc. Errors exit 1 (runc's
//! code) and are also written to `--log` (text or JSON lines, which conmon reads back).

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use foxbox::diag::Diagnostic;
use foxbox::oci_runtime::container::{self, CreateOpts, Runtime};
use foxbox::oci_runtime::{cgroups, default_root, features, OciError, OCI_VERSION};

use super::fail::Failure;

/// The name a link to the binary has when clients should see runc's command line.
pub const RUNC_NAME: &str = "foxbox-runc";

/// Whether this process runs as the OCI runtime: invoked as `foxbox-runc`, or as
/// `foxbox oci ...`. Returns the arguments for [`main`] (argv0 first).
pub fn wanted(args: &[OsString]) -> Option<Vec<OsString>> {
    let argv0 = args.first()?;
    let base = std::path::Path::new(argv0).file_name()?;
    if base == RUNC_NAME {
        return Some(args.to_vec());
    }
    if args.get(1).is_some_and(|a| a == "oci") {
        let mut v = vec![OsString::from("foxbox oci")];
        v.extend(args[2..].iter().cloned());
        return Some(v);
    }
    None
}

/// Run foxbox as an OCI runtime (runc's command line).
#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
pub struct OciArgs {
    /// runc's arguments: `foxbox oci --help` lists them.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<OsString>,
}

#[derive(Debug, Parser)]
#[command(
    name = "foxbox-runc",
    about = "foxbox as an OCI runtime, with runc's command line",
    disable_version_flag = true
)]
struct OciCli {
    /// Where container state lives [default: /run/foxbox-runc as root,
    /// $XDG_RUNTIME_DIR/foxbox-runc otherwise].
    #[arg(long, global = true, value_name = "DIR")]
    root: Option<PathBuf>,
    /// Also write errors and warnings to this file.
    #[arg(long, global = true, value_name = "FILE")]
    log: Option<PathBuf>,
    /// The --log file's format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Log debug messages too.
    #[arg(long, global = true)]
    debug: bool,
    /// Accepted for runc's callers: foxbox makes containers' cgroups itself (cgroupfs), never
    /// through systemd; a cgroupsPath in systemd's `slice:prefix:name` form becomes the
    /// cgroup /slice/prefix-name.scope, with a warning.
    #[arg(long, global = true)]
    systemd_cgroup: bool,
    /// Accepted (runc's `--rootless`): foxbox decides by its effective uid. With `spec`: a
    /// user namespace mapping the caller to root, for an unprivileged runtime.
    #[arg(long, global = true, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    rootless: Option<String>,
    /// Print the version and the runtime-spec version.
    #[arg(long, short = 'v')]
    version: bool,
    #[command(subcommand)]
    command: Option<OciCommand>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ListFormat {
    Table,
    Json,
}

#[derive(Debug, Args)]
struct CreateArgs {
    /// The bundle directory (config.json and the root filesystem).
    #[arg(long, short = 'b', default_value = ".")]
    bundle: PathBuf,
    /// Write the container's pid here.
    #[arg(long, value_name = "FILE")]
    pid_file: Option<PathBuf>,
    /// A unix socket that receives the pty master (SCM_RIGHTS) when process.terminal is true.
    #[arg(long, value_name = "PATH")]
    console_socket: Option<PathBuf>,
    /// Accepted: foxbox uses pivot_root (chroot for a container without a mount namespace).
    #[arg(long)]
    no_pivot: bool,
    /// Accepted: foxbox makes no session keyring.
    #[arg(long)]
    no_new_keyring: bool,
    /// Pass this many descriptors from 3 up into the container.
    #[arg(long, default_value_t = 0, value_name = "N")]
    preserve_fds: u32,
    id: String,
}

#[derive(Debug, Subcommand)]
enum OciCommand {
    /// Create a container: set it up, its process waiting for `start`.
    Create(CreateArgs),
    /// Start a created container's command.
    Start { id: String },
    /// Print a container's OCI state as JSON.
    State { id: String },
    /// Send a signal (default TERM) to a container's process.
    Kill {
        /// Every process in the container.
        #[arg(long, short = 'a')]
        all: bool,
        id: String,
        #[arg(default_value = "TERM")]
        signal: String,
    },
    /// Delete a container (kill it first with --force), or what a killed create left of one.
    Delete {
        #[arg(long, short = 'f')]
        force: bool,
        id: String,
    },
    /// Create and start a container; without --detach, wait for it and delete it.
    Run {
        #[command(flatten)]
        create: CreateArgs,
        #[arg(long, short = 'd')]
        detach: bool,
        /// Keep the container's state after it ends.
        #[arg(long)]
        keep: bool,
    },
    /// Run one more process in a running container.
    Exec {
        /// The process as a config.json `process` object (instead of COMMAND and flags).
        #[arg(long, short = 'p', value_name = "FILE")]
        process: Option<PathBuf>,
        /// A pty for the process (needs --console-socket).
        #[arg(long, short = 't')]
        tty: bool,
        /// Return once the process runs.
        #[arg(long, short = 'd')]
        detach: bool,
        #[arg(long, value_name = "FILE")]
        pid_file: Option<PathBuf>,
        #[arg(long, value_name = "PATH")]
        console_socket: Option<PathBuf>,
        #[arg(long)]
        cwd: Option<PathBuf>,
        /// KEY=VALUE (repeatable).
        #[arg(long, short = 'e')]
        env: Vec<String>,
        /// UID[:GID].
        #[arg(long, short = 'u')]
        user: Option<String>,
        #[arg(long)]
        no_new_privs: bool,
        /// Accepted: descriptors above 2 are closed in the process.
        #[arg(long, default_value_t = 0, value_name = "N")]
        preserve_fds: u32,
        id: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
    /// List the container's processes (host pids; `--format json`: a JSON array).
    Ps {
        #[arg(long, short = 'f', value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
        id: String,
        /// Options for ps(1) in table format (default -ef).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// List containers.
    List {
        #[arg(long, short = 'f', value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
        /// Ids only.
        #[arg(long, short = 'q')]
        quiet: bool,
    },
    /// Write a starting config.json into the bundle directory.
    Spec {
        #[arg(long, short = 'b', default_value = ".")]
        bundle: PathBuf,
    },
    /// Print the runtime-spec features document (what this runtime honours).
    Features,
    /// Freeze every process of a container (its cgroup's freezer).
    Pause { id: String },
    /// Thaw a paused container.
    Resume { id: String },
    /// Change a container's cgroup resources.
    Update(UpdateArgs),
}

/// runc's `update` flags.
#[derive(Debug, Args)]
struct UpdateArgs {
    /// A JSON file of linux.resources (`-`: standard input); the flags override its values.
    #[arg(long, short = 'r', value_name = "FILE")]
    resources: Option<PathBuf>,
    /// Memory limit (bytes, or with a unit: 512m, 1g; -1: unlimited).
    #[arg(long, allow_hyphen_values = true)]
    memory: Option<String>,
    /// Memory soft limit.
    #[arg(long, allow_hyphen_values = true)]
    memory_reservation: Option<String>,
    /// Memory + swap limit (-1: unlimited swap).
    #[arg(long, allow_hyphen_values = true)]
    memory_swap: Option<String>,
    /// Kernel memory limit (cgroup v1; most kernels ignore it now).
    #[arg(long, allow_hyphen_values = true)]
    kernel_memory: Option<String>,
    /// Kernel TCP buffer limit (cgroup v1).
    #[arg(long, allow_hyphen_values = true)]
    kernel_memory_tcp: Option<String>,
    /// CPU shares (relative weight).
    #[arg(long)]
    cpu_share: Option<u64>,
    /// CFS period, in microseconds.
    #[arg(long)]
    cpu_period: Option<u64>,
    /// CFS quota per period, in microseconds (-1: unlimited).
    #[arg(long, allow_hyphen_values = true)]
    cpu_quota: Option<i64>,
    /// CFS burst, in microseconds.
    #[arg(long)]
    cpu_burst: Option<u64>,
    /// Realtime period, in microseconds (cgroup v1).
    #[arg(long)]
    cpu_rt_period: Option<u64>,
    /// Realtime runtime per period, in microseconds (cgroup v1).
    #[arg(long, allow_hyphen_values = true)]
    cpu_rt_runtime: Option<i64>,
    /// CPUs the container may use (0-3,5).
    #[arg(long)]
    cpuset_cpus: Option<String>,
    /// Memory nodes the container may use.
    #[arg(long)]
    cpuset_mems: Option<String>,
    /// Maximum number of processes (below 0: unlimited; 0 leaves it as it is).
    #[arg(long, allow_hyphen_values = true)]
    pids_limit: Option<i64>,
    /// Block I/O weight (10-1000).
    #[arg(long)]
    blkio_weight: Option<u16>,
    /// Intel RDT (not supported: an error).
    #[arg(long)]
    l3_cache_schema: Option<String>,
    /// Intel RDT memory bandwidth (not supported: an error).
    #[arg(long)]
    mem_bw_schema: Option<String>,
    id: String,
}

struct Log {
    file: Option<std::fs::File>,
    json: bool,
    debug: bool,
}

impl Log {
    fn write(&mut self, level: &str, msg: &str) {
        let Some(f) = &mut self.file else { return };
        let line = if self.json {
            let time = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
            serde_json::json!({"level": level, "msg": msg, "time": time.to_string()}).to_string()
        } else {
            format!("level={level} msg={msg:?}")
        };
        let _ = writeln!(f, "{line}");
    }

    /// Warnings and debug lines go to `--log` when given (as runc's logging does: its caller
    /// reads them there, and `create`'s stderr is often the container's), else to stderr.
    fn note(&mut self, level: &str, msg: &str) {
        if self.file.is_some() {
            self.write(level, msg);
        } else {
            super::ctx::err(&format!("foxbox-runc: {level}: {msg}\n"));
        }
    }

    fn warn(&mut self, msg: &str) {
        self.note("warning", msg);
    }

    fn debug(&mut self, msg: &str) {
        if self.debug {
            self.note("debug", msg);
        }
    }

    /// The log the raw arguments name (`--log F`, `--log=F`, `--log-format json`), for an
    /// error in the arguments themselves.
    fn from_raw_args(args: &[OsString]) -> Log {
        let mut file = None;
        let mut json = false;
        let mut it = args
            .iter()
            .skip(1)
            .map(|a| a.to_string_lossy().into_owned());
        while let Some(a) = it.next() {
            match a.as_str() {
                "--log" => file = it.next(),
                "--log-format" => json = it.next().as_deref() == Some("json"),
                "--" => break,
                _ => {
                    if let Some(f) = a.strip_prefix("--log=") {
                        file = Some(f.to_string());
                    } else if let Some(f) = a.strip_prefix("--log-format=") {
                        json = f == "json";
                    }
                }
            }
        }
        Log {
            file: file.and_then(|p| open_log(std::path::Path::new(&p))),
            json,
            debug: false,
        }
    }
}

fn open_log(p: &std::path::Path) -> Option<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(p)
        .ok()
}

/// Parse runc's arguments (`args[0]` is the program name) and run the command.
pub fn main(args: Vec<OsString>) -> u8 {
    let cli = match OciCli::try_parse_from(&args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            if !e.use_stderr() {
                return 0;
            }
            Log::from_raw_args(&args).write("error", e.to_string().trim_end());
            return 1;
        }
    };
    let mut log = Log {
        file: cli.log.as_deref().and_then(open_log),
        json: cli.log_format == LogFormat::Json,
        debug: cli.debug,
    };
    if cli.version {
        super::ctx::out(&format!(
            "foxbox-runc version {}\nspec: {OCI_VERSION}\n",
            env!("CARGO_PKG_VERSION")
        ));
        return 0;
    }
    let Some(command) = cli.command else {
        let _ = <OciCli as clap::CommandFactory>::command().print_help();
        return 0;
    };
    let rt = Runtime::new(cli.root.unwrap_or_else(default_root));
    log.debug(&format!("root {}", rt.root.display()));
    let rootless = cli.rootless.as_deref().is_some_and(|v| v != "false");
    match run(command, &rt, &mut log, rootless) {
        Ok(code) => code,
        Err(e) => {
            log.write("error", &e.to_string());
            let d = Diagnostic::from_error(e.code(), &e);
            let mut f = Failure::new(d);
            f.exit = 1;
            let color = std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
            super::ctx::err(&f.render(color));
            1
        }
    }
}

fn create_opts(a: &CreateArgs) -> CreateOpts {
    CreateOpts {
        id: a.id.clone(),
        bundle: a.bundle.clone(),
        pid_file: a.pid_file.clone(),
        console_socket: a.console_socket.clone(),
        preserve_fds: a.preserve_fds,
        own_pty: false,
    }
}

fn run(command: OciCommand, rt: &Runtime, log: &mut Log, rootless: bool) -> Result<u8, OciError> {
    let print_json = |v: &serde_json::Value| {
        super::ctx::out(&format!(
            "{}\n",
            serde_json::to_string_pretty(v).unwrap_or_default()
        ))
    };
    match command {
        OciCommand::Create(a) => {
            if a.no_pivot {
                log.debug(
                    "--no-pivot: foxbox uses pivot_root (chroot for a container without a \
                     mount namespace)",
                );
            }
            let c = rt.create(&create_opts(&a))?;
            for w in &c.warnings {
                log.warn(w);
            }
        }
        OciCommand::Start { id } => {
            for w in rt.start(&id)? {
                log.warn(&w);
            }
        }
        OciCommand::State { id } => {
            let s = rt.state(&id)?;
            print_json(&serde_json::to_value(&s).unwrap_or_default());
        }
        OciCommand::Kill { all, id, signal } => {
            let sig = container::parse_signal(&signal)?;
            rt.kill(&id, sig, all)?;
        }
        OciCommand::Delete { force, id } => {
            for w in rt.delete(&id, force)? {
                log.warn(&w);
            }
        }
        OciCommand::Run {
            create,
            detach,
            keep,
        } => {
            let opts = CreateOpts {
                own_pty: !detach,
                ..create_opts(&create)
            };
            let c = rt.create(&opts)?;
            for w in &c.warnings {
                log.warn(w);
            }
            if let Err(e) = rt.start(&create.id) {
                // As runc's `run`: what it created goes when the start fails.
                let _ = rt.delete(&create.id, true);
                return Err(e);
            }
            if detach {
                return Ok(0);
            }
            if let Some(pty) = &c.pty {
                foxbox::oci_runtime::container::relay_pty(pty)?;
            }
            let code = rt.wait(c.pid)?;
            if !keep {
                for w in rt.delete(&create.id, true)? {
                    log.warn(&w);
                }
            }
            return Ok(code.clamp(0, 255) as u8);
        }
        OciCommand::Exec {
            process,
            tty,
            detach,
            pid_file,
            console_socket,
            cwd,
            env,
            user,
            no_new_privs,
            preserve_fds,
            id,
            command,
        } => {
            if preserve_fds > 0 {
                log.warn("exec --preserve-fds: not applied (the process gets stdio only)");
            }
            let code = rt.exec(&container::ExecOpts {
                id,
                process,
                args: command,
                tty,
                detach,
                pid_file,
                console_socket,
                cwd,
                env,
                user,
                no_new_privs,
            })?;
            return Ok(code.clamp(0, 255) as u8);
        }
        OciCommand::Ps {
            format,
            id,
            ps_args,
        } => {
            let pids = rt.pids(&id)?;
            if format == ListFormat::Json {
                super::ctx::out(&format!("{}\n", serde_json::json!(pids)));
            } else {
                let list: Vec<String> = pids.iter().map(|p| p.to_string()).collect();
                let mut cmd = std::process::Command::new("ps");
                if ps_args.is_empty() {
                    cmd.arg("-f");
                } else {
                    cmd.args(&ps_args);
                }
                let out = cmd
                    .arg("-p")
                    .arg(list.join(","))
                    .output()
                    .map_err(OciError::io("run ps"))?;
                super::ctx::out(&String::from_utf8_lossy(&out.stdout));
            }
        }
        OciCommand::List { format, quiet } => {
            let all = rt.list()?;
            if quiet {
                for s in &all {
                    super::ctx::out(&format!("{}\n", s.id));
                }
            } else if format == ListFormat::Json {
                let v: Vec<serde_json::Value> = all
                    .iter()
                    .map(|s| {
                        let created = humantime::format_rfc3339_seconds(
                            std::time::UNIX_EPOCH + std::time::Duration::from_secs(s.created),
                        );
                        serde_json::json!({
                            "ociVersion": s.oci_version,
                            "id": s.id,
                            "pid": s.pid,
                            "status": s.status,
                            "bundle": s.bundle,
                            "rootfs": s.bundle.join("rootfs"),
                            "created": created.to_string(),
                            "annotations": s.annotations,
                            "owner": s.owner_name(),
                        })
                    })
                    .collect();
                super::ctx::out(&format!("{}\n", serde_json::Value::Array(v)));
            } else {
                let mut text = String::from("ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER\n");
                for s in &all {
                    let created = humantime::format_rfc3339_seconds(
                        std::time::UNIX_EPOCH + std::time::Duration::from_secs(s.created),
                    );
                    text.push_str(&format!(
                        "{}\t{}\t{}\t{}\t{}\t{}\n",
                        s.id,
                        s.pid,
                        s.status.as_str(),
                        s.bundle.display(),
                        created,
                        s.owner_name()
                    ));
                }
                super::ctx::out(&text);
            }
        }
        OciCommand::Spec { bundle } => {
            let path = bundle.join("config.json");
            if path.exists() {
                return Err(OciError::Usage(format!(
                    "{} exists: remove it first",
                    path.display()
                )));
            }
            let spec = features::default_spec(rootless);
            let text = serde_json::to_string_pretty(&spec)
                .map_err(|e| OciError::io("config.json")(std::io::Error::other(e)))?;
            foxbox::store::atomic::write_file(&path, format!("{text}\n").as_bytes())
                .map_err(|e| OciError::io("write config.json")(std::io::Error::other(e)))?;
        }
        OciCommand::Features => print_json(&features::features()),
        OciCommand::Pause { id } => rt.freeze(&id, true)?,
        OciCommand::Resume { id } => rt.freeze(&id, false)?,
        OciCommand::Update(a) => {
            if a.l3_cache_schema.is_some() || a.mem_bw_schema.is_some() {
                return Err(OciError::Usage(
                    "--l3-cache-schema/--mem-bw-schema: Intel RDT is not supported by foxbox"
                        .into(),
                ));
            }
            let file = match &a.resources {
                Some(p) if p.as_os_str() == "-" => {
                    let mut text = String::new();
                    std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
                        .map_err(OciError::io("read --resources from standard input"))?;
                    Some(text)
                }
                Some(p) => Some(
                    std::fs::read_to_string(p)
                        .map_err(OciError::io(format!("--resources {}", p.display())))?,
                ),
                None => None,
            };
            let flags = cgroups::UpdateFlags {
                memory: a.memory,
                memory_reservation: a.memory_reservation,
                memory_swap: a.memory_swap,
                kernel_memory: a.kernel_memory,
                kernel_memory_tcp: a.kernel_memory_tcp,
                cpu_shares: a.cpu_share,
                cpu_period: a.cpu_period,
                cpu_quota: a.cpu_quota,
                cpu_burst: a.cpu_burst,
                cpu_rt_period: a.cpu_rt_period,
                cpu_rt_runtime: a.cpu_rt_runtime,
                cpuset_cpus: a.cpuset_cpus,
                cpuset_mems: a.cpuset_mems,
                pids_limit: a.pids_limit,
                blkio_weight: a.blkio_weight,
            };
            let res = cgroups::update_resources(file.as_deref(), &flags)?;
            for w in rt.update(&a.id, &res)? {
                log.warn(&w);
            }
        }
    }
    Ok(0)
}
