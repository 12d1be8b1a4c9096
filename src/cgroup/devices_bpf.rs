//! Device cgroup rules on cgroup v2: v2 has no devices.allow/devices.deny, the kernel asks a
//! BPF_PROG_TYPE_CGROUP_DEVICE program attached to the cgroup instead. The rules compile into
//! one, as runc's devicefilter and crun do: the rules are tried last first and the first that
//! matches decides (so, as on v1 for the usual "deny all, then allow some" list, a later rule
//! overrides an earlier one), and a request no rule matches is denied.
//!
//! The program gets `struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }`,
//! `access_type` being `(access << 16) | type`, and returns 1 to allow, 0 to deny. A request
//! asks for one or more accesses at once (an open for reading and writing asks for both): an
//! allow rule matches when it grants all of them, a deny rule when it refuses any.

use std::ffi::CStr;
use std::fs::File;
use std::os::fd::AsFd;
use std::path::Path;

use super::{CgroupError, DeviceRule};
use crate::sys::bpf;

/// `BPF_DEVCG_ACC_*`.
const ACC_MKNOD: i32 = 1;
const ACC_READ: i32 = 2;
const ACC_WRITE: i32 = 4;
/// `BPF_DEVCG_DEV_*`.
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;

/// What runc and crun give: the kernel wants a license string, and any is accepted for a
/// program that calls no GPL-only helper.
const LICENSE: &CStr = c"Apache";

/// One eBPF instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u8,
    pub dst: u8,
    pub src: u8,
    pub off: i16,
    pub imm: i32,
}

impl Insn {
    /// As the kernel reads it: code, dst (low nibble) and src registers, offset, immediate,
    /// little-endian on the machines foxbox builds for.
    pub fn bytes(self) -> [u8; 8] {
        let mut b = [0u8; 8];
        b[0] = self.code;
        b[1] = (self.src << 4) | (self.dst & 0x0f);
        b[2..4].copy_from_slice(&self.off.to_ne_bytes());
        b[4..8].copy_from_slice(&self.imm.to_ne_bytes());
        b
    }
}

/// The opcodes the program uses (class | operation | source).
mod op {
    /// BPF_LDX | BPF_MEM | BPF_W: dst = *(u32 *)(src + off).
    pub const LDX_W: u8 = 0x61;
    /// BPF_ALU | BPF_AND | BPF_K (32 bits).
    pub const AND32_K: u8 = 0x54;
    /// BPF_ALU | BPF_RSH | BPF_K.
    pub const RSH32_K: u8 = 0x74;
    /// BPF_ALU | BPF_MOV | BPF_K.
    pub const MOV32_K: u8 = 0xb4;
    /// BPF_ALU | BPF_MOV | BPF_X.
    pub const MOV32_X: u8 = 0xbc;
    /// BPF_JMP | BPF_JNE | BPF_K: if dst != imm, pc += off.
    pub const JNE_K: u8 = 0x55;
    /// BPF_JMP | BPF_JEQ | BPF_K.
    pub const JEQ_K: u8 = 0x15;
    /// BPF_JMP | BPF_JNE | BPF_X: if dst != src, pc += off.
    pub const JNE_X: u8 = 0x5d;
    /// BPF_JMP | BPF_EXIT.
    pub const EXIT: u8 = 0x95;
}

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        dst,
        src,
        off,
        imm,
    }
}

/// Registers: r1 the context on entry (then a scratch), r2 the type, r3 the access, r4 major,
/// r5 minor, r0 the verdict.
const PROLOGUE: [Insn; 6] = [
    Insn {
        code: op::LDX_W,
        dst: 2,
        src: 1,
        off: 0,
        imm: 0,
    },
    Insn {
        code: op::AND32_K,
        dst: 2,
        src: 0,
        off: 0,
        imm: 0xffff,
    },
    Insn {
        code: op::LDX_W,
        dst: 3,
        src: 1,
        off: 0,
        imm: 0,
    },
    Insn {
        code: op::RSH32_K,
        dst: 3,
        src: 0,
        off: 0,
        imm: 16,
    },
    Insn {
        code: op::LDX_W,
        dst: 4,
        src: 1,
        off: 4,
        imm: 0,
    },
    Insn {
        code: op::LDX_W,
        dst: 5,
        src: 1,
        off: 8,
        imm: 0,
    },
];

fn number(rule: &DeviceRule, what: &str, v: Option<i64>) -> Result<Option<i32>, CgroupError> {
    match v {
        None => Ok(None),
        // A jump compares with the immediate sign-extended to 64 bits: kept positive. Linux's
        // device numbers are far below (12-bit majors, 20-bit minors).
        Some(n) => i32::try_from(n)
            .map(Some)
            .map_err(|_| CgroupError::Unsupported {
                field: rule.field.clone(),
                why: format!("{what} {n} is not a device number"),
            }),
    }
}

/// The tests of one rule, each jumping past the rule's block when it does not match, then
/// the verdict. The jump offsets are filled once the block's length is known.
fn block(rule: &DeviceRule) -> Result<(Vec<Insn>, bool), CgroupError> {
    // Stands for "past this block" until the block's length is known.
    const NEXT: i16 = i16::MAX;
    let mut b = Vec::new();
    match rule.kind {
        'a' => {}
        'b' => b.push(insn(op::JNE_K, 2, 0, NEXT, DEV_BLOCK)),
        'c' => b.push(insn(op::JNE_K, 2, 0, NEXT, DEV_CHAR)),
        k => {
            return Err(CgroupError::Unsupported {
                field: rule.field.clone(),
                why: format!("{k:?}: device cgroup rules take a, b or c"),
            })
        }
    }
    let mut access = 0;
    for c in rule.access.chars() {
        access |= match c {
            'r' => ACC_READ,
            'w' => ACC_WRITE,
            'm' => ACC_MKNOD,
            _ => {
                return Err(CgroupError::Unsupported {
                    field: rule.field.clone(),
                    why: format!("{:?}: use r, w and m", rule.access),
                })
            }
        };
    }
    let all = ACC_READ | ACC_WRITE | ACC_MKNOD;
    if access != all {
        b.push(insn(op::MOV32_X, 1, 3, 0, 0));
        b.push(insn(op::AND32_K, 1, 0, 0, access));
        if rule.allow {
            // Every access asked for is granted: (asked & granted) == asked.
            b.push(insn(op::JNE_X, 1, 3, NEXT, 0));
        } else {
            // Any access asked for is refused: (asked & refused) != 0.
            b.push(insn(op::JEQ_K, 1, 0, NEXT, 0));
        }
    }
    if let Some(m) = number(rule, "major", rule.major)? {
        b.push(insn(op::JNE_K, 4, 0, NEXT, m));
    }
    if let Some(m) = number(rule, "minor", rule.minor)? {
        b.push(insn(op::JNE_K, 5, 0, NEXT, m));
    }
    let catch_all = b.is_empty();
    b.push(insn(op::MOV32_K, 0, 0, 0, i32::from(rule.allow)));
    b.push(insn(op::EXIT, 0, 0, 0, 0));
    let len = b.len();
    for (i, ins) in b.iter_mut().enumerate() {
        if ins.off == NEXT {
            // From the instruction after this one to the one after the block.
            ins.off = i16::try_from(len - i - 1).unwrap_or(0);
        }
    }
    Ok((b, catch_all))
}

/// The program for `rules` (in the order a config lists them).
pub fn program(rules: &[DeviceRule]) -> Result<Vec<Insn>, CgroupError> {
    let mut p = PROLOGUE.to_vec();
    for rule in rules.iter().rev() {
        let (b, catch_all) = block(rule)?;
        p.extend(b);
        // Nothing before a rule that matches everything is ever reached.
        if catch_all {
            return Ok(p);
        }
    }
    p.push(insn(op::MOV32_K, 0, 0, 0, 0));
    p.push(insn(op::EXIT, 0, 0, 0, 0));
    Ok(p)
}

/// Load the program; on a refusal, load it again with a log to say what the verifier found.
/// Not logged the first time: a log too small for it (a long rule list) fails the load.
fn load(insns: &[[u8; 8]]) -> Result<std::os::fd::OwnedFd, (std::io::Error, String)> {
    let what = "load the device program";
    let e = match bpf::prog_load(bpf::PROG_TYPE_CGROUP_DEVICE, insns, LICENSE, &mut []) {
        Ok(fd) => return Ok(fd),
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => return Err((e, what.into())),
        Err(e) => e,
    };
    let mut log = vec![0u8; 1 << 20];
    let _ = bpf::prog_load(bpf::PROG_TYPE_CGROUP_DEVICE, insns, LICENSE, &mut log);
    let text = String::from_utf8_lossy(&log);
    let text = text.trim_end_matches('\0').trim();
    if text.is_empty() {
        Err((e, what.into()))
    } else {
        Err((e, format!("{what} (the verifier says: {text})")))
    }
}

fn failed(dir: &Path, what: &str, source: std::io::Error) -> CgroupError {
    CgroupError::DeviceProgram {
        path: dir.to_path_buf(),
        what: what.to_string(),
        source,
    }
}

/// Load the program for `rules` and attach it to the cgroup v2 directory `dir`, then detach
/// the device programs attached there before (an earlier `create` or `update`'s), as runc
/// does: attached first, so that there is no moment without rules.
pub fn apply(dir: &Path, rules: &[DeviceRule]) -> Result<(), CgroupError> {
    let insns: Vec<[u8; 8]> = program(rules)?.into_iter().map(Insn::bytes).collect();
    let cg = File::open(dir).map_err(|e| failed(dir, "open the cgroup", e))?;
    let old = bpf::prog_query(cg.as_fd(), bpf::ATTACH_CGROUP_DEVICE)
        .map_err(|e| failed(dir, "list its device programs", e))?;
    let prog = load(&insns).map_err(|(e, what)| failed(dir, &what, e))?;
    bpf::prog_attach(
        cg.as_fd(),
        prog.as_fd(),
        bpf::ATTACH_CGROUP_DEVICE,
        bpf::F_ALLOW_MULTI,
    )
    .map_err(|e| failed(dir, "attach the device program", e))?;
    for id in old {
        let fd = bpf::prog_fd_by_id(id)
            .map_err(|e| failed(dir, &format!("open its old device program {id}"), e))?;
        match bpf::prog_detach(cg.as_fd(), fd.as_fd(), bpf::ATTACH_CGROUP_DEVICE) {
            // Detached meanwhile by another runtime process.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            r => r.map_err(|e| failed(dir, &format!("detach its old device program {id}"), e))?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(
        allow: bool,
        kind: char,
        major: Option<i64>,
        minor: Option<i64>,
        access: &str,
    ) -> DeviceRule {
        DeviceRule {
            allow,
            kind,
            major,
            minor,
            access: access.into(),
            field: "devices".into(),
        }
    }

    /// Runs the few opcodes [`program`] emits, as the kernel would, on one request.
    fn run(p: &[Insn], kind: i32, access: i32, major: u32, minor: u32) -> u64 {
        let ctx = [((access as u32) << 16) | kind as u32, major, minor];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        let mut steps = 0;
        loop {
            steps += 1;
            assert!(steps < 10_000, "no exit");
            let i = p[pc];
            let (d, s) = (i.dst as usize, i.src as usize);
            let mut next = pc + 1;
            let jump = |taken: bool| {
                if taken {
                    (pc as i64 + 1 + i64::from(i.off)) as usize
                } else {
                    pc + 1
                }
            };
            match i.code {
                op::LDX_W => {
                    assert_eq!(s, 1, "loads from the context only");
                    r[d] = u64::from(ctx[(i.off / 4) as usize]);
                }
                op::AND32_K => r[d] = u64::from((r[d] as u32) & (i.imm as u32)),
                op::RSH32_K => r[d] = u64::from((r[d] as u32) >> i.imm),
                op::MOV32_K => r[d] = u64::from(i.imm as u32),
                op::MOV32_X => r[d] = u64::from(r[s] as u32),
                op::JNE_K => next = jump(r[d] != i.imm as i64 as u64),
                op::JEQ_K => next = jump(r[d] == i.imm as i64 as u64),
                op::JNE_X => next = jump(r[d] != r[s]),
                op::EXIT => return r[0],
                c => panic!("opcode {c:#x}"),
            }
            pc = next;
            assert!(pc < p.len(), "ran off the end");
        }
    }

    #[test]
    fn bytes_of_deny_all_then_allow_null() {
        let p = program(&[
            rule(false, 'a', None, None, "rwm"),
            rule(true, 'c', Some(1), Some(3), "rwm"),
        ])
        .unwrap();
        let hex: Vec<String> = p.iter().map(|i| hex::encode(i.bytes())).collect();
        assert_eq!(
            hex,
            [
                "6112000000000000", // r2 = ctx->access_type
                "54020000ffff0000", // r2 &= 0xffff (type)
                "6113000000000000", // r3 = ctx->access_type
                "7403000010000000", // r3 >>= 16 (access)
                "6114040000000000", // r4 = ctx->major
                "6115080000000000", // r5 = ctx->minor
                "5502040002000000", // c 1:3 rwm: if r2 != char goto +4
                "5504030001000000", // if r4 != 1 goto +3
                "5505020003000000", // if r5 != 3 goto +2
                "b400000001000000", // r0 = 1
                "9500000000000000", // exit
                "b400000000000000", // a *:* rwm (deny): r0 = 0
                "9500000000000000", // exit
            ]
        );
    }

    /// Denies first, then allows and denies that overlap: the order decides.
    fn mixed_rules() -> [DeviceRule; 4] {
        [
            rule(false, 'a', None, None, "rwm"),
            rule(true, 'c', Some(1), None, "rw"),
            rule(false, 'c', Some(1), Some(5), "w"),
            rule(true, 'b', None, Some(7), "m"),
        ]
    }

    #[test]
    fn last_matching_rule_decides() {
        let c = DEV_CHAR;
        let b = DEV_BLOCK;
        let (r, w, m) = (ACC_READ, ACC_WRITE, ACC_MKNOD);
        let p = program(&mixed_rules()).unwrap();
        assert_eq!(run(&p, c, r, 1, 3), 1, "c 1:* rw allows reading 1:3");
        assert_eq!(run(&p, c, r | w, 1, 3), 1);
        assert_eq!(run(&p, c, m, 1, 3), 0, "mknod is not granted");
        assert_eq!(run(&p, c, r, 1, 5), 1, "1:5 is only denied writing");
        assert_eq!(
            run(&p, c, r | w, 1, 5),
            0,
            "a deny matches any access it refuses"
        );
        assert_eq!(run(&p, c, r, 2, 3), 0, "no rule: denied");
        assert_eq!(run(&p, b, r, 1, 3), 0, "a block device is not a c rule's");
        assert_eq!(run(&p, b, m, 8, 7), 1);
        assert_eq!(run(&p, b, r, 8, 7), 0);

        // Without a deny-all, what no rule matches is still denied (runc's default too).
        let p = program(&[rule(false, 'c', Some(1), Some(3), "rwm")]).unwrap();
        assert_eq!(run(&p, c, r, 1, 3), 0);
        assert_eq!(run(&p, c, r, 1, 5), 0);
        // An allow-all first, a deny after it.
        let p = program(&[
            rule(true, 'a', None, None, "rwm"),
            rule(false, 'c', Some(1), Some(3), "rwm"),
        ])
        .unwrap();
        assert_eq!(run(&p, c, r, 1, 3), 0);
        assert_eq!(run(&p, c, r, 1, 5), 1);
        assert_eq!(run(&p, b, w, 8, 0), 1);
    }

    #[test]
    fn a_catch_all_rule_ends_the_program() {
        let p = program(&[
            rule(true, 'c', Some(1), Some(3), "rwm"),
            rule(false, 'a', None, None, "rwm"),
        ])
        .unwrap();
        assert_eq!(p.len(), PROLOGUE.len() + 2, "{p:?}");
        assert_eq!(run(&p, DEV_CHAR, ACC_READ, 1, 3), 0);
    }

    /// Loaded only, never attached: that touches no cgroup of this host.
    #[test]
    fn the_kernel_verifier_accepts_it() {
        let p = program(&mixed_rules()).unwrap();
        let insns: Vec<[u8; 8]> = p.into_iter().map(Insn::bytes).collect();
        match load(&insns) {
            Ok(_) => {}
            Err((e, _)) if e.raw_os_error() == Some(libc::EPERM) => {
                eprintln!("SKIP: loading a BPF program needs root here: {e}");
                return;
            }
            Err((e, what)) => panic!("{what}: {e}"),
        }
        // Without its exit the verifier refuses it, and says why.
        let (e, what) = load(&insns[..insns.len() - 1]).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EINVAL), "{e}");
        assert!(what.contains("the verifier says:"), "{what}");
    }

    #[test]
    fn bad_rules_name_their_field() {
        let mut r = rule(true, 'p', None, None, "rwm");
        r.field = "linux.resources.devices[2]".into();
        let e = program(&[r]).unwrap_err();
        assert!(
            e.to_string().starts_with("linux.resources.devices[2]: "),
            "{e}"
        );
        let e = program(&[rule(true, 'c', Some(1 << 40), None, "r")]).unwrap_err();
        assert!(e.to_string().contains("major"), "{e}");
    }
}
