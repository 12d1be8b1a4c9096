//! Classic BPF generation for a [`Ruleset`].
//!
//! Layout: check `seccomp_data.arch` (anything but the target ABI is killed, x32 included),
//! then a balanced binary search over syscall-number ranges (one `jge` per level, ranges with
//! the same plain answer merged), ending in a `ret` or in the argument checks of one syscall.
//! Code is emitted back to front, so every jump target already exists when the jump is
//! written; a conditional jump further than 255 instructions goes through an inserted `ja`.

use serde::Serialize;

use super::arch::{Arch, X32_SYSCALL_BIT};
use super::resolve::{Rule, Ruleset, ENOSYS};
use crate::plan::seccomp_profile::{Action, ArgCond, CmpOp};

/// The kernel's limit on a classic BPF program (`BPF_MAXINSNS`).
pub const MAX_INSNS: usize = 4096;

/// One classic BPF instruction: the kernel's `struct sock_filter`, defined beside the call
/// that hands it to the kernel.
pub use crate::sys::security::Insn;

pub const LD_W_ABS: u16 = 0x20;
pub const ALU_AND_K: u16 = 0x54;
pub const JMP_JA: u16 = 0x05;
pub const JMP_JEQ_K: u16 = 0x15;
pub const JMP_JGT_K: u16 = 0x25;
pub const JMP_JGE_K: u16 = 0x35;
pub const RET_K: u16 = 0x06;

/// Offsets in `struct seccomp_data`.
pub const OFF_NR: u32 = 0;
pub const OFF_ARCH: u32 = 4;
pub fn off_arg_lo(i: u8) -> u32 {
    16 + 8 * u32::from(i)
}
pub fn off_arg_hi(i: u8) -> u32 {
    off_arg_lo(i) + 4
}

/// A compiled filter: build it before forking, install it in the child.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Program {
    arch: Arch,
    flags: u32,
    insns: Vec<Insn>,
}

impl Program {
    /// A short fingerprint of the filter (sha256 of its JSON), to tell later whether a profile
    /// still compiles to the filter a box got.
    pub fn digest(&self) -> String {
        use sha2::Digest;
        let bytes = serde_json::to_vec(self).unwrap_or_default();
        format!("sha256:{}", hex::encode(sha2::Sha256::digest(&bytes)))
    }

    pub fn arch(&self) -> Arch {
        self.arch
    }

    /// `SECCOMP_FILTER_FLAG_*` bits to install it with.
    pub fn flags(&self) -> u32 {
        self.flags
    }

    pub fn instructions(&self) -> &[Insn] {
        &self.insns
    }

    pub fn len(&self) -> usize {
        self.insns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.insns.is_empty()
    }
}

/// What a range of syscall numbers leads to.
#[derive(Clone, PartialEq)]
enum Leaf<'a> {
    Ret(Action),
    Rules(&'a [Rule]),
}

struct Range<'a> {
    lo: u32,
    leaf: Leaf<'a>,
}

/// Back-to-front emitter: `rev[i]` is the i-th instruction counted from the end, and a label is
/// such an index.
struct Emitter {
    rev: Vec<Insn>,
    /// The last `ret` emitted per return value, to share it while it is within jump range.
    rets: Vec<(u32, usize)>,
}

type Label = usize;

impl Emitter {
    fn push(&mut self, insn: Insn) -> Label {
        self.rev.push(insn);
        self.rev.len() - 1
    }

    /// Distance from the next instruction pushed to `target`.
    fn dist(&self, target: Label) -> usize {
        self.rev.len() - target - 1
    }

    fn ja(&mut self, target: Label) -> Label {
        let k = self.dist(target) as u32;
        self.push(Insn {
            code: JMP_JA,
            jt: 0,
            jf: 0,
            k,
        })
    }

    /// Make `target` the next instruction in program order, for code that falls through.
    fn goto(&mut self, target: Label) -> Label {
        if target + 1 == self.rev.len() {
            target
        } else {
            self.ja(target)
        }
    }

    fn ret(&mut self, action: Action) -> Label {
        let value = action.ret();
        if let Some(&(_, at)) = self.rets.iter().find(|(v, _)| *v == value) {
            if self.dist(at) <= 200 {
                return at;
            }
        }
        let at = self.push(Insn {
            code: RET_K,
            jt: 0,
            jf: 0,
            k: value,
        });
        self.rets.retain(|(v, _)| *v != value);
        self.rets.push((value, at));
        at
    }

    fn jump(&mut self, code: u16, k: u32, mut on_true: Label, mut on_false: Label) -> Label {
        if self.dist(on_true) > 255 {
            on_true = self.ja(on_true);
        }
        if self.dist(on_false) > 255 {
            on_false = self.ja(on_false);
        }
        let (jt, jf) = (self.dist(on_true) as u8, self.dist(on_false) as u8);
        self.push(Insn { code, jt, jf, k })
    }

    fn load(&mut self, off: u32) -> Label {
        self.push(Insn {
            code: LD_W_ABS,
            jt: 0,
            jf: 0,
            k: off,
        })
    }

    fn and(&mut self, mask: u32) -> Label {
        self.push(Insn {
            code: ALU_AND_K,
            jt: 0,
            jf: 0,
            k: mask,
        })
    }

    /// Code testing one 64-bit argument condition; returns its entry.
    fn cond(&mut self, c: &ArgCond, t: Label, f: Label) -> Label {
        let (hi, lo) = ((c.value >> 32) as u32, c.value as u32);
        let (lo_off, hi_off) = (off_arg_lo(c.index), off_arg_hi(c.index));
        match c.op {
            CmpOp::Eq | CmpOp::Ne => {
                let (t, f) = if c.op == CmpOp::Eq { (t, f) } else { (f, t) };
                self.jump(JMP_JEQ_K, lo, t, f);
                let lo_entry = self.load(lo_off);
                self.jump(JMP_JEQ_K, hi, lo_entry, f);
                self.load(hi_off)
            }
            CmpOp::MaskedEq => {
                let (mhi, mlo) = ((c.value >> 32) as u32, c.value as u32);
                let (vhi, vlo) = ((c.value_two >> 32) as u32, c.value_two as u32);
                self.jump(JMP_JEQ_K, vlo, t, f);
                self.and(mlo);
                let lo_entry = self.load(lo_off);
                self.jump(JMP_JEQ_K, vhi, lo_entry, f);
                self.and(mhi);
                self.load(hi_off)
            }
            CmpOp::Gt | CmpOp::Ge | CmpOp::Lt | CmpOp::Le => {
                // a > v  ⇔ hi > vhi ∨ (hi = vhi ∧ lo > vlo);  a ≤ v is its negation.
                // a ≥ v  ⇔ hi > vhi ∨ (hi = vhi ∧ lo ≥ vlo);  a < v is its negation.
                let (t, f) = match c.op {
                    CmpOp::Gt | CmpOp::Ge => (t, f),
                    _ => (f, t),
                };
                let lo_code = match c.op {
                    CmpOp::Gt | CmpOp::Le => JMP_JGT_K,
                    _ => JMP_JGE_K,
                };
                self.jump(lo_code, lo, t, f);
                let lo_entry = self.load(lo_off);
                let eq = self.jump(JMP_JEQ_K, hi, lo_entry, f);
                self.jump(JMP_JGT_K, hi, t, eq);
                self.load(hi_off)
            }
        }
    }

    /// The checks of one syscall's rules, first match wins, then the default.
    fn rules(&mut self, rules: &[Rule], default: Action) -> Label {
        let mut on_fail = self.ret(default);
        for rule in rules.iter().rev() {
            let on_match = self.ret(rule.action);
            let mut entry = on_match;
            for c in rule.conds.iter().rev() {
                entry = self.cond(c, entry, on_fail);
            }
            on_fail = entry;
        }
        on_fail
    }

    fn leaf(&mut self, leaf: &Leaf<'_>, default: Action) -> Label {
        match leaf {
            Leaf::Ret(a) => self.ret(*a),
            Leaf::Rules(r) => self.rules(r, default),
        }
    }

    /// A search over `ranges` (sorted, the first starting at the lowest number reachable
    /// here); the accumulator holds the syscall number.
    fn tree(&mut self, ranges: &[Range<'_>], default: Action) -> Label {
        match ranges {
            [] => return self.ret(default),
            [only] => return self.leaf(&only.leaf, default),
            _ => {}
        }
        let mid = ranges.len() / 2;
        let right = self.tree(&ranges[mid..], default);
        let left = self.tree(&ranges[..mid], default);
        self.jump(JMP_JGE_K, ranges[mid].lo, right, left)
    }
}

fn add<'a>(out: &mut Vec<Range<'a>>, lo: u64, leaf: Leaf<'a>) {
    let merges = matches!(leaf, Leaf::Ret(_)) && out.last().is_some_and(|r| r.leaf == leaf);
    if !merges {
        out.push(Range {
            lo: lo as u32,
            leaf,
        });
    }
}

/// `[from, to)` holds no rules: the default, and ENOSYS above `enosys_above`.
fn gap(rs: &Ruleset, out: &mut Vec<Range<'_>>, from: u64, to: u64) {
    if from >= to {
        return;
    }
    match rs.enosys_above.map(u64::from) {
        Some(max) if max < from => add(out, from, Leaf::Ret(ENOSYS)),
        Some(max) => {
            add(out, from, Leaf::Ret(rs.default));
            if max + 1 < to {
                add(out, max + 1, Leaf::Ret(ENOSYS));
            }
        }
        None => add(out, from, Leaf::Ret(rs.default)),
    }
}

/// Split the number space into ranges with one leaf each, merging neighbours that agree.
fn ranges(rs: &Ruleset) -> Vec<Range<'_>> {
    let mut out = Vec::new();
    let mut next: u64 = 0;
    for (nr, rules) in rs.iter() {
        gap(rs, &mut out, next, u64::from(nr));
        let leaf = match rules {
            [only] if only.conds.is_empty() => Leaf::Ret(only.action),
            _ => Leaf::Rules(rules),
        };
        add(&mut out, u64::from(nr), leaf);
        next = u64::from(nr) + 1;
    }
    gap(rs, &mut out, next, 1 << 32);
    out
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompileError {
    #[error("foxbox cannot build seccomp filters for this architecture ({0})")]
    UnsupportedArch(&'static str),
    #[error(
        "the seccomp filter needs {len} BPF instructions, more than the kernel's limit of {MAX_INSNS}"
    )]
    TooLong { len: usize },
}

/// Compile a resolved ruleset to a classic BPF program.
pub fn compile(rs: &Ruleset) -> Result<Program, CompileError> {
    let mut e = Emitter {
        rev: Vec::with_capacity(512),
        rets: Vec::new(),
    };
    // Kill is emitted first so that it sits at the end, out of the fall-through path.
    let kill = e.ret(Action::KillProcess);
    let ranges = ranges(rs);
    let tree = e.tree(&ranges, rs.default);
    let after_nr = match rs.arch {
        // x32 calls arrive with the native audit arch and bit 30 set in the number.
        Arch::X86_64 => e.jump(JMP_JGE_K, X32_SYSCALL_BIT, kill, tree),
        Arch::Aarch64 => e.goto(tree),
    };
    e.goto(after_nr);
    let load_nr = e.load(OFF_NR);
    e.jump(JMP_JEQ_K, rs.arch.audit_arch(), load_nr, kill);
    e.load(OFF_ARCH);
    let mut insns = e.rev;
    insns.reverse();
    if insns.len() > MAX_INSNS {
        return Err(CompileError::TooLong { len: insns.len() });
    }
    Ok(Program {
        arch: rs.arch,
        flags: rs.flags,
        insns,
    })
}
