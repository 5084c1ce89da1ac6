//! The legacy vsyscall page: `gettimeofday`, `time` and `getcpu` at fixed addresses
//! (`0xffff_ffff_ff60_0000` + 0, 0x400, 0x800), which old static binaries still call.
//!
//! Nothing is mapped there: a call reaches the Sentry as an instruction fetch fault at
//! that address with the return address on top of the stack (every platform reports it
//! so; see [`platform::VSYSCALL_BASE`]). As Linux's `emulate_vsyscall` (vsyscall=xonly),
//! the Sentry then performs the call and emulates the `ret`:
//! - an address in the page that is not one of the three entries, or a stack whose top
//!   cannot be read, gives `SIGSEGV` (`SI_KERNEL`);
//! - an output pointer outside user space gives `SIGSEGV`/`SEGV_MAPERR` at that pointer,
//!   one that faults during the call gives `SIGSEGV` (`SI_KERNEL`); the `ret` is not
//!   emulated then (the handler sees the vsyscall address as the instruction pointer);
//! - otherwise `rax` holds the result, `rip` the return address, and `rsp` is 8 higher.
//!
//! Reads of the page fault like any unmapped address (Linux's execute-only mode).

use linux_abi::Errno;
use linux_abi::signal::{SEGV_MAPERR, SI_KERNEL, SIGSEGV, SigInfo};
use linux_abi::sysno::{SYS_GETCPU, SYS_GETTIMEOFDAY, SYS_TIME};
use platform::{AccessType, VSYSCALL_BASE};

use super::task::Task;

/// The end of the user address range as Linux's `access_ok` sees it (`TASK_SIZE_MAX`).
const TASK_SIZE_MAX: u64 = 0x7fff_ffff_f000;

/// Whether a fault is a call into the vsyscall page: an instruction fetch (or a fault of
/// unknown kind) at the faulting instruction's own address, inside the page.
pub(crate) fn is_call(addr: u64, access: AccessType, ip: u64) -> bool {
    addr & !0xfff == VSYSCALL_BASE && ip == addr && (access.execute || access.is_unknown())
}

/// The system call and the sizes of its output pointers (first and second argument) of
/// the entry at `addr`, or `None` for an address that is not an entry.
fn entry(addr: u64) -> Option<(u64, [u64; 2])> {
    match addr - VSYSCALL_BASE {
        // struct timeval, struct timezone
        0x000 => Some((SYS_GETTIMEOFDAY, [16, 8])),
        // time_t
        0x400 => Some((SYS_TIME, [8, 0])),
        // unsigned cpu, unsigned node
        0x800 => Some((SYS_GETCPU, [4, 4])),
        _ => None,
    }
}

/// `access_ok`: the range lies in user space (a null pointer is fine: nothing is written).
fn access_ok(ptr: u64, len: u64) -> bool {
    ptr.checked_add(len).is_some_and(|end| end <= TASK_SIZE_MAX)
}

/// Performs the vsyscall the task just called (see [`is_call`]) and returns to its caller,
/// or forces the signal Linux gives.
pub(crate) fn emulate(t: &Task, addr: u64) {
    let Some((nr, sizes)) = entry(addr) else {
        tracing::debug!(
            tid = t.tid(),
            addr = format_args!("{addr:#x}"),
            "misaligned vsyscall"
        );
        t.force_signal(SigInfo::new(SIGSEGV, SI_KERNEL));
        return;
    };
    let (rsp, args) = {
        let r = t.regs();
        (r.gp.rsp, r.gp.syscall_args())
    };
    let Ok(caller) = t.mm().read_obj::<u64>(rsp) else {
        tracing::debug!(tid = t.tid(), "vsyscall with a bad stack");
        t.force_signal(SigInfo::new(SIGSEGV, SI_KERNEL));
        return;
    };
    for (ptr, len) in args.iter().zip(sizes) {
        if len != 0 && !access_ok(*ptr, len) {
            t.force_signal(SigInfo::fault(SIGSEGV, SEGV_MAPERR, *ptr));
            return;
        }
    }
    let ret = crate::syscalls::dispatch(t, nr, args);
    if Errno::from_return(ret) == Some(Errno::EFAULT) {
        tracing::debug!(tid = t.tid(), "vsyscall fault");
        t.force_signal(SigInfo::new(SIGSEGV, SI_KERNEL));
        return;
    }
    let mut r = t.regs();
    r.gp.rax = ret;
    r.gp.rip = caller;
    r.gp.rsp = rsp.wrapping_add(8);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_fetches_at_the_page_are_calls() {
        let exec = AccessType {
            execute: true,
            ..AccessType::UNKNOWN
        };
        let read = AccessType {
            read: true,
            ..AccessType::UNKNOWN
        };
        assert!(is_call(VSYSCALL_BASE, exec, VSYSCALL_BASE));
        assert!(is_call(
            VSYSCALL_BASE + 0x400,
            AccessType::UNKNOWN,
            VSYSCALL_BASE + 0x400
        ));
        assert!(
            !is_call(VSYSCALL_BASE, read, 0x40_0000),
            "a read of the page"
        );
        assert!(!is_call(
            VSYSCALL_BASE - 0x1000,
            exec,
            VSYSCALL_BASE - 0x1000
        ));
        assert!(!is_call(
            VSYSCALL_BASE + 0x1000,
            exec,
            VSYSCALL_BASE + 0x1000
        ));
    }

    #[test]
    fn three_entries() {
        assert_eq!(entry(VSYSCALL_BASE).map(|e| e.0), Some(SYS_GETTIMEOFDAY));
        assert_eq!(entry(VSYSCALL_BASE + 0x400).map(|e| e.0), Some(SYS_TIME));
        assert_eq!(entry(VSYSCALL_BASE + 0x800).map(|e| e.0), Some(SYS_GETCPU));
        assert_eq!(entry(VSYSCALL_BASE + 1), None);
        assert_eq!(entry(VSYSCALL_BASE + 0xc00), None);
    }
}
