//! The cost of one `getpid` under the default profile's filter as foxbox, libseccomp (binary
//! tree and linear) and `seccompiler` (the profile's allow rules) compile it, beside no filter,
//! measured in the same run. Each filter is loaded in a forked child that times a loop of raw
//! getpid calls; the figure is the median of several children. Run: `cargo bench --bench
//! seccomp` (under `cargo test` it only checks that it runs).

use std::io::{Read, Seek};

use foxbox::security::caps::CapSet;
use foxbox::security::seccomp::{self, resolve, Action, Arch, Insn, Ruleset, Target};
use libseccomp::ScmpSyscall;
use libseccomp::{ScmpAction, ScmpArgCompare, ScmpCompareOp, ScmpFilterAttr, ScmpFilterContext};

fn scmp_action(a: Action) -> ScmpAction {
    match a {
        Action::KillProcess => ScmpAction::KillProcess,
        Action::KillThread => ScmpAction::KillThread,
        Action::Trap { .. } => ScmpAction::Trap,
        Action::Errno { errno } => ScmpAction::Errno(i32::from(errno)),
        Action::Trace { data } => ScmpAction::Trace(data),
        Action::Log => ScmpAction::Log,
        Action::Allow => ScmpAction::Allow,
    }
}

fn libseccomp(rs: &Ruleset, optimize: u32) -> Vec<Insn> {
    use seccomp::CmpOp::*;
    let mut ctx = ScmpFilterContext::new(scmp_action(rs.default)).expect("init");
    ctx.set_filter_attr(ScmpFilterAttr::CtlOptimize, optimize)
        .expect("optimize");
    for (nr, rules) in rs.iter() {
        let sc = ScmpSyscall::from(nr as i32);
        for r in rules.iter().filter(|r| r.action != rs.default) {
            let conds: Vec<ScmpArgCompare> = r
                .conds
                .iter()
                .map(|c| {
                    let op = match c.op {
                        Ne => ScmpCompareOp::NotEqual,
                        Lt => ScmpCompareOp::Less,
                        Le => ScmpCompareOp::LessOrEqual,
                        Eq => ScmpCompareOp::Equal,
                        Ge => ScmpCompareOp::GreaterEqual,
                        Gt => ScmpCompareOp::Greater,
                        MaskedEq => ScmpCompareOp::MaskedEqual(c.value),
                    };
                    let datum = if c.op == MaskedEq {
                        c.value_two
                    } else {
                        c.value
                    };
                    ScmpArgCompare::new(u32::from(c.index), op, datum)
                })
                .collect();
            let _ = ctx.add_rule_conditional(scmp_action(r.action), sc, &conds);
        }
    }
    let mut f = tempfile::tempfile().expect("tmp");
    ctx.export_bpf(&f).expect("export");
    f.rewind().expect("rewind");
    let mut b = Vec::new();
    f.read_to_end(&mut b).expect("read");
    b.chunks_exact(8)
        .map(|c| Insn {
            code: u16::from_ne_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect()
}

fn seccompiler_allow(rs: &Ruleset) -> Vec<Insn> {
    use seccompiler::{SeccompAction, SeccompFilter, TargetArch};
    // The allow rules as unconditional ones: an upper bound on seccompiler's per-call work
    // for this call (its linear chain is the same length either way).
    let rules = rs
        .iter()
        .filter(|(_, r)| r.iter().any(|r| r.action == Action::Allow))
        .map(|(nr, _)| (i64::from(nr), Vec::new()))
        .collect();
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Errno(libc::EPERM as u32),
        SeccompAction::Allow,
        TargetArch::x86_64,
    )
    .expect("filter");
    let prog: seccompiler::BpfProgram = filter.try_into().expect("bpf");
    prog.iter()
        .map(|f| Insn {
            code: f.code,
            jt: f.jt,
            jf: f.jf,
            k: f.k,
        })
        .collect()
}

/// Nanoseconds per getpid in a child that loaded `prog` (none: no filter).
fn ns_per_call(prog: Option<&[Insn]>, calls: u32) -> f64 {
    let filter: Vec<libc::sock_filter> = prog
        .unwrap_or(&[])
        .iter()
        .map(|i| libc::sock_filter {
            code: i.code,
            jt: i.jt,
            jf: i.jf,
            k: i.k,
        })
        .collect();
    let fprog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr() as *mut libc::sock_filter,
    };
    let mut fds = [0; 2];
    // SAFETY: pipe fills the array; the child makes raw syscalls only, reads the clock through
    // the vDSO, and _exits; the parent reads and reaps it.
    unsafe {
        assert_eq!(libc::pipe(fds.as_mut_ptr()), 0);
        let pid = libc::fork();
        if pid == 0 {
            if prog.is_some()
                && (libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                    || libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_FILTER, &fprog) != 0)
            {
                libc::_exit(3);
            }
            let mut a = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            let mut b = a;
            libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut a);
            for _ in 0..calls {
                libc::syscall(libc::SYS_getpid);
            }
            libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut b);
            let ns: u64 = ((b.tv_sec - a.tv_sec) * 1_000_000_000 + (b.tv_nsec - a.tv_nsec)) as u64;
            let bytes = ns.to_ne_bytes();
            libc::write(fds[1], bytes.as_ptr().cast(), 8);
            libc::_exit(0);
        }
        libc::close(fds[1]);
        let mut buf = [0u8; 8];
        let n = libc::read(fds[0], buf.as_mut_ptr().cast(), 8);
        libc::close(fds[0]);
        let mut status = 0;
        libc::waitpid(pid, &mut status, 0);
        assert_eq!(n, 8, "the child reported nothing (status {status:#x})");
        u64::from_ne_bytes(buf) as f64 / f64::from(calls)
    }
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let (calls, rounds) = if bench { (200_000, 15) } else { (1_000, 2) };
    if Arch::native() != Some(Arch::X86_64) {
        eprintln!("SKIP: this benchmark compiles for x86_64");
        return;
    }
    let rs = resolve(
        seccomp::default_profile(),
        &Target {
            arch: Arch::X86_64,
            caps: CapSet::podman_default(),
            kernel: None,
        },
    );
    let ours = seccomp::bpf::compile(&rs).expect("compile");
    let filters: Vec<(&str, Option<Vec<Insn>>)> = vec![
        ("no filter", None),
        ("foxbox", Some(ours.instructions().to_vec())),
        ("libseccomp (tree)", Some(libseccomp(&rs, 2))),
        ("libseccomp (linear)", Some(libseccomp(&rs, 1))),
        ("seccompiler", Some(seccompiler_allow(&rs))),
    ];
    // Rounds interleave the filters so that drift of the machine's speed hits all alike.
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); filters.len()];
    for _ in 0..rounds {
        for (i, (_, prog)) in filters.iter().enumerate() {
            samples[i].push(ns_per_call(prog.as_deref(), calls));
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let medians: Vec<f64> = samples.iter_mut().map(median).collect();
    println!("getpid under the default profile ({calls} calls x {rounds} rounds, medians)");
    println!("| filter | instructions | ns per call | over no filter | / foxbox's |");
    println!("|---|---|---|---|---|");
    for (i, (name, prog)) in filters.iter().enumerate() {
        println!(
            "| {name} | {} | {:.1} | {:+.1} | {:.2} |",
            prog.as_ref().map_or(0, |p| p.len()),
            medians[i],
            medians[i] - medians[0],
            (medians[i] - medians[0]) / (medians[1] - medians[0]).max(0.1)
        );
    }
}
