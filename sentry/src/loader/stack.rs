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
    if crate::host::fill_random(&mut b).is_err() {
        tracing::warn!("host getrandom failed; AT_RANDOM uses a time-derived value");
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        b.copy_from_slice(&t.to_le_bytes());
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mm::testutil::new_mm;

    #[test]
    fn stack_parses_back_like_libc_reads_it() {
        let (mm, _) = new_mm();
        let argv = vec![b"/bin/prog".to_vec(), b"-v".to_vec()];
        let envp = vec![b"HOME=/root".to_vec()];
        let input = AuxvInput {
            phdr: 0x400040,
            phnum: 9,
            base: 0,
            entry: 0x401000,
            uid: 5,
            euid: 6,
            gid: 7,
            egid: 8,
        };
        let l = build_stack(&mm, &argv, &envp, b"/bin/prog", &input).unwrap();
        assert_eq!(l.sp % 16, 0, "16-byte aligned at entry");
        let word = |i: u64| mm.read_obj::<u64>(l.sp + 8 * i).unwrap();
        let string = |p: u64| mm.read_c_string(p, 4096).unwrap();
        assert_eq!(word(0), 2, "argc");
        assert_eq!(string(word(1)), b"/bin/prog");
        assert_eq!(string(word(2)), b"-v");
        assert_eq!(word(3), 0);
        assert_eq!(string(word(4)), b"HOME=/root");
        assert_eq!(word(5), 0);
        let mut aux = std::collections::BTreeMap::new();
        let mut i = 6;
        loop {
            let (k, v) = (word(i), word(i + 1));
            if k == AT_NULL {
                break;
            }
            aux.insert(k, v);
            i += 2;
        }
        assert_eq!(aux[&AT_PHDR], 0x400040);
        assert_eq!(aux[&AT_PHNUM], 9);
        assert_eq!(aux[&AT_PHENT], 56);
        assert_eq!(aux[&AT_ENTRY], 0x401000);
        assert_eq!(aux[&AT_PAGESZ], 4096);
        assert_eq!(
            (aux[&AT_UID], aux[&AT_EUID], aux[&AT_GID], aux[&AT_EGID]),
            (5, 6, 7, 8)
        );
        assert_eq!(aux[&AT_SECURE], 0);
        assert_eq!(aux[&AT_CLKTCK], 100);
        assert_eq!(string(aux[&AT_PLATFORM]), b"x86_64");
        assert_eq!(string(aux[&AT_EXECFN]), b"/bin/prog");
        let mut rnd = [0u8; 16];
        mm.copy_in(aux[&AT_RANDOM], &mut rnd).unwrap();
        assert_ne!(rnd, [0u8; 16]);
        assert!(!aux.contains_key(&AT_SYSINFO_EHDR));
        assert_eq!(l.auxv.len(), aux.len() + 1);
        assert!(l.arg_start < l.arg_end && l.env_start < l.env_end);
    }

    #[test]
    fn huge_arguments_are_e2big() {
        let (mm, _) = new_mm();
        let big = vec![
            vec![b'a'; 1 << 20],
            vec![b'b'; 1 << 20],
            vec![b'c'; 1 << 20],
        ];
        let r = build_stack(&mm, &big, &[], b"x", &AuxvInput::default());
        assert_eq!(r, Err(Errno::E2BIG));
    }
}
