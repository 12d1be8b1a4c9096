//! Any argv as `run FLAGS... IMAGE COMMAND...` through the library's flags parser (the clap
//! layer lives in the binary: this maps `--flag value` pairs onto `RunFlags` the way it does):
//! resolving and rendering never panic, and a plan comes only without errors.
#![no_main]

use std::path::Path;

use foxbox::spec::flags::{check_run_flags, RunFlags};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut words = text.split('\0').map(str::to_string);
    let mut f = RunFlags::default();
    let mut rest = Vec::new();
    while let Some(w) = words.next() {
        let mut val = || words.next().unwrap_or_default();
        match w.as_str() {
            "--name" => f.name = Some(val()),
            "-e" => f.env.push(val()),
            "-w" => f.workdir = Some(val()),
            "-u" => f.user = Some(val()),
            "--hostname" => f.hostname = Some(val()),
            "-v" => f.volume.push(val()),
            "--tmpfs" => f.tmpfs.push(val()),
            "-m" => f.memory = Some(val()),
            "--memory-swap" => f.memory_swap = Some(val()),
            "--cpus" => f.cpus = Some(val()),
            "--pids-limit" => f.pids_limit = Some(val()),
            "--timeout" => f.timeout = Some(val()),
            "--stop-timeout" => f.stop_timeout = Some(val()),
            "--cap-add" => f.cap_add.push(val()),
            "--cap-drop" => f.cap_drop.push(val()),
            "--security-opt" => f.security_opt.push(val()),
            "--network" => f.network = Some(val()),
            "-p" => f.publish.push(val()),
            "--userns" => f.userns = Some(val()),
            "--entrypoint" => f.entrypoint = Some(val()),
            "--read-only" => f.read_only = true,
            "-t" => f.tty = true,
            "--init" => f.init = true,
            _ => rest.push(w),
        }
    }
    let mut rest = rest.into_iter();
    f.image = rest.next().unwrap_or_default();
    f.command = rest.collect();
    let env = |k: &str| (k.len() % 2 == 0).then(|| format!("v-{k}"));
    let checked = check_run_flags(&f, Path::new("/nonexistent/fuzz"), &env);
    let src = foxbox::diag::Source {
        name: "command line",
        text: Some(&checked.command_line),
    };
    let _ = foxbox::diag::render_source(&checked.diagnostics, src, Default::default());
    if let Some(plan) = checked.plan {
        assert!(checked.diagnostics.iter().all(|d| !d.is_error()));
        let _ = foxbox::exec::steps::describe(&plan);
    }
});
