//! The seccomp filter of application threads.
//!
//! Every system call an application thread makes is answered with `SECCOMP_RET_TRAP` (a
//! `SIGSYS` that enters the stub's handler), except exactly these, each allowed only from
//! the one instruction of the handler that makes it (`seccomp_data.instruction_pointer`
//! is the address right after the `syscall` instruction):
//!
//! | after label | system call | arguments allowed |
//! |---|---|---|
//! | `ip_wake` | `futex` | `FUTEX_WAKE` or `FUTEX_WAIT` (shared, no PI, no requeue) |
//! | `ip_wait` | `futex` | same |
//! | `ip_setfs` / `ip_setgs` | `arch_prctl` | `ARCH_SET_FS` / `ARCH_SET_GS` |
//! | `ip_sigreturn` | `rt_sigreturn` | any |
//! | `ip_exit` | `exit` (this thread) | any |
//!
//! An application that jumps to one of these instructions can wake or wait on a futex,
//! set its own FS/GS base, load its own registers from a frame of its choosing, or end
//! its own thread: nothing it could not do to itself anyway, and nothing that reaches the
//! Sentry, another address space or the host's objects. Any other architecture (`int
//! 0x80`, 32-bit `syscall`) traps as well.

use crate::stub::{ARCH_SET_FS, ARCH_SET_GS, Labels, STUB_ADDR};

/// `struct sock_filter`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    /// Opcode.
    pub code: u16,
    /// Jump if true (relative).
    pub jt: u8,
    /// Jump if false (relative).
    pub jf: u8,
    /// Operand.
    pub k: u32,
}

const LD_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const JEQ: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
const RET: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
const TAX: u16 = (libc::BPF_MISC | libc::BPF_TAX) as u16;
const TXA: u16 = (libc::BPF_MISC | libc::BPF_TXA) as u16;
/// `AUDIT_ARCH_X86_64`.
const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
// Offsets in `struct seccomp_data`.
const NR: u32 = 0;
const ARCH: u32 = 4;
const IP_LO: u32 = 8;
const IP_HI: u32 = 12;
const ARG0_LO: u32 = 16;
const ARG1_LO: u32 = 24;

/// A jump target while assembling.
#[derive(Clone, Copy)]
enum L {
    Next,
    Allow,
    Trap,
    Futex,
    Arch,
    Sigreturn,
    Exit,
}

enum Op {
    Ld(u32),
    Tax,
    Txa,
    Jeq(u32, L, L),
    Ret(u32),
    Label(L),
}

/// The filter of application threads, for the stub assembled with `labels`.
pub fn application(labels: &Labels) -> Vec<Insn> {
    use L::*;
    let lo = |off: u64| (STUB_ADDR + off) as u32;
    let prog = [
        Op::Ld(ARCH),
        Op::Jeq(AUDIT_ARCH_X86_64, Next, Trap),
        Op::Ld(IP_HI),
        Op::Jeq((STUB_ADDR >> 32) as u32, Next, Trap),
        Op::Ld(NR),
        Op::Tax,
        Op::Ld(IP_LO),
        Op::Jeq(lo(labels.ip_wake), Futex, Next),
        Op::Jeq(lo(labels.ip_wait), Futex, Next),
        Op::Jeq(lo(labels.ip_setfs), Arch, Next),
        Op::Jeq(lo(labels.ip_setgs), Arch, Next),
        Op::Jeq(lo(labels.ip_sigreturn), Sigreturn, Next),
        Op::Jeq(lo(labels.ip_exit), Exit, Trap),
        Op::Label(Futex),
        Op::Txa,
        Op::Jeq(libc::SYS_futex as u32, Next, Trap),
        Op::Ld(ARG1_LO),
        Op::Jeq(libc::FUTEX_WAIT as u32, Allow, Next),
        Op::Jeq(libc::FUTEX_WAKE as u32, Allow, Trap),
        Op::Label(Arch),
        Op::Txa,
        Op::Jeq(libc::SYS_arch_prctl as u32, Next, Trap),
        Op::Ld(ARG0_LO),
        Op::Jeq(ARCH_SET_FS as u32, Allow, Next),
        Op::Jeq(ARCH_SET_GS as u32, Allow, Trap),
        Op::Label(Sigreturn),
        Op::Txa,
        Op::Jeq(libc::SYS_rt_sigreturn as u32, Allow, Trap),
        Op::Label(Exit),
        Op::Txa,
        Op::Jeq(libc::SYS_exit as u32, Allow, Trap),
        Op::Label(Allow),
        Op::Ret(libc::SECCOMP_RET_ALLOW),
        Op::Label(Trap),
        Op::Ret(libc::SECCOMP_RET_TRAP),
    ];
    assemble(&prog)
}

fn assemble(prog: &[Op]) -> Vec<Insn> {
    // Instruction index of every label.
    let mut at = Vec::new();
    let mut n = 0usize;
    for op in prog {
        match op {
            Op::Label(l) => at.push((*l as u8, n)),
            _ => n += 1,
        }
    }
    let find = |l: L| at.iter().find(|(x, _)| *x == l as u8).map(|&(_, i)| i);
    let mut out = Vec::new();
    for op in prog {
        let pc = out.len();
        let rel = |l: L| -> u8 {
            match l {
                L::Next => 0,
                l => {
                    // Every label is defined and every jump is forward and short: the
                    // tests run the program through an interpreter.
                    let target = find(l).unwrap_or(pc + 1);
                    u8::try_from(target.saturating_sub(pc + 1)).unwrap_or(u8::MAX)
                }
            }
        };
        let insn = |code, jt, jf, k| Insn { code, jt, jf, k };
        match *op {
            Op::Ld(off) => out.push(insn(LD_ABS, 0, 0, off)),
            Op::Tax => out.push(insn(TAX, 0, 0, 0)),
            Op::Txa => out.push(insn(TXA, 0, 0, 0)),
            Op::Jeq(k, t, f) => out.push(insn(JEQ, rel(t), rel(f), k)),
            Op::Ret(k) => out.push(insn(RET, 0, 0, k)),
            Op::Label(_) => {}
        }
    }
    out
}

/// The filter as the bytes of a `struct sock_filter` array.
pub fn encode(prog: &[Insn]) -> Vec<u8> {
    let mut v = Vec::with_capacity(prog.len() * 8);
    for i in prog {
        v.extend_from_slice(&i.code.to_le_bytes());
        v.push(i.jt);
        v.push(i.jf);
        v.extend_from_slice(&i.k.to_le_bytes());
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A BPF interpreter for the subset used here, to check the program's decisions.
    fn run(prog: &[Insn], nr: i32, arch: u32, ip: u64, args: [u64; 6]) -> u32 {
        let mut data = Vec::new();
        data.extend_from_slice(&nr.to_le_bytes());
        data.extend_from_slice(&arch.to_le_bytes());
        data.extend_from_slice(&ip.to_le_bytes());
        for a in args {
            data.extend_from_slice(&a.to_le_bytes());
        }
        let (mut a, mut x, mut pc) = (0u32, 0u32, 0usize);
        loop {
            let i = prog[pc];
            pc += 1;
            match i.code {
                LD_ABS => {
                    let o = i.k as usize;
                    a = u32::from_le_bytes(data[o..o + 4].try_into().unwrap());
                }
                TAX => x = a,
                TXA => a = x,
                JEQ => pc += usize::from(if a == i.k { i.jt } else { i.jf }),
                RET => return i.k,
                c => panic!("opcode {c:#x}"),
            }
        }
    }

    #[test]
    fn only_the_handler_instructions_pass() {
        let l = crate::stub::labels();
        let p = application(&l);
        let ip = |o: u64| STUB_ADDR + o;
        let x86 = AUDIT_ARCH_X86_64;
        let allow = libc::SECCOMP_RET_ALLOW;
        let trap = libc::SECCOMP_RET_TRAP;
        let futex = libc::SYS_futex as i32;
        let wake = [0, libc::FUTEX_WAKE as u64, 0, 0, 0, 0];
        assert_eq!(run(&p, futex, x86, ip(l.ip_wake), wake), allow);
        assert_eq!(run(&p, futex, x86, ip(l.ip_wait), [0; 6]), allow);
        // Other futex operations, other calls at that address, other addresses.
        let requeue = [0, libc::FUTEX_CMP_REQUEUE as u64, 0, 0, 0, 0];
        assert_eq!(run(&p, futex, x86, ip(l.ip_wake), requeue), trap);
        assert_eq!(
            run(&p, libc::SYS_mmap as i32, x86, ip(l.ip_wake), wake),
            trap
        );
        assert_eq!(run(&p, futex, x86, ip(l.ip_wake) + 1, wake), trap);
        assert_eq!(run(&p, futex, x86, 0x40_1000, wake), trap);
        assert_eq!(run(&p, futex, x86, ip(l.ip_wake) - (1 << 32), wake), trap);
        let sigret = libc::SYS_rt_sigreturn as i32;
        assert_eq!(run(&p, sigret, x86, ip(l.ip_sigreturn), [0; 6]), allow);
        assert_eq!(run(&p, sigret, x86, 0x40_1000, [0; 6]), trap);
        let arch = libc::SYS_arch_prctl as i32;
        let set_fs = [ARCH_SET_FS as u64, 0, 0, 0, 0, 0];
        let get_fs = [0x1003u64, 0, 0, 0, 0, 0];
        assert_eq!(run(&p, arch, x86, ip(l.ip_setfs), set_fs), allow);
        assert_eq!(run(&p, arch, x86, ip(l.ip_setfs), get_fs), trap);
        assert_eq!(
            run(&p, libc::SYS_exit as i32, x86, ip(l.ip_exit), [0; 6]),
            allow
        );
        assert_eq!(
            run(&p, libc::SYS_exit_group as i32, x86, ip(l.ip_exit), [0; 6]),
            trap
        );
        // i386 system calls trap wherever they come from.
        assert_eq!(run(&p, futex, 0x4000_0003, ip(l.ip_wake), wake), trap);
        assert_eq!(
            run(&p, libc::SYS_getpid as i32, x86, 0x40_1000, [0; 6]),
            trap
        );
    }
}
