//! `foxbox ps -a` over 1,000 stored boxes, beside `podman ps -a` on an empty store measured in
//! the same run (podman's floor: no containers at all). Run: `cargo bench --bench ps`.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use foxbox::boxes::{BoxConfig, Boxes, Event};
use foxbox::runner::lifecycle::LifeHandle;

const BOXES: usize = 1000;
const RUNS: usize = 30;

/// `cargo bench` passes `--bench`; under `cargo test` the bench only checks that it runs.
fn sizes() -> (usize, usize) {
    if std::env::args().any(|a| a == "--bench") {
        (BOXES, RUNS)
    } else {
        (10, 2)
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn time(runs: usize, mut cmd: impl FnMut() -> Command) -> Option<Duration> {
    let mut v = Vec::new();
    for _ in 0..runs {
        let mut c = cmd();
        c.stdout(Stdio::null()).stderr(Stdio::null());
        let t = Instant::now();
        let ok = c.status().ok()?.success();
        v.push(t.elapsed());
        if !ok {
            return None;
        }
    }
    Some(median(v))
}

fn fill(root: &Path, n: usize) {
    let boxes = Boxes::open(root.join("boxes")).expect("open store");
    for i in 0..n {
        let e = boxes
            .create(BoxConfig {
                id: String::new(),
                name: format!("bench-{i}"),
                created: 0,
                image: "busybox".into(),
                image_id: None,
                command: vec!["/bin/sh".into(), "-c".into(), "echo hello".into()],
                spec: None,
                ports: vec![],
                volumes: vec![],
                auto_remove: false,
                plan: serde_json::json!({"process": {"args": ["/bin/sh"]}}),
                exec: None,
                creator: None,
                initial: None,
            })
            .expect("create");
        LifeHandle::of(boxes.clone(), &e.config.id)
            .apply(&Event::Exit {
                code: 0,
                oom_killed: false,
                timed_out: false,
                error: None,
            })
            .expect("state");
    }
}

fn main() {
    let (n, runs) = sizes();
    let tmp = tempfile::tempdir().expect("tempdir");
    fill(tmp.path(), n);
    let bin = env!("CARGO_BIN_EXE_foxbox");
    let root = tmp.path().to_path_buf();
    let fox = time(runs, || {
        let mut c = Command::new(bin);
        c.arg("--root").arg(&root).args(["ps", "-a"]);
        c
    })
    .expect("foxbox ps -a failed");
    println!(
        "foxbox ps -a, {n} boxes: median {:.1} ms over {runs} runs (target < 50 ms)",
        fox.as_secs_f64() * 1e3
    );
    let podman_root = tmp.path().join("podman");
    let podman = time(runs, || {
        let mut c = Command::new("podman");
        c.arg("--root")
            .arg(podman_root.join("root"))
            .arg("--runroot")
            .arg(podman_root.join("run"))
            .args(["ps", "-a"]);
        c
    });
    match podman {
        Some(p) => println!(
            "podman ps -a, empty store: median {:.1} ms; ratio foxbox/podman = {:.2}",
            p.as_secs_f64() * 1e3,
            fox.as_secs_f64() / p.as_secs_f64()
        ),
        None => println!("podman ps -a could not run here; no ratio"),
    }
}
