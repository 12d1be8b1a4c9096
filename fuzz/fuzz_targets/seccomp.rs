//! Any text as a seccomp JSON profile: parsing never panics, and a profile that parses compiles
//! (for a couple of capability sets) into a program whose verdicts agree with
//! `Ruleset::decide` for syscalls and arguments taken from the input.
#![no_main]

use foxbox::plan::caps::CapSet;
use foxbox::security::seccomp::{self, interp, resolve, Arch, Target};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(profile) = seccomp::parse_profile(text) else {
        return;
    };
    let Some(arch) = Arch::native() else {
        return;
    };
    // Numbers and arguments from the input's bytes, plus the edges.
    let mut nrs: Vec<u32> = data
        .chunks(2)
        .map(|c| u32::from(c[0]) | u32::from(*c.get(1).unwrap_or(&0)) << 8)
        .map(|n| n % (arch.max_syscall() + 8))
        .take(32)
        .collect();
    nrs.extend([
        0,
        1,
        arch.max_syscall(),
        arch.max_syscall() + 1,
        0x4000_0000,
    ]);
    let arg = |i: usize| {
        let b = data.get(i % data.len().max(1)).copied().unwrap_or(0);
        [0, 1, u64::from(b), u64::MAX, 1 << 32 | u64::from(b)][i % 5]
    };
    for caps in [CapSet::podman_default(), CapSet::EMPTY, CapSet::all()] {
        let target = Target {
            arch,
            caps,
            kernel: None,
        };
        let rs = resolve(&profile, &target);
        let Ok(prog) = seccomp::bpf::compile(&rs) else {
            continue;
        };
        for (k, &nr) in nrs.iter().enumerate() {
            let args = [
                arg(k),
                arg(k + 1),
                arg(k + 2),
                arg(k + 3),
                arg(k + 4),
                arg(k + 5),
            ];
            let d = interp::SeccompData {
                nr,
                arch: arch.audit_arch(),
                ip: 0,
                args,
            };
            let got = interp::run(prog.instructions(), &d).expect("the program runs");
            assert_eq!(got, rs.decide(nr, &args).ret(), "nr {nr} args {args:?}");
        }
    }
});
