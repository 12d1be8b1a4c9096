//! cgroup limits for real: a fork bomb stops at `pids`, a memory hog is OOM-killed and
//! reported, a busy loop under `cpus = 0.5` gets about half a core, and nothing is left behind.
//! As root, and as the unprivileged `foxtest` given a delegated subtree (v1: directories
//! chowned to it; v2: a cgroup with controllers enabled, chowned, with the user's process in a
//! leaf below it).
//!
//! No libtest harness (`harness = false`): the binary re-executes itself for the pieces that
//! must be separate processes: workloads (`role hog|bomb|forker|spin`), which wait for one
//! byte on stdin so that they are in their cgroup before they start, and the unprivileged
//! scenarios (`role scenario NAME`), run through `setpriv`.
//!
//! `FOXBOX_CGROUP_EXPECT=v1|v2` makes the test also assert which version holds memory, cpu and
//! pids (the cgroup v2 VM harness, tests/vm/v2vm.sh, sets v2).

mod common;

use common::{is_root, user_ids, TEST_USER};

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use foxbox::cgroup::{self, BoxCgroup, CgroupError, Controller, Host, LimitPlan, Version};
use foxbox::plan::limits::{Cpus, MemoryBytes, Pids};
use foxbox::plan::{Enforce, Limits, Span, Spanned};

const MIB: u64 = 1 << 20;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("role") {
        role(&args[2..]);
        return;
    }
    // libtest-style flags from `cargo test` (e.g. --test-threads) are ignored; a bare word
    // filters scenarios by name.
    let filter = args.iter().skip(1).find(|a| !a.starts_with('-')).cloned();
    std::process::exit(run_all(filter.as_deref()));
}

// ---------------------------------------------------------------------------------------------
// Workloads, run as separate processes.

fn role(args: &[String]) {
    let name = args.first().map(String::as_str).unwrap_or("");
    match name {
        "scenario" => {
            set_subreaper();
            let ctx = Ctx::from_args(&args[1..]);
            if ctx.gated {
                wait_for_go();
            }
            let which = args.get(1).map(String::as_str).unwrap_or("");
            scenario(which, &ctx);
            println!("scenario {which} ok");
        }
        "hog" => {
            let mib: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(0);
            wait_for_go();
            let mut v: Vec<u8> = Vec::with_capacity(mib << 20);
            // Touch every page so that it is charged.
            v.resize(mib << 20, 1);
            println!("allocated {} MiB", std::hint::black_box(&v).len() >> 20);
        }
        "forker" => {
            let max: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(0);
            wait_for_go();
            let mut kids = Vec::new();
            let mut err = None;
            while kids.len() < max {
                // SAFETY: this process is single-threaded (no harness); the child only calls
                // pause and _exit.
                match unsafe { libc::fork() } {
                    0 => unsafe {
                        libc::pause();
                        libc::_exit(0)
                    },
                    -1 => {
                        err = Some(std::io::Error::last_os_error());
                        break;
                    }
                    pid => kids.push(pid),
                }
            }
            match err {
                Some(e) => println!(
                    "forked {} then {}",
                    kids.len(),
                    e.raw_os_error().unwrap_or(0)
                ),
                None => println!("forked {} no limit hit", kids.len()),
            }
            for &k in &kids {
                // SAFETY: plain syscalls on our own children.
                unsafe {
                    libc::kill(k, libc::SIGKILL);
                    libc::waitpid(k, std::ptr::null_mut(), 0);
                }
            }
        }
        "bomb" => {
            wait_for_go();
            // Every process forks forever and ignores EAGAIN: a bomb pinned at pids.max.
            loop {
                // SAFETY: single-threaded; children run this same loop and never return.
                unsafe {
                    libc::fork();
                }
            }
        }
        "spin" => {
            wait_for_go();
            let mut x: u64 = 0;
            loop {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        }
        other => {
            eprintln!("unknown role {other:?}");
            std::process::exit(2);
        }
    }
}

fn wait_for_go() {
    let mut b = [0u8; 1];
    let _ = std::io::stdin().read(&mut b);
}

fn set_subreaper() {
    // SAFETY: prctl with integer arguments; makes orphans of the bombs ours to reap, since this
    // host's init reaps only every ~2 s and zombies still count against pids.max.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    }
}

fn reap_zombies() {
    // SAFETY: waitpid with WNOHANG on any child; no memory is shared.
    while unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) } > 0 {}
}

/// A workload process, stopped until `go`; killed when dropped.
struct Workload {
    child: Child,
}

impl Workload {
    fn spawn(args: &[&str]) -> Workload {
        let exe = std::env::current_exe().expect("current_exe");
        let child = Command::new(exe)
            .arg("role")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn workload");
        Workload { child }
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    fn go(&mut self) {
        let mut stdin = self.child.stdin.take().expect("stdin");
        stdin.write_all(b"g").expect("release workload");
    }

    /// Wait for it to end: (exit code or 128+signal, stdout).
    fn finish(mut self) -> (i32, String) {
        let mut out = String::new();
        if let Some(mut o) = self.child.stdout.take() {
            let _ = o.read_to_string(&mut out);
        }
        let st = self.child.wait().expect("wait");
        let code = st.code().unwrap_or_else(|| 128 + st.signal().unwrap_or(0));
        (code, out)
    }
}

impl Drop for Workload {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// Scenarios: run in-process as root, or as the unprivileged user in a re-executed process.

#[derive(Debug, Clone, Default)]
struct Ctx {
    parent: Option<String>,
    expect: Option<Version>,
    /// Wait for a byte on stdin first (root moves us into the delegated cgroup meanwhile).
    gated: bool,
    /// Where the parent must be (absolute directory in the memory hierarchy), if known.
    want_parent_in: Option<PathBuf>,
}

impl Ctx {
    fn to_args(&self) -> Vec<String> {
        let mut a = Vec::new();
        if let Some(p) = &self.parent {
            a.extend(["--parent".to_string(), p.clone()]);
        }
        if let Some(v) = self.expect {
            a.extend(["--expect".to_string(), v.to_string()]);
        }
        if let Some(p) = &self.want_parent_in {
            a.extend(["--want-parent".to_string(), p.display().to_string()]);
        }
        if self.gated {
            a.push("--gated".to_string());
        }
        a
    }

    fn from_args(args: &[String]) -> Ctx {
        let mut c = Ctx::default();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            match a.as_str() {
                "--parent" => c.parent = it.next().cloned(),
                "--expect" => c.expect = it.next().and_then(|v| parse_version(v)),
                "--want-parent" => c.want_parent_in = it.next().map(PathBuf::from),
                "--gated" => c.gated = true,
                _ => {}
            }
        }
        c
    }
}

fn parse_version(v: &str) -> Option<Version> {
    match v {
        "v1" => Some(Version::V1),
        "v2" => Some(Version::V2),
        _ => None,
    }
}

fn scenario(name: &str, ctx: &Ctx) {
    match name {
        "pids" => scenario_pids(ctx),
        "memory" => scenario_memory(ctx),
        "cpu" => scenario_cpu(ctx),
        "undelegated" => scenario_undelegated(ctx),
        other => panic!("unknown scenario {other:?}"),
    }
}

fn spanned<T>(v: T, at: usize) -> Spanned<T> {
    Spanned::new(v, Some(Span::new(at, at + 1)))
}

fn limits() -> Limits {
    Limits::new(Enforce::Strict)
}

fn memory(bytes: u64) -> MemoryBytes {
    MemoryBytes::new(bytes).unwrap()
}

/// Plan, check that everything declared is enforceable, and create the box's cgroup (removed
/// when the guard drops, even on failure).
fn make_box(ctx: &Ctx, l: &Limits, id: &str) -> (LimitPlan, BoxGuard) {
    let host = Host::detect().expect("detect");
    if let Some(v) = ctx.expect {
        for c in [Controller::Memory, Controller::Cpu, Controller::Pids] {
            let h = host.hierarchy(c).expect("controller present");
            assert_eq!(
                h.version,
                v,
                "{c} is on {} at {}",
                h.version,
                h.mount.display()
            );
        }
    }
    let lp = cgroup::plan(l, &host, ctx.parent.as_deref());
    assert!(
        lp.unenforced.is_empty(),
        "limits not enforceable: {:#?}",
        lp.diagnostics(Enforce::Strict)
    );
    assert!(!lp.refuses(Enforce::Strict));
    if let Some(want) = &ctx.want_parent_in {
        let (site, _) = lp
            .sites
            .iter()
            .find(|(_, cs)| cs.contains(&Controller::Memory))
            .expect("a memory site");
        assert_eq!(&site.parent, want, "parent chosen for memory");
    }
    let cg = BoxCgroup::create(&lp, &format!("{id}-{}", std::process::id())).expect("create");
    for p in cg.paths() {
        assert!(p.is_dir(), "{} made", p.display());
    }
    (lp, BoxGuard(cg))
}

struct BoxGuard(BoxCgroup);

impl Drop for BoxGuard {
    fn drop(&mut self) {
        let _ = self.0.destroy();
        reap_zombies();
    }
}

fn assert_removed(cg: &BoxCgroup) {
    cg.destroy().expect("destroy");
    reap_zombies();
    for p in cg.paths() {
        assert!(!p.exists(), "{} left behind", p.display());
    }
}

fn scenario_pids(ctx: &Ctx) {
    // The bomb spins on every core it can: keep the host usable.
    let l = limits()
        .with_pids(spanned(Pids::new(20).unwrap(), 1))
        .with_cpus(spanned(Cpus::new(0.5).unwrap(), 2));
    let (lp, g) = make_box(ctx, &l, "pids");
    assert_eq!(lp.pids, Some(20));
    let cg = &g.0;

    let mut w = Workload::spawn(&["forker", "200"]);
    cg.place(w.pid()).expect("place forker");
    w.go();
    let (code, out) = w.finish();
    assert_eq!(code, 0, "forker: {out}");
    let n: usize = out
        .strip_prefix("forked ")
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(usize::MAX);
    assert!(
        out.trim_end().ends_with(&format!("then {}", libc::EAGAIN)) && (10..20).contains(&n),
        "fork must fail with EAGAIN below 20 processes: {out}"
    );

    let mut bomb = Workload::spawn(&["bomb"]);
    cg.place(bomb.pid()).expect("place bomb");
    bomb.go();
    std::thread::sleep(Duration::from_secs(2));
    let pids = cg.stats().expect("stats").pids.expect("pids count");
    assert!(pids <= 20, "fork bomb exceeded pids.max: {pids}");
    assert!(pids >= 10, "the bomb did not run: {pids} processes");
    // The host stays healthy: we can still start processes.
    let st = Command::new("/bin/true")
        .status()
        .expect("fork during the bomb");
    assert!(st.success());
    let t0 = Instant::now();
    cg.kill_all(Duration::from_secs(10)).expect("kill the bomb");
    assert!(cg.procs().expect("procs").is_empty());
    eprintln!(
        "     fork bomb at {pids}/20 processes, killed in {:?}",
        t0.elapsed()
    );
    drop(bomb);
    assert_removed(cg);
}

fn scenario_memory(ctx: &Ctx) {
    let l = limits()
        .with_memory(spanned(memory(64 * MIB), 1), None)
        .unwrap();
    let (lp, g) = make_box(ctx, &l, "mem");
    assert_eq!(lp.memory.map(|m| m.limit), Some(64 * MIB));
    let cg = &g.0;

    let mut w = Workload::spawn(&["hog", "16"]);
    cg.place(w.pid()).expect("place");
    w.go();
    let (code, out) = w.finish();
    assert_eq!(
        (code, out.trim()),
        (0, "allocated 16 MiB"),
        "below the limit"
    );
    assert_eq!(cg.oom_kills().expect("oom"), Some(0));

    let mut w = Workload::spawn(&["hog", "256"]);
    cg.place(w.pid()).expect("place");
    w.go();
    let (code, out) = w.finish();
    assert_eq!(
        code, 137,
        "a 256 MiB hog under 64 MiB must be SIGKILLed: {out}"
    );
    let st = cg.stats().expect("stats");
    assert!(
        st.oom_kills.unwrap_or(0) >= 1,
        "OOM kill not reported: {st:?}"
    );
    let mem = st.memory.expect("memory usage");
    if let Some(peak) = mem.peak {
        assert!(
            (16 * MIB..=64 * MIB).contains(&peak),
            "peak {peak} outside 16 MiB..=64 MiB"
        );
    }
    eprintln!("     memory: {st:?}");
    assert_removed(cg);
}

fn scenario_cpu(ctx: &Ctx) {
    let l = limits().with_cpus(spanned(Cpus::new(0.5).unwrap(), 1));
    let (lp, g) = make_box(ctx, &l, "cpu");
    assert_eq!(
        lp.cpu.map(|c| (c.quota_us, c.period_us)),
        Some((50_000, 100_000))
    );
    let cg = &g.0;
    let mut w = Workload::spawn(&["spin"]);
    cg.place(w.pid()).expect("place");
    let u0 = cg.stats().expect("stats").cpu.expect("cpu usage");
    let t0 = Instant::now();
    w.go();
    std::thread::sleep(Duration::from_secs(3));
    let u1 = cg.stats().expect("stats").cpu.expect("cpu usage");
    let wall = t0.elapsed();
    drop(w);
    let share = (u1 - u0).as_secs_f64() / wall.as_secs_f64();
    eprintln!("     busy loop under cpus = 0.5: {share:.2} of a core over {wall:.1?}");
    // The quota caps it at 0.5 (+ one period of slack); the floor only shows that it ran,
    // loosely, as other work on this 2-core machine competes for the cpu.
    assert!(share <= 0.6, "cpu quota not enforced: {share:.2} cores");
    assert!(share >= 0.2, "the loop barely ran: {share:.2} cores");
    assert_removed(cg);
}

/// Without delegation every declared limit is reported, with the place and how to delegate;
/// best-effort turns the errors into warnings.
fn scenario_undelegated(ctx: &Ctx) {
    let host = Host::detect().expect("detect");
    let l = limits()
        .with_memory(spanned(memory(64 * MIB), 10), None)
        .unwrap()
        .with_cpus(spanned(Cpus::new(0.5).unwrap(), 20))
        .with_pids(spanned(Pids::new(20).unwrap(), 30));
    let lp = cgroup::plan(&l, &host, ctx.parent.as_deref());
    assert!(lp.refuses(Enforce::Strict));
    assert!(!lp.refuses(Enforce::BestEffort));
    assert!(!lp.has_limits(), "nothing may be set without delegation");
    let got: BTreeSet<_> = lp.unenforced.iter().map(|u| u.limit.key()).collect();
    assert_eq!(got, BTreeSet::from(["cpus", "memory", "pids"]));
    let uid = nix::unistd::getuid().as_raw();
    for u in &lp.unenforced {
        assert!(
            matches!(
                *u.error,
                CgroupError::NotDelegated { .. } | CgroupError::InternalProcesses { .. }
            ),
            "{:?}",
            u.error
        );
        let d = u.diagnostic(Enforce::Strict);
        assert!(d.is_error());
        let at = match u.limit.key() {
            "memory" => 10,
            "cpus" => 20,
            _ => 30,
        };
        assert_eq!(d.span, Some(Span::new(at, at + 1)), "points at the limit");
        let help = d.help.clone().unwrap_or_default();
        let v1 = matches!(
            *u.error,
            CgroupError::NotDelegated {
                version: Version::V1,
                ..
            }
        );
        if v1 {
            assert!(help.contains(&format!("chown -R {uid}")), "{help}");
            assert!(
                d.message.contains(&format!("not writable by uid {uid}")),
                "{}",
                d.message
            );
        } else {
            assert!(help.contains("Delegate=yes"), "{help}");
        }
        assert!(!u.diagnostic(Enforce::BestEffort).is_error());
        eprintln!("     {}: {}\n       help: {}", u.limit, d.message, help);
    }
}

// ---------------------------------------------------------------------------------------------
// The orchestrator (root): delegated subtrees, the unprivileged runs, the report.

/// A cgroup tree this test made (one directory per hierarchy), killed and removed on drop.
struct TestTree {
    dirs: Vec<(Version, PathBuf)>,
}

impl TestTree {
    /// The directories named `name` under every hierarchy's root that do not exist yet.
    fn unmade(host: &Host, name: &str) -> TestTree {
        TestTree {
            dirs: host
                .hierarchies
                .iter()
                .map(|h| (h.version, h.mount.join(name)))
                .filter(|(_, d)| !d.exists())
                .collect(),
        }
    }

    fn kill_and_remove(&self) {
        for (v, d) in &self.dirs {
            let node = cgroup::Node::new(*v, d.clone());
            let _ = node.ops().kill_all(Duration::from_secs(10));
            let _ = node.ops().remove(Duration::from_secs(10));
        }
        reap_zombies();
    }
}

impl Drop for TestTree {
    fn drop(&mut self) {
        self.kill_and_remove();
        for (_, d) in &self.dirs {
            if d.exists() {
                eprintln!("LEFT BEHIND: {}", d.display());
            }
        }
    }
}

/// Delegate a fresh subtree named `name` in every hierarchy serving our controllers.
/// Returns the tree and, on v2, the leaf the user's process must be put in.
fn delegate(host: &Host, name: &str, uid: u32, gid: u32) -> (TestTree, Vec<PathBuf>) {
    let mut tree = TestTree { dirs: Vec::new() };
    let mut leaves = Vec::new();
    let mut seen = BTreeSet::new();
    for c in Controller::ALL {
        let Some(h) = host.find(c) else { continue };
        if !seen.insert(h) {
            continue;
        }
        let hi = &host.hierarchies[h];
        let dir = hi.mount.join(name);
        std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        tree.dirs.push((hi.version, dir.clone()));
        leaves.push(common::delegate_cgroup(
            &dir,
            hi.version,
            &hi.controllers,
            (uid, gid),
            "init",
        ));
    }
    (tree, leaves)
}

/// Run a scenario as the unprivileged user (a copy of this binary it can execute), first
/// moved into `place_in` when given.
fn run_as_user(which: &str, ctx: &Ctx, place_in: &[PathBuf]) -> Result<(), String> {
    let (uid, gid) = user_ids(TEST_USER).ok_or("no test user")?;
    let exe = user_copy();
    let mut cmd = Command::new("setpriv");
    cmd.arg(format!("--reuid={uid}"))
        .arg(format!("--regid={gid}"))
        .arg("--init-groups")
        .arg("--reset-env")
        .arg("--")
        .arg(&exe)
        .args(["role", "scenario", which])
        .args(ctx.to_args())
        .current_dir("/")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| format!("setpriv: {e}"))?;
    for d in place_in {
        std::fs::write(d.join("cgroup.procs"), child.id().to_string())
            .map_err(|e| format!("move the user's process into {}: {e}", d.display()))?;
    }
    if let Some(mut i) = child.stdin.take() {
        let _ = i.write_all(b"g");
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprint!("{text}");
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("as {TEST_USER}: {}", out.status))
    }
}

fn user_copy() -> PathBuf {
    static COPY: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    COPY.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("foxbox-cgtest-")
            .tempdir()
            .expect("tempdir")
            .keep();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let dst = dir.join("cgroup_limits");
        std::fs::copy(std::env::current_exe().expect("exe"), &dst).expect("copy test binary");
        std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        dst
    })
    .clone()
}

fn attempt(label: &str, f: impl FnOnce() -> Result<(), String>) -> bool {
    eprintln!("---- {label}");
    let r = catch_unwind(AssertUnwindSafe(f));
    let ok = match r {
        Ok(Ok(())) => true,
        Ok(Err(e)) => {
            eprintln!("     {e}");
            false
        }
        Err(_) => false,
    };
    eprintln!("{} {label}", if ok { "ok  " } else { "FAIL" });
    ok
}

fn run_all(filter: Option<&str>) -> i32 {
    set_subreaper();
    let expect = std::env::var("FOXBOX_CGROUP_EXPECT")
        .ok()
        .and_then(|v| parse_version(&v));
    let host = match Host::detect() {
        Ok(h) => h,
        Err(e) => {
            eprintln!("SKIP: cannot read the cgroup layout: {e}");
            return 0;
        }
    };
    let missing: Vec<_> = [Controller::Memory, Controller::Cpu, Controller::Pids]
        .into_iter()
        .filter(|c| host.find(*c).is_none())
        .collect();
    if !missing.is_empty() && expect.is_none() {
        eprintln!("SKIP: controllers {missing:?} are not available here");
        return 0;
    }
    for c in Controller::ALL {
        if let Ok(h) = host.hierarchy(c) {
            eprintln!("{c}: cgroup {} at {}", h.version, h.mount.display());
        }
    }
    if !is_root() {
        eprintln!("SKIP: the cgroup tests set up delegation and must run as root");
        return 0;
    }
    if user_ids(TEST_USER).is_none() {
        // As tests/common does: a user with a subordinate id range.
        let _ = Command::new("useradd")
            .args(["--create-home", "--shell", "/bin/sh", TEST_USER])
            .status();
    }
    let Some((uid, gid)) = user_ids(TEST_USER) else {
        eprintln!(
            "FAIL: no user {TEST_USER} (tests/common creates it; run the harness tests first)"
        );
        return 1;
    };
    let tag = std::process::id();
    let base = Ctx {
        expect,
        ..Ctx::default()
    };
    let selected = |name: &str| filter.is_none_or(|f| name.contains(f));
    let mut failed = 0;
    let mut count = |ok: bool| {
        if !ok {
            failed += 1
        }
    };

    for which in ["pids", "memory", "cpu"] {
        // root, under an explicit parent (made by foxbox, removed by the test).
        let name = format!("root-{which}-given-parent");
        if selected(&name) {
            let parent = format!("foxbox-test-{tag}-root");
            let tree = TestTree::unmade(&host, &parent);
            let ctx = Ctx {
                parent: Some(parent.clone()),
                ..base.clone()
            };
            count(attempt(&name, || {
                scenario(which, &ctx);
                Ok(())
            }));
            drop(tree);
        }

        // the unprivileged user, parent given explicitly (v1) or found (v2: walking up from the
        // leaf root put it in).
        let name = format!("user-{which}-delegated");
        if selected(&name) {
            let dname = format!("foxbox-test-{tag}-{which}");
            let (tree, leaves) = delegate(&host, &dname, uid, gid);
            let v2 = host
                .hierarchy(Controller::Memory)
                .is_ok_and(|h| h.version == Version::V2);
            let ctx = Ctx {
                parent: (!v2).then(|| dname.clone()),
                gated: v2,
                ..base.clone()
            };
            count(attempt(&name, || {
                run_as_user(which, &ctx, if v2 { &leaves } else { &[] })
            }));
            drop(tree);
        }
    }

    // root without a parent: `foxbox` under each hierarchy's root (removed only if we made it).
    let name = "root-default-parent";
    if selected(name) {
        let tree = TestTree::unmade(&host, "foxbox");
        let mem = host
            .hierarchy(Controller::Memory)
            .map(|h| h.mount.join("foxbox"));
        let ctx = Ctx {
            want_parent_in: mem.ok(),
            ..base.clone()
        };
        count(attempt(name, || {
            scenario("pids", &ctx);
            Ok(())
        }));
        drop(tree);
    }

    // the user finds the delegated cgroup it runs in by itself (no parent given).
    let name = "user-auto-parent";
    if selected(name) {
        let dname = format!("foxbox-test-{tag}-auto");
        let (tree, leaves) = delegate(&host, &dname, uid, gid);
        let mem = host
            .hierarchy(Controller::Memory)
            .map(|h| h.mount.join(&dname));
        let ctx = Ctx {
            gated: true,
            want_parent_in: mem.ok(),
            ..base.clone()
        };
        count(attempt(name, || run_as_user("memory", &ctx, &leaves)));
        drop(tree);
    }

    // the user without delegation: every limit refused with a reason and a fix.
    let name = "user-undelegated";
    if selected(name) {
        count(attempt(name, || run_as_user("undelegated", &base, &[])));
    }

    // the same with a parent given that the user cannot write.
    let name = "user-undelegated-given-parent";
    if selected(name) {
        let ctx = Ctx {
            parent: Some(format!("foxbox-test-{tag}-not-delegated")),
            ..base.clone()
        };
        count(attempt(name, || run_as_user("undelegated", &ctx, &[])));
    }

    if failed == 0 {
        eprintln!("ALL OK");
        0
    } else {
        eprintln!("{failed} FAILED");
        1
    }
}
