//! The initial process stack: strings, `argc`, `argv`, `envp` and the auxiliary vector.
//!
//! Layout (addresses growing upwards from the final stack pointer):
//!
//! ```text
//! sp -> argc
//!       argv[0..argc], NULL
//!       envp[..], NULL
//!       auxv (key, value) pairs, AT_NULL
//!       padding, 16 AT_RANDOM bytes, "x86_64", argument and environment strings, execfn
//! ```
//!
//! `sp` is 16-byte aligned as the x86-64 ABI requires at process entry.

use linux_abi::Errno;
use linux_abi::flags::mm::{PROT_READ, PROT_WRITE};
use linux_abi::types::auxv::*;
use zerocopy::IntoBytes;

use crate::mm::{Backing, MemoryManager, PAGE, STACK_SIZE};

/// The most bytes of arguments plus environment (a quarter of the stack, like Linux).
pub const MAX_ARG_BYTES: usize = (STACK_SIZE / 4) as usize;

/// Values for the auxiliary vector that come from the loaded images and credentials.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AuxvInput {
    /// `AT_PHDR`.
    pub phdr: u64,
    /// `AT_PHNUM`.
    pub phnum: u64,
    /// `AT_BASE` (interpreter bias, 0 without one).
    pub base: u64,
    /// `AT_ENTRY` (the main program's entry).
    pub entry: u64,
    /// `AT_UID`.
    pub uid: u32,
    /// `AT_EUID`.
    pub euid: u32,
    /// `AT_GID`.
    pub gid: u32,
    /// `AT_EGID`.
    pub egid: u32,
}

/// Where the pieces of the initial stack ended up.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StackLayout {
    /// The initial stack pointer (address of `argc`).
    pub sp: u64,
    /// Start of the `argv` strings.
    pub arg_start: u64,
    /// End of the `argv` strings.
    pub arg_end: u64,
    /// Start of the `envp` strings.
    pub env_start: u64,
    /// End of the `envp` strings.
    pub env_end: u64,
    /// The auxiliary vector as written.
    pub auxv: Vec<(u64, u64)>,
}

/// `AT_HWCAP` for x86-64: CPUID leaf 1 EDX, as Linux reports it.
pub fn cpu_hwcap() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        u64::from(core::arch::x86_64::__cpuid(1).edx)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        0
    }
}

fn random_bytes() -> [u8; 16] {
    let mut b = [0u8; 16];
    let mut done = 0;
    while done < b.len() {
        // SAFETY: getrandom writes at most `len` bytes into the valid buffer tail.
        let n = unsafe { libc::getrandom(b[done..].as_mut_ptr().cast(), b.len() - done, 0) };
        if n <= 0 {
            tracing::warn!("host getrandom failed; AT_RANDOM uses a time-derived value");
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            b.copy_from_slice(&t.to_le_bytes());
            return b;
        }
        done += n as usize;
    }
    b
}

/// Maps the stack VMA below `mm.stack_top()` and writes the initial stack for `argv`,
/// `envp` and `execfn`.
pub fn build_stack(
    mm: &MemoryManager,
    argv: &[Vec<u8>],
    envp: &[Vec<u8>],
    execfn: &[u8],
    input: &AuxvInput,
) -> Result<StackLayout, Errno> {
    let total: usize = argv
        .iter()
        .chain(envp)
        .map(|s| s.len() + 1 + 8)
        .sum::<usize>()
        + execfn.len();
    if total > MAX_ARG_BYTES {
        return Err(Errno::E2BIG);
    }
    let top = mm.stack_top();
    let bottom = top - STACK_SIZE;
    mm.map_fixed(
        bottom,
        STACK_SIZE,
        PROT_READ | PROT_WRITE,
        false,
        Backing::Anonymous,
        Some("[stack]"),
    )?;

    let mut sp = top;
    let mut push = |bytes: &[u8], align: bool| -> Result<u64, Errno> {
        sp -= bytes.len() as u64;
        if align {
            sp &= !15;
        }
        mm.copy_out(sp, bytes)?;
        Ok(sp)
    };
    // A NUL word at the very top, then execfn.
    push(&[0u8; 8], false)?;
    let execfn_addr = push(&[execfn, b"\0"].concat(), false)?;
    let env_end = execfn_addr;
    let mut env_ptrs = Vec::with_capacity(envp.len());
    for e in envp.iter().rev() {
        env_ptrs.push(push(&[e.as_slice(), b"\0"].concat(), false)?);
    }
    env_ptrs.reverse();
    let env_start = env_ptrs.first().copied().unwrap_or(env_end);
    let arg_end = env_start;
    let mut arg_ptrs = Vec::with_capacity(argv.len());
    for a in argv.iter().rev() {
        arg_ptrs.push(push(&[a.as_slice(), b"\0"].concat(), false)?);
    }
    arg_ptrs.reverse();
    let arg_start = arg_ptrs.first().copied().unwrap_or(arg_end);
    let platform_addr = push(b"x86_64\0", false)?;
    let random_addr = push(&random_bytes(), true)?;

    let minsigstksz = (platform::fpu_state_size() as u64 + 1024).max(2048);
    let auxv: Vec<(u64, u64)> = vec![
        (AT_HWCAP, cpu_hwcap()),
        (AT_PAGESZ, PAGE),
        (AT_CLKTCK, 100),
        (AT_PHDR, input.phdr),
        (AT_PHENT, 56),
        (AT_PHNUM, input.phnum),
        (AT_BASE, input.base),
        (AT_FLAGS, 0),
        (AT_ENTRY, input.entry),
        (AT_UID, u64::from(input.uid)),
        (AT_EUID, u64::from(input.euid)),
        (AT_GID, u64::from(input.gid)),
        (AT_EGID, u64::from(input.egid)),
        (AT_SECURE, 0),
        (AT_RANDOM, random_addr),
        (AT_HWCAP2, 0),
        (AT_EXECFN, execfn_addr),
        (AT_PLATFORM, platform_addr),
        (AT_MINSIGSTKSZ, minsigstksz),
        (AT_NULL, 0),
    ];
    let mut words: Vec<u64> = Vec::with_capacity(3 + argv.len() + envp.len() + 2 * auxv.len());
    words.push(argv.len() as u64);
    words.extend(&arg_ptrs);
    words.push(0);
    words.extend(&env_ptrs);
    words.push(0);
    for (k, v) in &auxv {
        words.push(*k);
        words.push(*v);
    }
    let mut sp = random_addr & !15;
    if words.len() % 2 == 1 {
        sp -= 8;
    }
    sp -= (words.len() * 8) as u64;
    mm.copy_out(sp, words.as_bytes())?;
    Ok(StackLayout {
        sp,
        arg_start,
        arg_end,
        env_start,
        env_end,
        auxv,
    })
}
