//! The stub code page: the only memory a stub process has besides the application's.
//!
//! Layout (offsets from [`STUB_ADDR`]):
//!
//! - [`SYSCALL_OFFSET`]: `syscall; int3`. Injected system calls set `rip` here and resume
//!   with `PTRACE_CONT`; the `int3` right after the call stops the thread again with
//!   `SIGTRAP`, so one injected call costs one stop.
//! - [`PARK_OFFSET`]: `pause()` in a loop. The leader thread of every stub process waits
//!   here, *untraced*, until a tracer seizes it to clone a new stub thread (or, for the
//!   master stub, to fork a new stub process). Its code uses no memory at all.
//! - [`SETUP_OFFSET`]: run once by the master stub right after it was forked from the
//!   Sentry: unmaps everything below the stub page, reports readiness on fd
//!   [`READY_FD`], closes it and parks.
//!
//! The code is assembled into the Sentry's read-only data (never executed there) and
//! copied into a fresh page at [`STUB_ADDR`] by the forked child.

/// Address of the stub code page: the last page below the x86-64 user address limit.
pub const STUB_ADDR: u64 = 0x7fff_ffff_e000;
/// Page size.
pub const PAGE: u64 = 4096;
/// Offset of `syscall; int3`.
pub const SYSCALL_OFFSET: u64 = 0;
/// `rip` after an injected syscall stopped at the `int3`.
pub const SYSCALL_DONE_RIP: u64 = STUB_ADDR + SYSCALL_OFFSET + 3;
/// Offset of the `pause` loop.
pub const PARK_OFFSET: u64 = 0x10;
/// Offset of the one-time setup code of the master stub.
pub const SETUP_OFFSET: u64 = 0x20;
/// The fd number at which every stub process holds the memory file.
pub const MEMFD_SLOT: i32 = 3;
/// The fd number of the readiness pipe during master setup.
pub const READY_FD: i32 = 4;

std::arch::global_asm!(
    ".pushsection .rodata.rsentry_ptrace_stub,\"a\"",
    ".balign 16",
    ".globl rsentry_ptrace_stub_start",
    "rsentry_ptrace_stub_start:",
    // SYSCALL_OFFSET
    "syscall",
    "int3",
    ".balign 16, 0xcc",
    // PARK_OFFSET
    "rsentry_ptrace_stub_park:",
    "mov eax, {sys_pause}",
    "syscall",
    "jmp rsentry_ptrace_stub_park",
    ".balign 16, 0xcc",
    // SETUP_OFFSET
    "rsentry_ptrace_stub_setup:",
    "mov eax, {sys_munmap}",
    "xor edi, edi",
    "movabs rsi, {stub_addr}",
    "syscall",
    "test rax, rax",
    "jnz rsentry_ptrace_stub_fail",
    "mov eax, {sys_write}",
    "mov edi, {ready_fd}",
    "movabs rsi, {stub_addr}",
    "mov edx, 1",
    "syscall",
    "mov eax, {sys_close}",
    "mov edi, {ready_fd}",
    "syscall",
    "jmp rsentry_ptrace_stub_park",
    "rsentry_ptrace_stub_fail:",
    "mov eax, {sys_exit_group}",
    "mov edi, 2",
    "syscall",
    "ud2",
    ".globl rsentry_ptrace_stub_end",
    "rsentry_ptrace_stub_end:",
    ".popsection",
    sys_pause = const libc::SYS_pause,
    sys_munmap = const libc::SYS_munmap,
    sys_write = const libc::SYS_write,
    sys_close = const libc::SYS_close,
    sys_exit_group = const libc::SYS_exit_group,
    stub_addr = const STUB_ADDR,
    ready_fd = const READY_FD,
);

unsafe extern "C" {
    static rsentry_ptrace_stub_start: u8;
    static rsentry_ptrace_stub_park: u8;
    static rsentry_ptrace_stub_setup: u8;
    static rsentry_ptrace_stub_end: u8;
}

/// The stub code bytes, to be copied to [`STUB_ADDR`].
pub fn code() -> &'static [u8] {
    let start = &raw const rsentry_ptrace_stub_start;
    let end = &raw const rsentry_ptrace_stub_end;
    let len = end as usize - start as usize;
    // SAFETY: both symbols delimit one contiguous block of assembled bytes in a read-only,
    // allocated section of this binary that lives for the whole program.
    unsafe { std::slice::from_raw_parts(start, len) }
}

/// Checks that the assembled layout matches the offsets the platform relies on.
pub fn layout_ok() -> bool {
    let start = &raw const rsentry_ptrace_stub_start as usize;
    let park = &raw const rsentry_ptrace_stub_park as usize;
    let setup = &raw const rsentry_ptrace_stub_setup as usize;
    park - start == PARK_OFFSET as usize
        && setup - start == SETUP_OFFSET as usize
        && code().len() <= PAGE as usize
        && code()[..3] == [0x0f, 0x05, 0xcc]
}

#[cfg(test)]
mod tests {
    #[test]
    fn layout() {
        assert!(super::layout_ok());
    }
}
