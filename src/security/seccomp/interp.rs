//! An interpreter for the classic BPF that [`super::bpf`] emits, run against a
//! `struct seccomp_data`. Tests use it to check a program against the [`super::Ruleset`] it
//! came from for many calls; `foxbox` can use it to explain what a filter does with a call.

use super::bpf::{Insn, ALU_AND_K, JMP_JA, JMP_JEQ_K, JMP_JGE_K, JMP_JGT_K, LD_W_ABS, RET_K};

/// The input of a seccomp filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeccompData {
    pub nr: u32,
    pub arch: u32,
    pub ip: u64,
    pub args: [u64; 6],
}

impl SeccompData {
    /// The struct's bytes in little-endian order (the architectures foxbox filters).
    fn word(&self, off: u32) -> Option<u32> {
        Some(match off {
            0 => self.nr,
            4 => self.arch,
            8 => self.ip as u32,
            12 => (self.ip >> 32) as u32,
            16..=60 if off.is_multiple_of(4) => {
                let i = ((off - 16) / 8) as usize;
                let a = self.args[i];
                if off.is_multiple_of(8) {
                    a as u32
                } else {
                    (a >> 32) as u32
                }
            }
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InterpError {
    #[error("instruction {pc}: unsupported opcode {code:#x}")]
    Opcode { pc: usize, code: u16 },
    #[error("instruction {pc}: load from offset {off} outside seccomp_data")]
    Load { pc: usize, off: u32 },
    #[error("instruction {pc}: jump out of the program")]
    Jump { pc: usize },
    #[error("the program ends without returning")]
    FellOff,
}

/// Run `prog` on `data` and return the filter's return value.
pub fn run(prog: &[Insn], data: &SeccompData) -> Result<u32, InterpError> {
    let mut acc: u32 = 0;
    let mut pc = 0usize;
    // Every jump goes forward, so the loop ends within prog.len() steps.
    while let Some(insn) = prog.get(pc) {
        let next = pc + 1;
        let target = |off: usize| -> Result<usize, InterpError> {
            let t = next + off;
            if t < prog.len() {
                Ok(t)
            } else {
                Err(InterpError::Jump { pc })
            }
        };
        pc = match insn.code {
            LD_W_ABS => {
                acc = data
                    .word(insn.k)
                    .ok_or(InterpError::Load { pc, off: insn.k })?;
                next
            }
            ALU_AND_K => {
                acc &= insn.k;
                next
            }
            JMP_JA => target(insn.k as usize)?,
            JMP_JEQ_K | JMP_JGT_K | JMP_JGE_K => {
                let taken = match insn.code {
                    JMP_JEQ_K => acc == insn.k,
                    JMP_JGT_K => acc > insn.k,
                    _ => acc >= insn.k,
                };
                target(usize::from(if taken { insn.jt } else { insn.jf }))?
            }
            RET_K => return Ok(insn.k),
            code => return Err(InterpError::Opcode { pc, code }),
        };
    }
    Err(InterpError::FellOff)
}
