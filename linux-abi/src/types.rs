//! `#[repr(C)]` structures exchanged with the application, laid out as on x86-64 Linux.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// `struct timespec`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct Timespec {
    /// Seconds.
    pub tv_sec: i64,
    /// Nanoseconds.
    pub tv_nsec: i64,
}

/// `struct timeval`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct Timeval {
    /// Seconds.
    pub tv_sec: i64,
    /// Microseconds.
    pub tv_usec: i64,
}

/// `struct stat` as returned by `fstat`/`newfstatat` on x86-64.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct Stat {
    /// Device.
    pub st_dev: u64,
    /// Inode number.
    pub st_ino: u64,
    /// Link count.
    pub st_nlink: u64,
    /// Type and permission bits.
    pub st_mode: u32,
    /// Owner.
    pub st_uid: u32,
    /// Group.
    pub st_gid: u32,
    /// Padding.
    pub _pad0: u32,
    /// Device number for device files.
    pub st_rdev: u64,
    /// Size in bytes.
    pub st_size: i64,
    /// Preferred I/O block size.
    pub st_blksize: i64,
    /// Number of 512-byte blocks.
    pub st_blocks: i64,
    /// Access time.
    pub st_atime: Timespec,
    /// Modification time.
    pub st_mtime: Timespec,
    /// Status change time.
    pub st_ctime: Timespec,
    /// Reserved.
    pub _unused: [i64; 3],
}

const _: () = assert!(core::mem::size_of::<Stat>() == 144);

/// One auxiliary vector entry (`Elf64_auxv_t`).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct AuxEntry {
    /// `AT_*` key.
    pub key: u64,
    /// Value.
    pub value: u64,
}

/// Auxiliary vector keys.
pub mod auxv {
    /// End of the vector.
    pub const AT_NULL: u64 = 0;
    /// Program headers of the program.
    pub const AT_PHDR: u64 = 3;
    /// Size of one program header entry.
    pub const AT_PHENT: u64 = 4;
    /// Number of program headers.
    pub const AT_PHNUM: u64 = 5;
    /// Page size.
    pub const AT_PAGESZ: u64 = 6;
    /// Base address of the interpreter.
    pub const AT_BASE: u64 = 7;
    /// Flags.
    pub const AT_FLAGS: u64 = 8;
    /// Entry point of the program.
    pub const AT_ENTRY: u64 = 9;
    /// Real uid.
    pub const AT_UID: u64 = 11;
    /// Effective uid.
    pub const AT_EUID: u64 = 12;
    /// Real gid.
    pub const AT_GID: u64 = 13;
    /// Effective gid.
    pub const AT_EGID: u64 = 14;
    /// Platform string.
    pub const AT_PLATFORM: u64 = 15;
    /// CPU capabilities.
    pub const AT_HWCAP: u64 = 16;
    /// Clock tick frequency.
    pub const AT_CLKTCK: u64 = 17;
    /// Secure mode.
    pub const AT_SECURE: u64 = 23;
    /// 16 random bytes.
    pub const AT_RANDOM: u64 = 25;
    /// More CPU capabilities.
    pub const AT_HWCAP2: u64 = 26;
    /// File name of the executable.
    pub const AT_EXECFN: u64 = 31;
    /// Address of the vDSO.
    pub const AT_SYSINFO_EHDR: u64 = 33;
    /// Minimal signal stack size.
    pub const AT_MINSIGSTKSZ: u64 = 51;
}
