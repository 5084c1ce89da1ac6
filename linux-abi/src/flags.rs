//! Flag and constant values of the x86-64 Linux ABI, grouped by subsystem.

/// Page size of x86-64 (4 KiB).
pub const PAGE_SIZE: u64 = 4096;

/// Memory protection bits (`PROT_*`) and mapping flags (`MAP_*`).
pub mod mm {
    /// Pages may not be accessed.
    pub const PROT_NONE: u32 = 0;
    /// Pages may be read.
    pub const PROT_READ: u32 = 1;
    /// Pages may be written.
    pub const PROT_WRITE: u32 = 2;
    /// Pages may be executed.
    pub const PROT_EXEC: u32 = 4;
    /// Share the mapping.
    pub const MAP_SHARED: u32 = 0x01;
    /// Private copy-on-write mapping.
    pub const MAP_PRIVATE: u32 = 0x02;
    /// Shared mapping that checks flags strictly.
    pub const MAP_SHARED_VALIDATE: u32 = 0x03;
    /// The bits of the flags that give the mapping's type (shared, private, ...).
    pub const MAP_TYPE: u32 = 0x0f;
    /// Place the mapping exactly at the address.
    pub const MAP_FIXED: u32 = 0x10;
    /// Not backed by a file.
    pub const MAP_ANONYMOUS: u32 = 0x20;
    /// Only the low 2 GiB.
    pub const MAP_32BIT: u32 = 0x40;
    /// Stack-like segment (ignored by Linux).
    pub const MAP_GROWSDOWN: u32 = 0x100;
    /// Ignored.
    pub const MAP_DENYWRITE: u32 = 0x800;
    /// Ignored.
    pub const MAP_EXECUTABLE: u32 = 0x1000;
    /// Lock pages (accepted, no effect in the sandbox).
    pub const MAP_LOCKED: u32 = 0x2000;
    /// Do not reserve swap.
    pub const MAP_NORESERVE: u32 = 0x4000;
    /// Prefault the mapping.
    pub const MAP_POPULATE: u32 = 0x8000;
    /// Do not block on I/O while prefaulting.
    pub const MAP_NONBLOCK: u32 = 0x10000;
    /// Stack allocation hint.
    pub const MAP_STACK: u32 = 0x20000;
    /// Huge pages.
    pub const MAP_HUGETLB: u32 = 0x40000;
    /// Like `MAP_FIXED` but fails instead of replacing an existing mapping.
    pub const MAP_FIXED_NOREPLACE: u32 = 0x100000;
}

/// `open(2)` flags.
pub mod open {
    /// Read only.
    pub const O_RDONLY: u32 = 0;
    /// Write only.
    pub const O_WRONLY: u32 = 1;
    /// Read and write.
    pub const O_RDWR: u32 = 2;
    /// Access mode mask.
    pub const O_ACCMODE: u32 = 3;
    /// Create if absent.
    pub const O_CREAT: u32 = 0o100;
    /// Fail if it exists (with `O_CREAT`).
    pub const O_EXCL: u32 = 0o200;
    /// Do not make it the controlling terminal.
    pub const O_NOCTTY: u32 = 0o400;
    /// Truncate to zero length.
    pub const O_TRUNC: u32 = 0o1000;
    /// Append on each write.
    pub const O_APPEND: u32 = 0o2000;
    /// Non-blocking I/O.
    pub const O_NONBLOCK: u32 = 0o4000;
    /// Synchronous data writes.
    pub const O_DSYNC: u32 = 0o10000;
    /// Signal-driven I/O.
    pub const O_ASYNC: u32 = 0o20000;
    /// Direct I/O.
    pub const O_DIRECT: u32 = 0o40000;
    /// Large files (always on for 64-bit).
    pub const O_LARGEFILE: u32 = 0o100000;
    /// Fail unless a directory.
    pub const O_DIRECTORY: u32 = 0o200000;
    /// Do not follow a final symlink.
    pub const O_NOFOLLOW: u32 = 0o400000;
    /// Do not update access time.
    pub const O_NOATIME: u32 = 0o1000000;
    /// Close on exec.
    pub const O_CLOEXEC: u32 = 0o2000000;
    /// Synchronous writes.
    pub const O_SYNC: u32 = 0o4010000;
    /// A path-only descriptor.
    pub const O_PATH: u32 = 0o10000000;
    /// An unnamed temporary file.
    pub const O_TMPFILE: u32 = 0o20200000;
}

/// `*at` flags.
pub mod at {
    /// Use the current working directory.
    pub const AT_FDCWD: i32 = -100;
    /// Do not follow a final symlink.
    pub const AT_SYMLINK_NOFOLLOW: u32 = 0x100;
    /// `unlinkat`: remove a directory.
    pub const AT_REMOVEDIR: u32 = 0x200;
    /// `faccessat`: check with effective ids.
    pub const AT_EACCESS: u32 = 0x200;
    /// Follow a final symlink.
    pub const AT_SYMLINK_FOLLOW: u32 = 0x400;
    /// Do not automount.
    pub const AT_NO_AUTOMOUNT: u32 = 0x800;
    /// Operate on the fd itself when the path is empty.
    pub const AT_EMPTY_PATH: u32 = 0x1000;
}

/// File type bits of `st_mode`.
pub mod mode {
    /// File type mask.
    pub const S_IFMT: u32 = 0o170000;
    /// Socket.
    pub const S_IFSOCK: u32 = 0o140000;
    /// Symbolic link.
    pub const S_IFLNK: u32 = 0o120000;
    /// Regular file.
    pub const S_IFREG: u32 = 0o100000;
    /// Block device.
    pub const S_IFBLK: u32 = 0o060000;
    /// Directory.
    pub const S_IFDIR: u32 = 0o040000;
    /// Character device.
    pub const S_IFCHR: u32 = 0o020000;
    /// FIFO.
    pub const S_IFIFO: u32 = 0o010000;
}

/// The kernel's `struct termios` (`asm-generic/termbits.h`): flag bits, control
/// character indices, sizes, and the `TIOCPKT` status bits.
pub mod termios {
    /// `c_iflag` bits.
    pub mod iflag {
        /// Strip the eighth bit.
        pub const ISTRIP: u32 = 0o40;
        /// Newline to carriage return.
        pub const INLCR: u32 = 0o100;
        /// Ignore carriage return.
        pub const IGNCR: u32 = 0o200;
        /// Carriage return to newline.
        pub const ICRNL: u32 = 0o400;
        /// Upper to lower case.
        pub const IUCLC: u32 = 0o1000;
        /// `VSTART`/`VSTOP` flow control of output.
        pub const IXON: u32 = 0o2000;
        /// Any character restarts stopped output.
        pub const IXANY: u32 = 0o4000;
        /// UTF-8 input: erase whole characters.
        pub const IUTF8: u32 = 0o40000;
    }

    /// `c_oflag` bits.
    pub mod oflag {
        /// Process output.
        pub const OPOST: u32 = 0o1;
        /// Lower to upper case.
        pub const OLCUC: u32 = 0o2;
        /// Newline to carriage return and newline.
        pub const ONLCR: u32 = 0o4;
        /// Carriage return to newline.
        pub const OCRNL: u32 = 0o10;
        /// No carriage return at column 0.
        pub const ONOCR: u32 = 0o20;
        /// Newline returns the carriage.
        pub const ONLRET: u32 = 0o40;
        /// Tab delay mask; `XTABS` expands tabs to spaces.
        pub const TABDLY: u32 = 0o14000;
        /// Expand tabs.
        pub const XTABS: u32 = 0o14000;
    }

    /// `c_lflag` bits.
    pub mod lflag {
        /// Signal characters.
        pub const ISIG: u32 = 0o1;
        /// Canonical (line) mode.
        pub const ICANON: u32 = 0o2;
        /// Echo input.
        pub const ECHO: u32 = 0o10;
        /// Erase echoes as backspace-space-backspace.
        pub const ECHOE: u32 = 0o20;
        /// Kill echoes a newline.
        pub const ECHOK: u32 = 0o40;
        /// Echo newline even without `ECHO`.
        pub const ECHONL: u32 = 0o100;
        /// No flush on signal characters.
        pub const NOFLSH: u32 = 0o200;
        /// Background writes get `SIGTTOU`.
        pub const TOSTOP: u32 = 0o400;
        /// Echo control characters as `^X`.
        pub const ECHOCTL: u32 = 0o1000;
        /// Kill erases the line character by character.
        pub const ECHOKE: u32 = 0o4000;
        /// `VWERASE`, `VLNEXT`, `VREPRINT`, `VEOL2`.
        pub const IEXTEN: u32 = 0o100000;
    }

    /// Indices of `c_cc`.
    pub mod cc {
        /// Interrupt (`SIGINT`).
        pub const VINTR: usize = 0;
        /// Quit (`SIGQUIT`).
        pub const VQUIT: usize = 1;
        /// Erase a character.
        pub const VERASE: usize = 2;
        /// Kill the line.
        pub const VKILL: usize = 3;
        /// End of file.
        pub const VEOF: usize = 4;
        /// Non-canonical read timeout, in tenths of a second.
        pub const VTIME: usize = 5;
        /// Non-canonical read minimum.
        pub const VMIN: usize = 6;
        /// Restart output.
        pub const VSTART: usize = 8;
        /// Stop output.
        pub const VSTOP: usize = 9;
        /// Suspend (`SIGTSTP`).
        pub const VSUSP: usize = 10;
        /// Extra end of line.
        pub const VEOL: usize = 11;
        /// Reprint the line.
        pub const VREPRINT: usize = 12;
        /// Erase a word.
        pub const VWERASE: usize = 14;
        /// Take the next character literally.
        pub const VLNEXT: usize = 15;
        /// Second extra end of line.
        pub const VEOL2: usize = 16;
    }

    /// Number of control characters in the kernel's `struct termios`.
    pub const NCCS: usize = 19;
    /// Size of the kernel's `struct termios`.
    pub const TERMIOS_SIZE: usize = 36;
    /// Size of `struct termios2` (with the two speeds).
    pub const TERMIOS2_SIZE: usize = 44;

    /// `TIOCPKT` status bits a packet-mode master reads.
    pub mod pkt {
        /// The replica's input was flushed.
        pub const FLUSHREAD: u8 = 1;
        /// The replica's output was flushed.
        pub const FLUSHWRITE: u8 = 2;
        /// Output was stopped.
        pub const STOP: u8 = 4;
        /// Output was restarted.
        pub const START: u8 = 8;
    }
}
