//! The stub: the fixed layout of a stub process's address space and the code that runs
//! in it.
//!
//! # Address space of a stub process
//!
//! ```text
//! 0x7fff_ffff_e000  STUB_ADDR      code page (read + execute), built by `page_image`
//! 0x7fff_ffff_d000  MASTER_CTL     the master's control page (master only, read-write)
//! 0x7fff_ffff_c000  AS_CTL         this address space's control page (READ ONLY)
//! 0x7ffe_0000_0000  REGION_BASE    one 64 KiB region per stub thread (read-write):
//!                                  a state page, then the alternate signal stack
//! below REGION_BASE                the application
//! ```
//!
//! Every page but the code page is a `MAP_SHARED` view of the memory file, which the Sentry
//! reads and writes through its own mapping.
//!
//! # The code page
//!
//! Everything is position-independent assembly (Intel syntax), assembled into the Sentry's
//! read-only data and copied to [`STUB_ADDR`]; it uses no memory but the pages above. The
//! pieces, in the order they run:
//!
//! - `setup` (entered once by the freshly forked master, `r12` = file offset of the
//!   master's control page): unmaps everything below the code page, maps `MASTER_CTL`,
//!   reports readiness by writing one byte to fd [`READY_FD`], closes it and falls into
//! - `master`: waits (futex) for a request in `MASTER_CTL`, makes a pipe (fds 0 and 1,
//!   the lowest free ones), forks, writes the child's pid (or `-errno`) back and wakes the
//!   Sentry. The child starts at
//! - `child`: `PR_SET_PDEATHSIG`, unmaps `MASTER_CTL`, maps its own control page read-only
//!   at `AS_CTL`, installs the signal handler for every trap signal, writes one byte to
//!   fd 1 (ready) and becomes the **executor**:
//! - `executor`: waits (futex) for a request in `AS_CTL`, carries out `mmap` (always
//!   `MAP_SHARED | MAP_FIXED` of the memory file at fd [`MEMFD_SLOT`]), `munmap`,
//!   `mprotect` or the `clone` of a new stub thread, and reports 1 byte (success) or 2
//!   bytes (failure) on fd 1. All its arguments come from the read-only control page,
//!   which the application cannot change, and its result travels through a pipe, which the
//!   application cannot write: application threads can make no `write` system call.
//! - `thread`: a new stub thread: sets its alternate signal stack to its region, pins
//!   itself to a CPU when asked, unblocks every signal, installs the application filter
//!   (see [`crate::filter`]) and makes its first trapped system call, which enters
//! - `handler`: the handler of `SIGSYS`, `SIGSEGV`, `SIGBUS`, `SIGFPE`, `SIGILL`,
//!   `SIGTRAP` and the interrupt signal, on the alternate stack with every signal blocked.
//!   It records where the kernel's signal frame is, sets the state word to `TRAPPED`,
//!   wakes the Sentry if it sleeps, waits until the state word says `RUN` (spinning
//!   `spin` times first, then marking itself `WAITING` and sleeping on the futex), sets FS/GS base if asked (`arch_prctl`), or exits the thread if asked, and
//!   returns to the application with `rt_sigreturn` from the frame the Sentry rewrote.

/// Address of the stub code page: the last page below the x86-64 user address limit.
pub const STUB_ADDR: u64 = 0x7fff_ffff_e000;
/// The master's control page.
pub const MASTER_CTL: u64 = 0x7fff_ffff_d000;
/// An address space's control page (read-only in the stub).
pub const AS_CTL: u64 = 0x7fff_ffff_c000;
/// First stub-thread region; also one past the highest application address.
pub const REGION_BASE: u64 = 0x7ffe_0000_0000;
/// Size and alignment of a stub-thread region.
pub const REGION_SIZE: u64 = 0x1_0000;
/// Number of stub-thread regions an address space can have.
pub const MAX_REGIONS: u64 = (0x7fff_0000_0000 - REGION_BASE) / REGION_SIZE;
/// Offset of the alternate signal stack in a region (it runs to the region's end).
pub const ALTSTACK_OFFSET: u64 = 0x1000;
/// Page size.
pub const PAGE: u64 = 4096;
/// The fd number at which every stub process holds the memory file.
pub const MEMFD_SLOT: i32 = 3;
/// The fd number of the master's readiness pipe during its setup.
pub const READY_FD: i32 = 4;
/// The fd of a stub process's result pipe (read end; the Sentry takes a copy).
pub const RESULT_READ_FD: i32 = 0;

// State page of a region (offsets).
/// `u32` state word: 0 (not started), [`STATE_TRAPPED`] or [`STATE_RUN`], each possibly
/// with [`STATE_WAITING`].
pub const ST_STATE: u64 = 0;
/// `u32` thread id, written by the kernel (`CLONE_CHILD_SETTID`) and cleared with a
/// futex wake when the thread exits (`CLONE_CHILD_CLEARTID`).
pub const ST_TID: u64 = 4;
/// `u64` the handler's stack pointer at entry: the address of the signal frame.
pub const ST_FRAME: u64 = 8;
/// `u64` commands for the handler before it returns ([`CMD_SET_FS`], ...).
pub const ST_CMD: u64 = 24;
/// `u64` FS base for [`CMD_SET_FS`].
pub const ST_FS: u64 = 32;
/// `u64` GS base for [`CMD_SET_GS`].
pub const ST_GS: u64 = 40;
/// `u64` how many times the handler polls the state word before it sleeps.
pub const ST_SPIN: u64 = 48;
/// `u64` non-zero: the thread pins itself to the CPU set at [`ST_CPUSET`] at birth.
pub const ST_PIN: u64 = 56;
/// `stack_t` of the alternate signal stack (filled by the thread itself).
pub const ST_ALTSTACK: u64 = 64;
/// An empty signal set (8 bytes of zero).
pub const ST_EMPTYSET: u64 = 96;
/// CPU set of [`CPUSET_BYTES`] bytes for the initial pinning.
pub const ST_CPUSET: u64 = 128;
/// Size of the CPU set at [`ST_CPUSET`].
pub const CPUSET_BYTES: u64 = 128;

// A fresh region's state word is 0: the thread has not trapped yet.
/// The thread sits in its handler; the Sentry owns the signal frame.
pub const STATE_TRAPPED: u32 = 1;
/// The Sentry let the thread return to the application.
pub const STATE_RUN: u32 = 2;
/// Flag on the state word: the side waiting for the next state (the stub thread in
/// `TRAPPED`, the Sentry otherwise) sleeps on the futex and needs a `FUTEX_WAKE`.
/// Whoever changes the state swaps the word and wakes only when this flag was set, so a
/// hand-off to a side that has not gone to sleep yet costs no system call.
pub const STATE_WAITING: u32 = 0x100;

/// Handler command: `arch_prctl(ARCH_SET_FS, [ST_FS])` before returning.
pub const CMD_SET_FS: u64 = 1;
/// Handler command: `arch_prctl(ARCH_SET_GS, [ST_GS])` before returning.
pub const CMD_SET_GS: u64 = 2;
/// Handler command: exit the thread instead of returning.
pub const CMD_EXIT: u64 = 4;

// Master control page (offsets).
/// `u32` request sequence (Sentry increments).
pub const M_REQ: u64 = 0;
/// `u32` response sequence (master copies the request's).
pub const M_RESP: u64 = 4;
/// `u64` memory-file offset of the new stub's control page.
pub const M_CTL_OFF: u64 = 8;
/// `i64` the new stub's pid, or `-errno`.
pub const M_RESULT: u64 = 16;

// Address-space control page (offsets).
/// `u32` request sequence (Sentry increments).
pub const C_REQ: u64 = 0;
/// `u64` the operation ([`OP_MMAP`], ...).
pub const C_OP: u64 = 8;
/// `u64 [4]` the arguments.
pub const C_ARGS: u64 = 16;

/// `mmap(addr, len, prot, MAP_SHARED | MAP_FIXED, MEMFD_SLOT, off)`.
pub const OP_MMAP: u64 = 1;
/// `munmap(addr, len)`.
pub const OP_MUNMAP: u64 = 2;
/// `mprotect(addr, len, prot)`.
pub const OP_MPROTECT: u64 = 3;
/// Clone a stub thread whose region starts at `args[0]`.
pub const OP_CLONE: u64 = 4;

// Where the non-code data lives in the code page (written by `page_image`).
/// The application thread's seccomp filter (BPF instructions).
pub const PAGE_FILTER: u64 = 0xa00;
/// `struct sock_fprog` pointing at [`PAGE_FILTER`].
pub const PAGE_FPROG: u64 = 0x9e0;
/// `struct kernel_sigaction` of the trap handler.
pub const PAGE_SIGACTION: u64 = 0x9c0;
/// Limit of the code proper.
pub const CODE_LIMIT: u64 = 0x9c0;

/// `clone` flags of a stub thread.
pub const THREAD_FLAGS: u64 = (libc::CLONE_VM
    | libc::CLONE_FS
    | libc::CLONE_FILES
    | libc::CLONE_SIGHAND
    | libc::CLONE_THREAD
    | libc::CLONE_SYSVSEM
    | libc::CLONE_CHILD_SETTID
    | libc::CLONE_CHILD_CLEARTID) as u64;

/// `arch_prctl` code that sets the FS base.
pub const ARCH_SET_FS: i32 = 0x1002;
/// `arch_prctl` code that sets the GS base.
pub const ARCH_SET_GS: i32 = 0x1001;
/// `SA_RESTORER` (x86-64 requires it for `SA_SIGINFO` handlers).
pub const SA_RESTORER: i32 = 0x0400_0000;

/// The host signal `Context::interrupt` sends to a running stub thread.
pub const INTERRUPT_SIGNAL: i32 = libc::SIGURG;

std::arch::global_asm!(
    ".pushsection .rodata.rsentry_systrap_stub,\"a\"",
    ".balign 16",
    ".globl rsentry_systrap_start",
    "rsentry_systrap_start:",
    ".Lsystrap_base:",
    // ---- setup: r12 = file offset of the master control page.
    ".globl rsentry_systrap_setup",
    "rsentry_systrap_setup:",
    "mov eax, {sys_munmap}",
    "xor edi, edi",
    "movabs rsi, {stub_addr}",
    "syscall",
    "test rax, rax",
    "jnz 90f",
    "mov eax, {sys_mmap}",
    "movabs rdi, {master_ctl}",
    "mov esi, {page}",
    "mov edx, {prot_rw}",
    "mov r10d, {map_shared_fixed}",
    "mov r8d, {memfd}",
    "mov r9, r12",
    "syscall",
    "movabs rdi, {master_ctl}",
    "cmp rax, rdi",
    "jne 90f",
    "mov eax, {sys_write}",
    "mov edi, {ready_fd}",
    "movabs rsi, {stub_addr}",
    "mov edx, 1",
    "syscall",
    "mov eax, {sys_close}",
    "mov edi, {ready_fd}",
    "syscall",
    "xor r12d, r12d",
    // ---- master loop: r12d = last request served, rbx = MASTER_CTL.
    "10:",
    "movabs rbx, {master_ctl}",
    "mov eax, dword ptr [rbx + {m_req}]",
    "cmp eax, r12d",
    "jne 11f",
    "mov eax, {sys_futex}",
    "mov rdi, rbx",
    "mov esi, {futex_wait}",
    "mov edx, r12d",
    "xor r10d, r10d",
    "syscall",
    "jmp 10b",
    "11:",
    "mov r12d, eax",
    "mov r13, qword ptr [rbx + {m_ctl_off}]",
    // Result pipe: fds 0 (read) and 1 (write), the lowest free ones.
    "mov eax, {sys_pipe2}",
    "lea rdi, [rbx + {m_result}]",
    "xor esi, esi",
    "syscall",
    "test rax, rax",
    "jnz 13f",
    "mov eax, {sys_clone}",
    "mov edi, {sigchld}",
    "xor esi, esi",
    "xor edx, edx",
    "xor r10d, r10d",
    "xor r8d, r8d",
    "syscall",
    "test rax, rax",
    "jz 20f",
    "mov r14, rax",
    "mov eax, {sys_close}",
    "xor edi, edi",
    "syscall",
    "mov eax, {sys_close}",
    "mov edi, 1",
    "syscall",
    "mov rax, r14",
    "13:",
    "mov qword ptr [rbx + {m_result}], rax",
    "mov dword ptr [rbx + {m_resp}], r12d",
    "mov eax, {sys_futex}",
    "lea rdi, [rbx + {m_resp}]",
    "mov esi, {futex_wake}",
    "mov edx, 1",
    "syscall",
    "jmp 10b",
    // ---- child: a new stub process; r13 = file offset of its control page.
    "20:",
    "mov eax, {sys_prctl}",
    "mov edi, {pr_set_pdeathsig}",
    "mov esi, {sigkill}",
    "syscall",
    "mov eax, {sys_munmap}",
    "movabs rdi, {master_ctl}",
    "mov esi, {page}",
    "syscall",
    "mov eax, {sys_mmap}",
    "movabs rdi, {as_ctl}",
    "mov esi, {page}",
    "mov edx, {prot_read}",
    "mov r10d, {map_shared_fixed}",
    "mov r8d, {memfd}",
    "mov r9, r13",
    "syscall",
    "movabs rdi, {as_ctl}",
    "cmp rax, rdi",
    "jne 90f",
    // The handler for every trap signal (sigaction struct in the code page).
    "lea r15, [rip + .Lsystrap_base + {page_sigaction}]",
    "lea r14, [rip + .Lsystrap_sigs]",
    "30:",
    "movzx edi, byte ptr [r14]",
    "test edi, edi",
    "jz 31f",
    "mov eax, {sys_rt_sigaction}",
    "mov rsi, r15",
    "xor edx, edx",
    "mov r10d, 8",
    "syscall",
    "test rax, rax",
    "jnz 90f",
    "inc r14",
    "jmp 30b",
    ".Lsystrap_sigs:",
    ".byte {sigsys}, {sigsegv}, {sigbus}, {sigfpe}, {sigill}, {sigtrap}, {sigint}, 0",
    "31:",
    "xor r12d, r12d",
    "mov r13d, 1",
    // ---- executor: r12d = last request served, r13 = bytes to report.
    "40:",
    "mov eax, {sys_write}",
    "mov edi, 1",
    "movabs rsi, {as_ctl}",
    "mov rdx, r13",
    "syscall",
    "41:",
    "movabs rbx, {as_ctl}",
    "mov eax, dword ptr [rbx + {c_req}]",
    "cmp eax, r12d",
    "jne 42f",
    "mov eax, {sys_futex}",
    "mov rdi, rbx",
    "mov esi, {futex_wait}",
    "mov edx, r12d",
    "xor r10d, r10d",
    "syscall",
    "jmp 41b",
    "42:",
    "mov r12d, eax",
    "mov r13d, 2",
    "mov rdi, qword ptr [rbx + {c_args}]",
    "mov rsi, qword ptr [rbx + {c_args} + 8]",
    "mov rdx, qword ptr [rbx + {c_args} + 16]",
    "mov r9, qword ptr [rbx + {c_args} + 24]",
    "mov rax, qword ptr [rbx + {c_op}]",
    "cmp rax, {op_mmap}",
    "je 43f",
    "cmp rax, {op_munmap}",
    "je 44f",
    "cmp rax, {op_mprotect}",
    "je 45f",
    "cmp rax, {op_clone}",
    "je 46f",
    "jmp 40b",
    "43:",
    "mov eax, {sys_mmap}",
    "mov r10d, {map_shared_fixed}",
    "mov r8d, {memfd}",
    "syscall",
    "cmp rax, rdi",
    "jne 40b",
    "mov r13d, 1",
    "jmp 40b",
    "44:",
    "mov eax, {sys_munmap}",
    "syscall",
    "jmp 47f",
    "45:",
    "mov eax, {sys_mprotect}",
    "syscall",
    "jmp 47f",
    "46:",
    // clone(flags, 0, NULL, &region.tid, 0); the child keeps rdi = region.
    "mov r14, rdi",
    "lea r10, [rdi + {st_tid}]",
    "movabs rdi, {thread_flags}",
    "xor esi, esi",
    "xor edx, edx",
    "xor r8d, r8d",
    "mov eax, {sys_clone}",
    "syscall",
    "test rax, rax",
    "jz 50f",
    "js 40b",
    "mov r13d, 1",
    "jmp 40b",
    "47:",
    "test rax, rax",
    "jnz 40b",
    "mov r13d, 1",
    "jmp 40b",
    // ---- thread: r14 = region (state page).
    "50:",
    "lea rax, [r14 + {altstack_off}]",
    "mov qword ptr [r14 + {st_altstack}], rax",
    "mov qword ptr [r14 + {st_altstack} + 8], 0",
    "mov qword ptr [r14 + {st_altstack} + 16], {altstack_size}",
    "mov eax, {sys_sigaltstack}",
    "lea rdi, [r14 + {st_altstack}]",
    "xor esi, esi",
    "syscall",
    "test rax, rax",
    "jnz 91f",
    "cmp qword ptr [r14 + {st_pin}], 0",
    "je 51f",
    "mov eax, {sys_sched_setaffinity}",
    "xor edi, edi",
    "mov esi, {cpuset_bytes}",
    "lea rdx, [r14 + {st_cpuset}]",
    "syscall",
    "51:",
    "mov qword ptr [r14 + {st_emptyset}], 0",
    "mov eax, {sys_rt_sigprocmask}",
    "mov edi, {sig_setmask}",
    "lea rsi, [r14 + {st_emptyset}]",
    "xor edx, edx",
    "mov r10d, 8",
    "syscall",
    "test rax, rax",
    "jnz 91f",
    "mov eax, {sys_seccomp}",
    "mov edi, {seccomp_set_mode_filter}",
    "xor esi, esi",
    "lea rdx, [rip + .Lsystrap_base + {page_fprog}]",
    "syscall",
    "test rax, rax",
    "jnz 91f",
    // The first trap: the Sentry replaces this frame with the application's registers.
    "mov eax, {sys_getpid}",
    "syscall",
    "ud2",
    // ---- handler: rdi = signo, rsp = the kernel's signal frame.
    ".balign 16, 0xcc",
    ".globl rsentry_systrap_handler",
    "rsentry_systrap_handler:",
    "mov rbx, rsp",
    "and rbx, {region_mask}",
    "mov qword ptr [rbx + {st_frame}], rsp",
    // Report the trap; wake the Sentry only if it said it sleeps (when it runs, or was
    // about to run anyway, the wake would be a wasted system call).
    "mov eax, {state_trapped}",
    "xchg dword ptr [rbx + {st_state}], eax",
    "test eax, {state_waiting}",
    "jz 60f",
    "mov eax, {sys_futex}",
    "mov rdi, rbx",
    "mov esi, {futex_wake}",
    "mov edx, 1",
    "syscall",
    ".globl rsentry_systrap_ip_wake",
    "rsentry_systrap_ip_wake:",
    "60:",
    "mov rcx, qword ptr [rbx + {st_spin}]",
    "61:",
    // RUN, with or without the Sentry's WAITING flag (it may already wait for the next
    // trap when this thread gets the CPU back).
    "mov eax, dword ptr [rbx + {st_state}]",
    "and eax, {not_waiting}",
    "cmp eax, {state_run}",
    "je 63f",
    "test rcx, rcx",
    "jz 62f",
    "pause",
    "dec rcx",
    "jmp 61b",
    "62:",
    // Say that this thread sleeps (TRAPPED -> TRAPPED|WAITING), so that the Sentry
    // wakes it; anything but TRAPPED or TRAPPED|WAITING: look again.
    "mov eax, {state_trapped}",
    "mov edx, {state_trapped_waiting}",
    "lock cmpxchg dword ptr [rbx + {st_state}], edx",
    "je 67f",
    "cmp eax, edx",
    "jne 60b",
    "67:",
    "mov eax, {sys_futex}",
    "mov rdi, rbx",
    "mov esi, {futex_wait}",
    "mov edx, {state_trapped_waiting}",
    "xor r10d, r10d",
    "syscall",
    ".globl rsentry_systrap_ip_wait",
    "rsentry_systrap_ip_wait:",
    "jmp 60b",
    "63:",
    "mov r12, qword ptr [rbx + {st_cmd}]",
    "test r12, {cmd_exit}",
    "jnz 66f",
    "test r12, {cmd_set_fs}",
    "jz 64f",
    "mov eax, {sys_arch_prctl}",
    "mov edi, {arch_set_fs}",
    "mov rsi, qword ptr [rbx + {st_fs}]",
    "syscall",
    ".globl rsentry_systrap_ip_setfs",
    "rsentry_systrap_ip_setfs:",
    "64:",
    "test r12, {cmd_set_gs}",
    "jz 65f",
    "mov eax, {sys_arch_prctl}",
    "mov edi, {arch_set_gs}",
    "mov rsi, qword ptr [rbx + {st_gs}]",
    "syscall",
    ".globl rsentry_systrap_ip_setgs",
    "rsentry_systrap_ip_setgs:",
    "65:",
    "mov rsp, qword ptr [rbx + {st_frame}]",
    "add rsp, 8",
    ".globl rsentry_systrap_restorer",
    "rsentry_systrap_restorer:",
    "mov eax, {sys_rt_sigreturn}",
    "syscall",
    ".globl rsentry_systrap_ip_sigreturn",
    "rsentry_systrap_ip_sigreturn:",
    "ud2",
    "66:",
    "mov eax, {sys_exit}",
    "xor edi, edi",
    "syscall",
    ".globl rsentry_systrap_ip_exit",
    "rsentry_systrap_ip_exit:",
    "ud2",
    // ---- failures: the whole stub exits with a code that says where.
    "90:",
    "mov edi, 90",
    "jmp 92f",
    "91:",
    "mov edi, 91",
    "92:",
    "mov eax, {sys_exit_group}",
    "syscall",
    "ud2",
    ".globl rsentry_systrap_end",
    "rsentry_systrap_end:",
    ".popsection",
    sys_munmap = const libc::SYS_munmap,
    sys_mmap = const libc::SYS_mmap,
    sys_mprotect = const libc::SYS_mprotect,
    sys_write = const libc::SYS_write,
    sys_close = const libc::SYS_close,
    sys_futex = const libc::SYS_futex,
    sys_pipe2 = const libc::SYS_pipe2,
    sys_clone = const libc::SYS_clone,
    sys_prctl = const libc::SYS_prctl,
    sys_rt_sigaction = const libc::SYS_rt_sigaction,
    sys_rt_sigprocmask = const libc::SYS_rt_sigprocmask,
    sys_rt_sigreturn = const libc::SYS_rt_sigreturn,
    sys_sigaltstack = const libc::SYS_sigaltstack,
    sys_sched_setaffinity = const libc::SYS_sched_setaffinity,
    sys_seccomp = const libc::SYS_seccomp,
    sys_arch_prctl = const libc::SYS_arch_prctl,
    sys_exit = const libc::SYS_exit,
    sys_getpid = const libc::SYS_getpid,
    sys_exit_group = const libc::SYS_exit_group,
    stub_addr = const STUB_ADDR,
    master_ctl = const MASTER_CTL,
    as_ctl = const AS_CTL,
    page = const PAGE,
    prot_rw = const libc::PROT_READ | libc::PROT_WRITE,
    prot_read = const libc::PROT_READ,
    map_shared_fixed = const libc::MAP_SHARED | libc::MAP_FIXED,
    memfd = const MEMFD_SLOT,
    ready_fd = const READY_FD,
    futex_wait = const libc::FUTEX_WAIT,
    futex_wake = const libc::FUTEX_WAKE,
    m_req = const M_REQ,
    m_resp = const M_RESP,
    m_ctl_off = const M_CTL_OFF,
    m_result = const M_RESULT,
    c_req = const C_REQ,
    c_op = const C_OP,
    c_args = const C_ARGS,
    op_mmap = const OP_MMAP,
    op_munmap = const OP_MUNMAP,
    op_mprotect = const OP_MPROTECT,
    op_clone = const OP_CLONE,
    sigchld = const libc::SIGCHLD,
    sigkill = const libc::SIGKILL,
    pr_set_pdeathsig = const libc::PR_SET_PDEATHSIG,
    page_sigaction = const PAGE_SIGACTION,
    page_fprog = const PAGE_FPROG,
    sigsys = const libc::SIGSYS,
    sigsegv = const libc::SIGSEGV,
    sigbus = const libc::SIGBUS,
    sigfpe = const libc::SIGFPE,
    sigill = const libc::SIGILL,
    sigtrap = const libc::SIGTRAP,
    sigint = const INTERRUPT_SIGNAL,
    st_tid = const ST_TID,
    st_state = const ST_STATE,
    st_frame = const ST_FRAME,
    st_cmd = const ST_CMD,
    st_fs = const ST_FS,
    st_gs = const ST_GS,
    st_spin = const ST_SPIN,
    st_pin = const ST_PIN,
    st_altstack = const ST_ALTSTACK,
    st_emptyset = const ST_EMPTYSET,
    st_cpuset = const ST_CPUSET,
    cpuset_bytes = const CPUSET_BYTES,
    thread_flags = const THREAD_FLAGS,
    altstack_off = const ALTSTACK_OFFSET,
    altstack_size = const REGION_SIZE - ALTSTACK_OFFSET,
    sig_setmask = const libc::SIG_SETMASK,
    seccomp_set_mode_filter = const libc::SECCOMP_SET_MODE_FILTER,
    region_mask = const !(REGION_SIZE as i64 - 1),
    state_trapped = const STATE_TRAPPED,
    state_run = const STATE_RUN,
    state_waiting = const STATE_WAITING,
    not_waiting = const !STATE_WAITING,
    state_trapped_waiting = const STATE_TRAPPED | STATE_WAITING,
    cmd_exit = const CMD_EXIT,
    cmd_set_fs = const CMD_SET_FS,
    cmd_set_gs = const CMD_SET_GS,
    arch_set_fs = const ARCH_SET_FS,
    arch_set_gs = const ARCH_SET_GS,
);

unsafe extern "C" {
    static rsentry_systrap_start: u8;
    static rsentry_systrap_setup: u8;
    static rsentry_systrap_handler: u8;
    static rsentry_systrap_restorer: u8;
    static rsentry_systrap_ip_wake: u8;
    static rsentry_systrap_ip_wait: u8;
    static rsentry_systrap_ip_setfs: u8;
    static rsentry_systrap_ip_setgs: u8;
    static rsentry_systrap_ip_sigreturn: u8;
    static rsentry_systrap_ip_exit: u8;
    static rsentry_systrap_end: u8;
}

fn start() -> usize {
    &raw const rsentry_systrap_start as usize
}

/// The assembled code bytes.
pub fn code() -> &'static [u8] {
    let len = &raw const rsentry_systrap_end as usize - start();
    // SAFETY: both symbols delimit one contiguous block of assembled bytes in a read-only,
    // allocated section of this binary that lives for the whole program.
    unsafe { std::slice::from_raw_parts(start() as *const u8, len) }
}

/// Offsets in the code page of the labels the platform needs.
#[derive(Clone, Copy, Debug)]
pub struct Labels {
    /// Entry of the master's setup.
    pub setup: u64,
    /// The signal handler.
    pub handler: u64,
    /// `mov eax, 15; syscall` (the `sa_restorer`).
    pub restorer: u64,
    /// Instruction pointers right after the handler's allowed system calls.
    pub ip_wake: u64,
    /// After `futex(WAIT)`.
    pub ip_wait: u64,
    /// After `arch_prctl(ARCH_SET_FS)`.
    pub ip_setfs: u64,
    /// After `arch_prctl(ARCH_SET_GS)`.
    pub ip_setgs: u64,
    /// After `rt_sigreturn` (never returns there).
    pub ip_sigreturn: u64,
    /// After `exit`.
    pub ip_exit: u64,
}

/// The label offsets.
pub fn labels() -> Labels {
    let off = |p: *const u8| (p as usize - start()) as u64;
    Labels {
        setup: off(&raw const rsentry_systrap_setup),
        handler: off(&raw const rsentry_systrap_handler),
        restorer: off(&raw const rsentry_systrap_restorer),
        ip_wake: off(&raw const rsentry_systrap_ip_wake),
        ip_wait: off(&raw const rsentry_systrap_ip_wait),
        ip_setfs: off(&raw const rsentry_systrap_ip_setfs),
        ip_setgs: off(&raw const rsentry_systrap_ip_setgs),
        ip_sigreturn: off(&raw const rsentry_systrap_ip_sigreturn),
        ip_exit: off(&raw const rsentry_systrap_ip_exit),
    }
}

/// The complete code page: code, the trap handler's `sigaction`, the application
/// filter and its `sock_fprog`.
pub fn page_image() -> Result<Vec<u8>, &'static str> {
    let code = code();
    if code.len() as u64 > CODE_LIMIT {
        return Err("stub code larger than its space");
    }
    let l = labels();
    let mut page = vec![0xccu8; PAGE as usize];
    page[..code.len()].copy_from_slice(code);
    // struct kernel_sigaction { handler, flags, restorer, mask }.
    let flags = (libc::SA_SIGINFO | libc::SA_ONSTACK | SA_RESTORER) as u64;
    let sa = [
        STUB_ADDR + l.handler,
        flags,
        STUB_ADDR + l.restorer,
        u64::MAX,
    ];
    let at = PAGE_SIGACTION as usize;
    for (i, w) in sa.iter().enumerate() {
        page[at + 8 * i..at + 8 * i + 8].copy_from_slice(&w.to_le_bytes());
    }
    let filter = crate::filter::application(&l);
    let bytes = crate::filter::encode(&filter);
    let at = PAGE_FILTER as usize;
    if at + bytes.len() > PAGE as usize {
        return Err("stub filter larger than its space");
    }
    page[at..at + bytes.len()].copy_from_slice(&bytes);
    // struct sock_fprog { unsigned short len; struct sock_filter *filter; }.
    let at = PAGE_FPROG as usize;
    page[at..at + 8].copy_from_slice(&(filter.len() as u64).to_le_bytes());
    page[at + 8..at + 16].copy_from_slice(&(STUB_ADDR + PAGE_FILTER).to_le_bytes());
    Ok(page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_fits_and_labels_are_ordered() {
        let page = page_image().unwrap();
        assert_eq!(page.len(), PAGE as usize);
        let l = labels();
        assert_eq!(l.setup, 0);
        assert!(l.handler < l.ip_wake && l.ip_wake < l.ip_wait && l.ip_wait < l.ip_sigreturn);
        // Every allowed IP is right after a `syscall` (0f 05).
        for ip in [
            l.ip_wake,
            l.ip_wait,
            l.ip_setfs,
            l.ip_setgs,
            l.ip_sigreturn,
            l.ip_exit,
        ] {
            assert_eq!(
                &page[ip as usize - 2..ip as usize],
                &[0x0f, 0x05],
                "{ip:#x}"
            );
        }
        assert_eq!(REGION_BASE % REGION_SIZE, 0);
    }
}
