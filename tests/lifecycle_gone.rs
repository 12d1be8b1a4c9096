//! `rm -f`, `stop` and `kill` + `wait` return only once every process of the box is gone: its
//! fox and everything in its pid namespace, its supervisor, and the network helper the
//! supervisor started. As root and as the unprivileged user, with each network helper.
//!
//! Gone means exited: a zombie has let go of everything it held and waits only for its parent
//! (for the orphans of a killed supervisor, init) to reap it, which no command can hasten.

mod common;

use std::fs;

use common::{envs_with_busybox as envs, Env};

/// A process as it is now: (pid, start time), to tell it from a later one with its pid.
type Proc = (i32, u64);

fn start_time(pid: i32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// The very process, not exited (a zombie has).
fn running(p: Proc) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{}/stat", p.0)) else {
        return false;
    };
    let rest = &stat[stat.rfind(')').unwrap() + 1..];
    let mut f = rest.split_whitespace();
    let state = f.next().unwrap_or("Z");
    f.nth(18).and_then(|s| s.parse().ok()) == Some(p.1) && state != "Z" && state != "X"
}

fn children(pid: i32) -> Vec<i32> {
    fs::read_dir(format!("/proc/{pid}/task"))
        .map(|rd| {
            rd.flatten()
                .flat_map(|t| {
                    fs::read_to_string(t.path().join("children"))
                        .unwrap_or_default()
                        .split_whitespace()
                        .filter_map(|s| s.parse().ok())
                        .collect::<Vec<i32>>()
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The supervisor and all it started, and every process in the fox's pid namespace.
fn box_processes(env: &Env, name: &str) -> Vec<Proc> {
    let r = env.run(["inspect", name]);
    r.ok();
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let fox = v[0]["State"]["Pid"].as_i64().unwrap() as i32;
    let sup = v[0]["State"]["SupervisorPid"].as_i64().unwrap() as i32;
    let mut pids = vec![sup];
    let mut i = 0;
    while i < pids.len() {
        // Not the user-namespace holder, which serves every box (it may be orphaned onto a
        // supervisor, a subreaper, that started it).
        let more = children(pids[i]).into_iter().filter(|c| {
            !fs::read(format!("/proc/{c}/cmdline"))
                .unwrap_or_default()
                .starts_with(b"foxbox-userns-holder")
        });
        pids.extend(more);
        i += 1;
    }
    let ns = fs::read_link(format!("/proc/{fox}/ns/pid")).unwrap();
    for e in fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() {
            if fs::read_link(format!("/proc/{pid}/ns/pid")).is_ok_and(|n| n == ns) {
                pids.push(pid);
            }
        }
    }
    pids.sort_unstable();
    pids.dedup();
    pids.into_iter()
        .filter_map(|p| Some((p, start_time(p)?)))
        .collect()
}

fn start(env: &Env, name: &str, network: &str) -> Vec<Proc> {
    env.run([
        "run",
        "-d",
        "--name",
        name,
        "--network",
        network,
        "busybox",
        "sh",
        "-c",
        "sleep 600 & sleep 600 & sleep 600",
    ])
    .ok();
    // The box's shell has forked its two sleeps.
    common::eventually("the box's processes", || {
        box_processes(env, name).len() >= 5
    });
    let procs = box_processes(env, name);
    // supervisor, helper, fox, 2 sleeps (and, for pasta, nothing more of the box's).
    assert!(procs.len() >= 5, "{procs:?}");
    procs
}

#[track_caller]
fn assert_all_gone(procs: &[Proc], what: &str) {
    let left: Vec<String> = procs
        .iter()
        .filter(|p| running(**p))
        .map(|p| {
            let comm = fs::read_to_string(format!("/proc/{}/stat", p.0)).unwrap_or_default();
            comm.split(')').next().unwrap_or_default().to_string() + ")"
        })
        .collect();
    assert!(left.is_empty(), "{what} returned with {left:?} still there");
}

#[test]
fn rm_f_stop_and_kill_wait_return_when_everything_is_gone() {
    for env in envs() {
        for network in ["pasta", "slirp4netns"] {
            let procs = start(&env, "gone-rm", network);
            env.run(["rm", "-f", "gone-rm"]).ok();
            assert_all_gone(&procs, &format!("{:?} {network}: rm -f", env.who));

            let procs = start(&env, "gone-stop", network);
            env.run(["stop", "-t", "0", "gone-stop"]).ok();
            assert_all_gone(&procs, &format!("{:?} {network}: stop", env.who));
            env.run(["rm", "gone-stop"]).ok();

            let procs = start(&env, "gone-kill", network);
            env.run(["kill", "gone-kill"]).ok();
            env.run(["wait", "gone-kill"]).ok();
            assert_all_gone(&procs, &format!("{:?} {network}: kill + wait", env.who));
            env.run(["rm", "gone-kill"]).ok();
        }
    }
}
