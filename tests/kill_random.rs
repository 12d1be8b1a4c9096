//! SIGKILL at random moments, as root and as the unprivileged user: the CLI during `run -d`,
//! a foreground `run --rm`, a box's supervisor, `rm -f`, `volume rm` and `image import`. After
//! each round the commands that sweep (`ps -a`, `image ls`, `volume ls`) leave a store that
//! `system check` finds clean, no cgroup of a box that does not run exists, and no process of
//! a box outlived it; then `rm -f` of everything leaves nothing.
//!
//! Seeded: `FOXBOX_KILL_SEED` (else a fixed seed) and `FOXBOX_KILL_ROUNDS` (rounds per user,
//! 20 by default, a few seconds for the suite); `scripts/kill-test.sh` runs a long one. A failure
//! prints the seed and round to replay it.

mod common;

use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{eventually, Env, Run, Who};

/// The command every box of this test runs: its processes are found by it.
const SLEEP: &str = "sleep 98791";

/// xorshift64*: enough randomness for kill moments, and replayable from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn coin(&mut self) -> bool {
        self.below(2) == 0
    }
}

fn kill9(pid: i32) {
    // SAFETY: kill has no memory effects.
    unsafe { libc::kill(pid, libc::SIGKILL) };
}

/// One user's world for the test: its env, and (as root) a cgroup parent of its own so that
/// every box cgroup below it is this test's.
struct World {
    env: Env,
    /// `--cgroup-parent` and the directories it names in each hierarchy (root only).
    parent: Option<(String, Vec<PathBuf>)>,
    tar: String,
    round: usize,
}

impl World {
    fn new(who: Who) -> World {
        let env = Env::new(who);
        env.import_busybox();
        let parent = (who == Who::Root).then(|| common::own_cgroup_parent("killtest"));
        World {
            env,
            parent,
            tar: common::busybox_tarball().display().to_string(),
            round: 0,
        }
    }

    fn run(&self, args: &[&str]) -> Run {
        self.env.run(args)
    }

    fn spawn(&self, args: &[&str]) -> Child {
        self.env
            .foxbox(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn foxbox")
    }

    /// `run` flags for a box of this round (a pids limit, hence cgroups, as root).
    fn box_args<'a>(&'a self, name: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
        let mut a = vec!["run", "--name", name];
        if let Some((parent, _)) = &self.parent {
            a.extend(["--pids-limit", "64", "--cgroup-parent", parent.as_str()]);
        }
        a.extend(extra);
        a.extend(["busybox", "sleep", "98791"]);
        a
    }

    fn ps(&self) -> Vec<serde_json::Value> {
        let r = self.run(&["ps", "-a", "--format", "json"]);
        r.ok();
        serde_json::from_str(&r.stdout).expect("ps json")
    }

    /// Box cgroups below the test's parent, by box id.
    fn cgroups(&self) -> Vec<(String, PathBuf)> {
        let Some((_, dirs)) = &self.parent else {
            return Vec::new();
        };
        dirs.iter()
            .flat_map(|d| std::fs::read_dir(d).into_iter().flatten().flatten())
            .filter_map(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                Some((n.strip_prefix("foxbox-")?.to_string(), e.path()))
            })
            .collect()
    }

    /// Kill something at a random moment.
    fn round(&mut self, rng: &mut Rng) -> String {
        self.round += 1;
        let name = format!("k{}", self.round);
        let after = |rng: &mut Rng, max_ms: u64| Duration::from_millis(rng.below(max_ms));
        let kill_after = |mut c: Child, d: Duration| {
            std::thread::sleep(d);
            kill9(c.id() as i32);
            let _ = c.wait();
        };
        match rng.below(6) {
            0 => {
                let vol = format!("v{}", self.round);
                let mount = format!("{vol}:/v");
                let mut extra = vec!["-d"];
                if rng.coin() {
                    extra.push("--rm");
                }
                if rng.coin() {
                    extra.extend(["-v", mount.as_str()]);
                }
                let d = after(rng, 120);
                kill_after(self.spawn(&self.box_args(&name, &extra)), d);
                format!("run -d {extra:?} killed after {d:?}")
            }
            1 => {
                let d = after(rng, 400);
                kill_after(self.spawn(&self.box_args(&name, &["--rm"])), d);
                format!("run --rm killed after {d:?}")
            }
            2 => {
                let rm = rng.coin();
                let extra: &[&str] = if rm { &["-d", "--rm"] } else { &["-d"] };
                self.run(&self.box_args(&name, extra)).ok();
                let v: serde_json::Value =
                    serde_json::from_str(&self.run(&["inspect", &name]).stdout).expect("inspect");
                let sup = v[0]["State"]["SupervisorPid"].as_i64().expect("supervisor");
                let d = after(rng, 50);
                std::thread::sleep(d);
                kill9(sup as i32);
                format!("supervisor of run {extra:?} killed after {d:?}")
            }
            3 => {
                self.run(&self.box_args(&name, &["-d"])).ok();
                let d = after(rng, 60);
                kill_after(self.spawn(&["rm", "-f", &name]), d);
                format!("rm -f killed after {d:?}")
            }
            4 => {
                let vol = format!("v{}", self.round);
                self.run(&[
                    "run",
                    "--rm",
                    "-v",
                    &format!("{vol}:/v"),
                    "busybox",
                    "sh",
                    "-c",
                    // Some of it as another id (rootless: a subordinate one).
                    "for i in $(seq 100); do mkdir /v/d$i; echo $i > /v/d$i/f; done; \
                     chown -R 1000:1000 /v/d1 && chmod 700 /v/d1",
                ])
                .ok();
                let d = after(rng, 20);
                kill_after(self.spawn(&["volume", "rm", "-f", &vol]), d);
                format!("volume rm killed after {d:?}")
            }
            _ => {
                let d = after(rng, 300);
                let img = format!("img{}", self.round);
                kill_after(
                    self.spawn(&["image", "import", "--name", &img, &self.tar]),
                    d,
                );
                format!("image import killed after {d:?}")
            }
        }
    }

    /// After the commands that sweep, the store, the cgroups and the processes agree.
    fn settled(&self) -> Result<(), String> {
        self.run(&["image", "ls"]).ok();
        // Listing volumes writes nothing (a read-only store lists); the next volume command
        // that writes sweeps what a killed one left.
        self.run(&["volume", "ls"]).ok();
        self.run(&["volume", "create", "settle-probe"]).ok();
        self.run(&["volume", "rm", "settle-probe"]).ok();
        let ps = self.ps();
        let check = self.run(&["system", "check"]);
        if check.code != 0 {
            return Err(format!("system check:\n{}{}", check.stdout, check.stderr));
        }
        let running: Vec<&str> = ps
            .iter()
            .filter(|b| b["State"] == "running")
            .filter_map(|b| b["Id"].as_str())
            .collect();
        let stray: Vec<_> = self
            .cgroups()
            .into_iter()
            .filter(|(id, _)| !running.contains(&id.as_str()))
            .collect();
        if !stray.is_empty() {
            return Err(format!("cgroups of boxes that do not run: {stray:?}"));
        }
        let procs = common::processes_running(SLEEP);
        if procs.len() != running.len() {
            return Err(format!(
                "{} box processes for {} running boxes: {procs:?}",
                procs.len(),
                running.len()
            ));
        }
        Ok(())
    }

    /// Remove every box, volume and extra image: nothing of them may be left.
    fn clear(&self) -> Result<(), String> {
        let ids = self.run(&["ps", "-a", "-q", "--no-trunc"]);
        let ids: Vec<&str> = ids.stdout.lines().collect();
        if !ids.is_empty() {
            let mut a = vec!["rm", "-f"];
            a.extend(&ids);
            let r = self.run(&a);
            if r.code != 0 {
                return Err(format!("rm -f: {}", r.stderr));
            }
        }
        let vols = self.run(&["volume", "ls", "-q"]);
        for v in vols.stdout.lines() {
            self.run(&["volume", "rm", "-f", v]).ok();
        }
        let imgs = self.run(&["image", "ls", "--format", "json"]);
        let imgs: Vec<serde_json::Value> = serde_json::from_str(&imgs.stdout).unwrap_or_default();
        for i in imgs {
            let names = i["names"].as_array().cloned().unwrap_or_default();
            for n in names.iter().filter_map(|n| n.as_str()) {
                if !n.contains("busybox") {
                    self.run(&["image", "rm", "-f", n]).ok();
                }
            }
        }
        if !self.env.box_dirs().is_empty() {
            return Err(format!("box dirs left: {:?}", self.env.box_dirs()));
        }
        self.settled()
    }
}

impl Drop for World {
    fn drop(&mut self) {
        if let Some((_, dirs)) = &self.parent {
            for d in dirs {
                let _ = std::fs::remove_dir(d);
            }
        }
    }
}

fn settle_or_fail(w: &World, what: &str, f: impl Fn(&World) -> Result<(), String>) {
    let start = Instant::now();
    let mut last;
    loop {
        last = f(w);
        // Only what is still ending may need a moment (a killed supervisor's box, a run --rm
        // reaper at work): anything left for good shows as a failure after it.
        if last.is_ok() || start.elapsed() > Duration::from_secs(5) {
            break;
        }
        if let Err(e) = &last {
            eprintln!("  not yet settled ({:?}): {e}", start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    if let Err(e) = last {
        panic!("{:?}, {what}: {e}", w.env.who);
    }
}

#[test]
fn random_kills_leave_nothing_behind() {
    let seed = std::env::var("FOXBOX_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_f0c5_u64);
    let rounds: usize = std::env::var("FOXBOX_KILL_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    for who in Who::BOTH.into_iter().filter(|w| w.available()) {
        let mut rng = Rng(seed | 1);
        let mut w = World::new(who);
        for r in 0..rounds {
            let what = w.round(&mut rng);
            eprintln!("{who:?} seed {seed} round {r}: {what}");
            let label = format!("seed {seed} round {r} ({what})");
            settle_or_fail(&w, &label, World::settled);
            // Every few rounds, and at the end, everything goes.
            if r % 3 == 2 || r + 1 == rounds {
                settle_or_fail(&w, &format!("{label}, clearing"), World::clear);
            }
        }
        eventually("the boxes' processes to go", || {
            common::processes_running(SLEEP).is_empty()
        });
    }
}
