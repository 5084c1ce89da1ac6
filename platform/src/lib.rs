//! The platform contract of the rsentry application kernel.
//!
//! A *platform* runs untrusted application code and hands every system call, fault and
//! synchronous signal of that code to the Sentry instead of the host kernel. The Sentry is
//! written against the traits in this crate only and never names a concrete platform;
//! `platform-ptrace` and `platform-kvm` implement them.
//!
//! # The pieces
//!
//! - [`MemoryFile`]: one memfd that holds all application memory. The Sentry owns it,
//!   allocates ranges of it, and reads and writes application memory through its own
//!   mapping of it. Platforms only ever make *parts of this file* visible to the
//!   application; the host never runs an `mmap` whose arguments the application chose.
//! - [`AddressSpace`]: an application address space. [`AddressSpace::map_file`] makes a
//!   range of the memory file visible at a virtual address, [`AddressSpace::unmap`] hides
//!   it again. Mappings are always `MAP_SHARED` views of the memory file: copy-on-write,
//!   zero-fill and file-backed semantics are the Sentry's business.
//! - [`Context`]: an execution context, one per application thread (Sentry task).
//!   [`Context::switch`] runs the application with the given [`Registers`] in the given
//!   address space until it traps, and returns the [`Trap`].
//! - [`Platform`]: the factory for the two above.
//!
//! # Threads
//!
//! - A `Context` is driven by exactly one host thread: the first thread that calls
//!   [`Context::switch`] on it owns it, and every later `switch` must come from that
//!   same thread (ptrace requires the tracer to stay the same). Calling `switch` from
//!   another thread returns [`PlatformError::WrongThread`].
//! - [`Context::interrupt`] may be called from any thread at any time.
//! - An `AddressSpace` may be shared by several contexts (the threads of one process) and
//!   its methods may be called from any thread. Mapping changes are visible to every
//!   context of that address space when the call returns, including contexts running at
//!   that moment.
//! - Dropping the last reference to a platform object releases its host resources
//!   (stub processes, vCPUs); no host process or thread outlives the platform that made it.
//!
//! # Unsafe code
//!
//! Denied in the crate except in `memory` (the memfd and the Sentry's mapping of it) and
//! `copy` (the atomic copies to and from that mapping); each `unsafe` block there carries
//! a `SAFETY:` line.

#![deny(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

#[allow(unsafe_code)]
mod copy;
mod error;
#[allow(unsafe_code)]
mod memory;
mod registers;
pub mod seccomp;
mod trap;

use std::any::Any;
use std::sync::Arc;

pub use error::PlatformError;
pub use memory::{MemoryFile, MemoryFileError};
pub use registers::{
    FPU_STATE_SIZE, FpuState, GeneralRegisters, Registers, USER_CS, USER_SS, fpu_state_size,
};
pub use trap::{AccessType, Trap, VSYSCALL_BASE};

/// Page protection for [`AddressSpace::map_file`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Protection {
    /// Readable.
    pub read: bool,
    /// Writable.
    pub write: bool,
    /// Executable.
    pub execute: bool,
}

impl Protection {
    /// No access.
    pub const NONE: Protection = Protection {
        read: false,
        write: false,
        execute: false,
    };
    /// Read only.
    pub const READ: Protection = Protection {
        read: true,
        write: false,
        execute: false,
    };
    /// Read and write.
    pub const READ_WRITE: Protection = Protection {
        read: true,
        write: true,
        execute: false,
    };
    /// Read and execute.
    pub const READ_EXECUTE: Protection = Protection {
        read: true,
        write: false,
        execute: true,
    };
    /// Read, write and execute.
    pub const ALL: Protection = Protection {
        read: true,
        write: true,
        execute: true,
    };

    /// Converts Linux `PROT_*` bits.
    pub fn from_linux(prot: u32) -> Protection {
        use linux_abi::flags::mm::{PROT_EXEC, PROT_READ, PROT_WRITE};
        Protection {
            read: prot & PROT_READ != 0,
            write: prot & PROT_WRITE != 0,
            execute: prot & PROT_EXEC != 0,
        }
    }

    /// Converts to Linux `PROT_*` bits.
    pub fn to_linux(self) -> u32 {
        use linux_abi::flags::mm::{PROT_EXEC, PROT_READ, PROT_WRITE};
        (if self.read { PROT_READ } else { 0 })
            | (if self.write { PROT_WRITE } else { 0 })
            | (if self.execute { PROT_EXEC } else { 0 })
    }
}

/// A platform: makes address spaces and execution contexts that share one [`MemoryFile`].
pub trait Platform: Send + Sync + std::fmt::Debug {
    /// A short name for logs and the `--platform` flag (`"ptrace"`, `"kvm"`).
    fn name(&self) -> &'static str;

    /// The memory file that every address space of this platform maps from.
    fn memory_file(&self) -> &Arc<MemoryFile>;

    /// The lowest address the application may map (inclusive).
    fn min_user_address(&self) -> u64 {
        0x1_0000
    }

    /// One past the highest address the application may map. Platforms that keep
    /// structures of their own in the address space (KVM's trampolines) lower this.
    fn max_user_address(&self) -> u64 {
        0x7fff_ffff_f000
    }

    /// Creates an empty address space: nothing is mapped where the application can see it.
    fn new_address_space(&self) -> Result<Arc<dyn AddressSpace>, PlatformError>;

    /// Creates an execution context. It runs nothing until [`Context::switch`].
    fn new_context(&self) -> Result<Arc<dyn Context>, PlatformError>;
}

/// An application address space.
///
/// All methods may be called from any thread, also while contexts run in it.
pub trait AddressSpace: Send + Sync + std::fmt::Debug {
    /// Makes `len` bytes of the memory file starting at `file_offset` visible at virtual
    /// address `addr` with protection `prot`, replacing whatever was mapped there.
    ///
    /// `addr`, `file_offset` and `len` must be page aligned, `len` non-zero, the virtual
    /// range within `[min_user_address, max_user_address)` of the platform and the file
    /// range within the memory file; otherwise [`PlatformError::InvalidArgument`].
    fn map_file(
        &self,
        addr: u64,
        file_offset: u64,
        len: u64,
        prot: Protection,
    ) -> Result<(), PlatformError>;

    /// Removes every mapping in `[addr, addr + len)`. Unmapping a hole is not an error.
    /// Alignment and range rules are those of [`AddressSpace::map_file`].
    fn unmap(&self, addr: u64, len: u64) -> Result<(), PlatformError>;

    /// Releases the host resources of this address space early (the stub process, the
    /// page tables). Later calls fail with [`PlatformError::Released`]. Dropping the
    /// last reference releases too.
    fn release(&self);

    /// Downcasting support for the platform that made this address space.
    fn as_any(&self) -> &dyn Any;
}

/// An execution context: runs one application thread at a time.
pub trait Context: Send + Sync + std::fmt::Debug {
    /// Runs the application in `address_space` starting from `regs` until it traps, and
    /// stores the state it trapped with back into `regs` (general registers, FS/GS base and
    /// FPU state).
    ///
    /// Returns:
    /// - [`Trap::Syscall`]: the application executed `syscall`. `regs.gp.orig_rax` holds the
    ///   number, the arguments are in `rdi, rsi, rdx, r10, r8, r9`, and `rip` points past
    ///   the instruction. Nothing ran on the host: the Sentry emulates it, sets `rax`, and
    ///   switches again.
    /// - [`Trap::Fault`]: a memory access at `addr` hit no mapping or a mapping without the
    ///   right protection. The instruction has not completed: after the Sentry maps the page
    ///   the next `switch` retries it.
    /// - [`Trap::Signal`]: any other synchronous exception (illegal instruction, divide
    ///   error, breakpoint, general protection), with the siginfo Linux would send.
    /// - [`Trap::Interrupted`]: [`Context::interrupt`] was called, before or during this
    ///   switch. The registers are consistent; the application may not have run at all.
    ///
    /// `address_space` must come from the same platform.
    fn switch(
        &self,
        address_space: &dyn AddressSpace,
        regs: &mut Registers,
    ) -> Result<Trap, PlatformError>;

    /// Makes the current or next [`Context::switch`] return [`Trap::Interrupted`] soon.
    /// Callable from any thread; an interrupt while not switching is remembered, and
    /// several interrupts before a switch return count as one.
    fn interrupt(&self);

    /// Releases the host resources of this context early (its stub thread, its vCPU).
    /// Dropping the last reference releases too.
    fn release(&self);
}
