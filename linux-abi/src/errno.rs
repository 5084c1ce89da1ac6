//! Linux error numbers.
//!
//! [`Errno`] is what every Sentry operation fails with. It converts to the negative return
//! value a system call hands back to the application. The constants are generated from the
//! kernel's `asm-generic/errno*.h`.

use core::fmt;

/// A Linux error number (always positive; [`Errno::as_return`] negates it).
#[derive(Copy, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Errno(i32);

impl Errno {
    /// Wraps a raw positive error number.
    pub const fn new(raw: i32) -> Self {
        Errno(raw)
    }

    /// The raw positive error number.
    pub const fn raw(self) -> i32 {
        self.0
    }

    /// The value a system call returns for this error: `-errno`.
    pub const fn as_return(self) -> u64 {
        (-(self.0 as i64)) as u64
    }

    /// Decodes a raw system call return value: `Some(errno)` when it lies in the
    /// error range `-4095..=-1`.
    pub const fn from_return(ret: u64) -> Option<Errno> {
        let v = ret as i64;
        if v < 0 && v >= -4095 {
            Some(Errno(-v as i32))
        } else {
            None
        }
    }

    /// The symbolic name (`"ENOENT"`), or `None` for an unknown number.
    pub fn name(self) -> Option<&'static str> {
        ERRNO_TABLE.iter().find(|e| e.0 == self.0).map(|e| e.1)
    }

    /// The description the kernel headers give (`"No such file or directory"`).
    pub fn description(self) -> Option<&'static str> {
        ERRNO_TABLE.iter().find(|e| e.0 == self.0).map(|e| e.2)
    }

    /// The error number of the calling thread's last failed libc call.
    pub fn last_os_error() -> Errno {
        Errno(
            std::io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(Self::EIO.0),
        )
    }
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "Errno({})", self.0),
        }
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.name(), self.description()) {
            (Some(n), Some(d)) => write!(f, "{n} ({d})"),
            _ => write!(f, "errno {}", self.0),
        }
    }
}

impl std::error::Error for Errno {}

impl From<std::io::Error> for Errno {
    fn from(e: std::io::Error) -> Self {
        Errno(e.raw_os_error().unwrap_or(Self::EIO.0))
    }
}

impl From<Errno> for std::io::Error {
    fn from(e: Errno) -> Self {
        std::io::Error::from_raw_os_error(e.0)
    }
}

impl Errno {
    /// Operation not permitted.
    pub const EPERM: Errno = Errno(1);
    /// No such file or directory.
    pub const ENOENT: Errno = Errno(2);
    /// No such process.
    pub const ESRCH: Errno = Errno(3);
    /// Interrupted system call.
    pub const EINTR: Errno = Errno(4);
    /// I/O error.
    pub const EIO: Errno = Errno(5);
    /// No such device or address.
    pub const ENXIO: Errno = Errno(6);
    /// Argument list too long.
    pub const E2BIG: Errno = Errno(7);
    /// Exec format error.
    pub const ENOEXEC: Errno = Errno(8);
    /// Bad file number.
    pub const EBADF: Errno = Errno(9);
    /// No child processes.
    pub const ECHILD: Errno = Errno(10);
    /// Try again.
    pub const EAGAIN: Errno = Errno(11);
    /// Out of memory.
    pub const ENOMEM: Errno = Errno(12);
    /// Permission denied.
    pub const EACCES: Errno = Errno(13);
    /// Bad address.
    pub const EFAULT: Errno = Errno(14);
    /// Block device required.
    pub const ENOTBLK: Errno = Errno(15);
    /// Device or resource busy.
    pub const EBUSY: Errno = Errno(16);
    /// File exists.
    pub const EEXIST: Errno = Errno(17);
    /// Cross-device link.
    pub const EXDEV: Errno = Errno(18);
    /// No such device.
    pub const ENODEV: Errno = Errno(19);
    /// Not a directory.
    pub const ENOTDIR: Errno = Errno(20);
    /// Is a directory.
    pub const EISDIR: Errno = Errno(21);
    /// Invalid argument.
    pub const EINVAL: Errno = Errno(22);
    /// File table overflow.
    pub const ENFILE: Errno = Errno(23);
    /// Too many open files.
    pub const EMFILE: Errno = Errno(24);
    /// Not a typewriter.
    pub const ENOTTY: Errno = Errno(25);
    /// Text file busy.
    pub const ETXTBSY: Errno = Errno(26);
    /// File too large.
    pub const EFBIG: Errno = Errno(27);
    /// No space left on device.
    pub const ENOSPC: Errno = Errno(28);
    /// Illegal seek.
    pub const ESPIPE: Errno = Errno(29);
    /// Read-only file system.
    pub const EROFS: Errno = Errno(30);
    /// Too many links.
    pub const EMLINK: Errno = Errno(31);
    /// Broken pipe.
    pub const EPIPE: Errno = Errno(32);
    /// Math argument out of domain of func.
    pub const EDOM: Errno = Errno(33);
    /// Math result not representable.
    pub const ERANGE: Errno = Errno(34);
    /// Resource deadlock would occur.
    pub const EDEADLK: Errno = Errno(35);
    /// File name too long.
    pub const ENAMETOOLONG: Errno = Errno(36);
    /// No record locks available.
    pub const ENOLCK: Errno = Errno(37);
    /// Invalid system call number.
    pub const ENOSYS: Errno = Errno(38);
    /// Directory not empty.
    pub const ENOTEMPTY: Errno = Errno(39);
    /// Too many symbolic links encountered.
    pub const ELOOP: Errno = Errno(40);
    /// No message of desired type.
    pub const ENOMSG: Errno = Errno(42);
    /// Identifier removed.
    pub const EIDRM: Errno = Errno(43);
    /// Channel number out of range.
    pub const ECHRNG: Errno = Errno(44);
    /// Level 2 not synchronized.
    pub const EL2NSYNC: Errno = Errno(45);
    /// Level 3 halted.
    pub const EL3HLT: Errno = Errno(46);
    /// Level 3 reset.
    pub const EL3RST: Errno = Errno(47);
    /// Link number out of range.
    pub const ELNRNG: Errno = Errno(48);
    /// Protocol driver not attached.
    pub const EUNATCH: Errno = Errno(49);
    /// No CSI structure available.
    pub const ENOCSI: Errno = Errno(50);
    /// Level 2 halted.
    pub const EL2HLT: Errno = Errno(51);
    /// Invalid exchange.
    pub const EBADE: Errno = Errno(52);
    /// Invalid request descriptor.
    pub const EBADR: Errno = Errno(53);
    /// Exchange full.
    pub const EXFULL: Errno = Errno(54);
    /// No anode.
    pub const ENOANO: Errno = Errno(55);
    /// Invalid request code.
    pub const EBADRQC: Errno = Errno(56);
    /// Invalid slot.
    pub const EBADSLT: Errno = Errno(57);
    /// Bad font file format.
    pub const EBFONT: Errno = Errno(59);
    /// Device not a stream.
    pub const ENOSTR: Errno = Errno(60);
    /// No data available.
    pub const ENODATA: Errno = Errno(61);
    /// Timer expired.
    pub const ETIME: Errno = Errno(62);
    /// Out of streams resources.
    pub const ENOSR: Errno = Errno(63);
    /// Machine is not on the network.
    pub const ENONET: Errno = Errno(64);
    /// Package not installed.
    pub const ENOPKG: Errno = Errno(65);
    /// Object is remote.
    pub const EREMOTE: Errno = Errno(66);
    /// Link has been severed.
    pub const ENOLINK: Errno = Errno(67);
    /// Advertise error.
    pub const EADV: Errno = Errno(68);
    /// Srmount error.
    pub const ESRMNT: Errno = Errno(69);
    /// Communication error on send.
    pub const ECOMM: Errno = Errno(70);
    /// Protocol error.
    pub const EPROTO: Errno = Errno(71);
    /// Multihop attempted.
    pub const EMULTIHOP: Errno = Errno(72);
    /// RFS specific error.
    pub const EDOTDOT: Errno = Errno(73);
    /// Not a data message.
    pub const EBADMSG: Errno = Errno(74);
    /// Value too large for defined data type.
    pub const EOVERFLOW: Errno = Errno(75);
    /// Name not unique on network.
    pub const ENOTUNIQ: Errno = Errno(76);
    /// File descriptor in bad state.
    pub const EBADFD: Errno = Errno(77);
    /// Remote address changed.
    pub const EREMCHG: Errno = Errno(78);
    /// Can not access a needed shared library.
    pub const ELIBACC: Errno = Errno(79);
    /// Accessing a corrupted shared library.
    pub const ELIBBAD: Errno = Errno(80);
    /// .lib section in a.out corrupted.
    pub const ELIBSCN: Errno = Errno(81);
    /// Attempting to link in too many shared libraries.
    pub const ELIBMAX: Errno = Errno(82);
    /// Cannot exec a shared library directly.
    pub const ELIBEXEC: Errno = Errno(83);
    /// Illegal byte sequence.
    pub const EILSEQ: Errno = Errno(84);
    /// Interrupted system call should be restarted.
    pub const ERESTART: Errno = Errno(85);
    /// Streams pipe error.
    pub const ESTRPIPE: Errno = Errno(86);
    /// Too many users.
    pub const EUSERS: Errno = Errno(87);
    /// Socket operation on non-socket.
    pub const ENOTSOCK: Errno = Errno(88);
    /// Destination address required.
    pub const EDESTADDRREQ: Errno = Errno(89);
    /// Message too long.
    pub const EMSGSIZE: Errno = Errno(90);
    /// Protocol wrong type for socket.
    pub const EPROTOTYPE: Errno = Errno(91);
    /// Protocol not available.
    pub const ENOPROTOOPT: Errno = Errno(92);
    /// Protocol not supported.
    pub const EPROTONOSUPPORT: Errno = Errno(93);
    /// Socket type not supported.
    pub const ESOCKTNOSUPPORT: Errno = Errno(94);
    /// Operation not supported on transport endpoint.
    pub const EOPNOTSUPP: Errno = Errno(95);
    /// Protocol family not supported.
    pub const EPFNOSUPPORT: Errno = Errno(96);
    /// Address family not supported by protocol.
    pub const EAFNOSUPPORT: Errno = Errno(97);
    /// Address already in use.
    pub const EADDRINUSE: Errno = Errno(98);
    /// Cannot assign requested address.
    pub const EADDRNOTAVAIL: Errno = Errno(99);
    /// Network is down.
    pub const ENETDOWN: Errno = Errno(100);
    /// Network is unreachable.
    pub const ENETUNREACH: Errno = Errno(101);
    /// Network dropped connection because of reset.
    pub const ENETRESET: Errno = Errno(102);
    /// Software caused connection abort.
    pub const ECONNABORTED: Errno = Errno(103);
    /// Connection reset by peer.
    pub const ECONNRESET: Errno = Errno(104);
    /// No buffer space available.
    pub const ENOBUFS: Errno = Errno(105);
    /// Transport endpoint is already connected.
    pub const EISCONN: Errno = Errno(106);
    /// Transport endpoint is not connected.
    pub const ENOTCONN: Errno = Errno(107);
    /// Cannot send after transport endpoint shutdown.
    pub const ESHUTDOWN: Errno = Errno(108);
    /// Too many references: cannot splice.
    pub const ETOOMANYREFS: Errno = Errno(109);
    /// Connection timed out.
    pub const ETIMEDOUT: Errno = Errno(110);
    /// Connection refused.
    pub const ECONNREFUSED: Errno = Errno(111);
    /// Host is down.
    pub const EHOSTDOWN: Errno = Errno(112);
    /// No route to host.
    pub const EHOSTUNREACH: Errno = Errno(113);
    /// Operation already in progress.
    pub const EALREADY: Errno = Errno(114);
    /// Operation now in progress.
    pub const EINPROGRESS: Errno = Errno(115);
    /// Stale file handle.
    pub const ESTALE: Errno = Errno(116);
    /// Structure needs cleaning.
    pub const EUCLEAN: Errno = Errno(117);
    /// Not a XENIX named type file.
    pub const ENOTNAM: Errno = Errno(118);
    /// No XENIX semaphores available.
    pub const ENAVAIL: Errno = Errno(119);
    /// Is a named type file.
    pub const EISNAM: Errno = Errno(120);
    /// Remote I/O error.
    pub const EREMOTEIO: Errno = Errno(121);
    /// Quota exceeded.
    pub const EDQUOT: Errno = Errno(122);
    /// No medium found.
    pub const ENOMEDIUM: Errno = Errno(123);
    /// Wrong medium type.
    pub const EMEDIUMTYPE: Errno = Errno(124);
    /// Operation Canceled.
    pub const ECANCELED: Errno = Errno(125);
    /// Required key not available.
    pub const ENOKEY: Errno = Errno(126);
    /// Key has expired.
    pub const EKEYEXPIRED: Errno = Errno(127);
    /// Key has been revoked.
    pub const EKEYREVOKED: Errno = Errno(128);
    /// Key was rejected by service.
    pub const EKEYREJECTED: Errno = Errno(129);
    /// Owner died.
    pub const EOWNERDEAD: Errno = Errno(130);
    /// State not recoverable.
    pub const ENOTRECOVERABLE: Errno = Errno(131);
    /// Operation not possible due to RF-kill.
    pub const ERFKILL: Errno = Errno(132);
    /// Memory page has hardware error.
    pub const EHWPOISON: Errno = Errno(133);
    /// Operation would block (same as `EAGAIN`).
    pub const EWOULDBLOCK: Errno = Errno(11);
    /// Restart the system call if no handler ran (kernel-internal, never seen by the application).
    pub const ERESTARTSYS: Errno = Errno(512);
    /// Restart the system call unconditionally (kernel-internal).
    pub const ERESTARTNOINTR: Errno = Errno(513);
    /// Restart if no handler ran, otherwise fail with EINTR (kernel-internal).
    pub const ERESTARTNOHAND: Errno = Errno(514);
    /// Restart through `restart_syscall` (kernel-internal).
    pub const ERESTART_RESTARTBLOCK: Errno = Errno(516);
}

static ERRNO_TABLE: &[(i32, &str, &str)] = &[
    (1, "EPERM", "Operation not permitted"),
    (2, "ENOENT", "No such file or directory"),
    (3, "ESRCH", "No such process"),
    (4, "EINTR", "Interrupted system call"),
    (5, "EIO", "I/O error"),
    (6, "ENXIO", "No such device or address"),
    (7, "E2BIG", "Argument list too long"),
    (8, "ENOEXEC", "Exec format error"),
    (9, "EBADF", "Bad file number"),
    (10, "ECHILD", "No child processes"),
    (11, "EAGAIN", "Try again"),
    (12, "ENOMEM", "Out of memory"),
    (13, "EACCES", "Permission denied"),
    (14, "EFAULT", "Bad address"),
    (15, "ENOTBLK", "Block device required"),
    (16, "EBUSY", "Device or resource busy"),
    (17, "EEXIST", "File exists"),
    (18, "EXDEV", "Cross-device link"),
    (19, "ENODEV", "No such device"),
    (20, "ENOTDIR", "Not a directory"),
    (21, "EISDIR", "Is a directory"),
    (22, "EINVAL", "Invalid argument"),
    (23, "ENFILE", "File table overflow"),
    (24, "EMFILE", "Too many open files"),
    (25, "ENOTTY", "Not a typewriter"),
    (26, "ETXTBSY", "Text file busy"),
    (27, "EFBIG", "File too large"),
    (28, "ENOSPC", "No space left on device"),
    (29, "ESPIPE", "Illegal seek"),
    (30, "EROFS", "Read-only file system"),
    (31, "EMLINK", "Too many links"),
    (32, "EPIPE", "Broken pipe"),
    (33, "EDOM", "Math argument out of domain of func"),
    (34, "ERANGE", "Math result not representable"),
    (35, "EDEADLK", "Resource deadlock would occur"),
    (36, "ENAMETOOLONG", "File name too long"),
    (37, "ENOLCK", "No record locks available"),
    (38, "ENOSYS", "Invalid system call number"),
    (39, "ENOTEMPTY", "Directory not empty"),
    (40, "ELOOP", "Too many symbolic links encountered"),
    (42, "ENOMSG", "No message of desired type"),
    (43, "EIDRM", "Identifier removed"),
    (44, "ECHRNG", "Channel number out of range"),
    (45, "EL2NSYNC", "Level 2 not synchronized"),
    (46, "EL3HLT", "Level 3 halted"),
    (47, "EL3RST", "Level 3 reset"),
    (48, "ELNRNG", "Link number out of range"),
    (49, "EUNATCH", "Protocol driver not attached"),
    (50, "ENOCSI", "No CSI structure available"),
    (51, "EL2HLT", "Level 2 halted"),
    (52, "EBADE", "Invalid exchange"),
    (53, "EBADR", "Invalid request descriptor"),
    (54, "EXFULL", "Exchange full"),
    (55, "ENOANO", "No anode"),
    (56, "EBADRQC", "Invalid request code"),
    (57, "EBADSLT", "Invalid slot"),
    (59, "EBFONT", "Bad font file format"),
    (60, "ENOSTR", "Device not a stream"),
    (61, "ENODATA", "No data available"),
    (62, "ETIME", "Timer expired"),
    (63, "ENOSR", "Out of streams resources"),
    (64, "ENONET", "Machine is not on the network"),
    (65, "ENOPKG", "Package not installed"),
    (66, "EREMOTE", "Object is remote"),
    (67, "ENOLINK", "Link has been severed"),
    (68, "EADV", "Advertise error"),
    (69, "ESRMNT", "Srmount error"),
    (70, "ECOMM", "Communication error on send"),
    (71, "EPROTO", "Protocol error"),
    (72, "EMULTIHOP", "Multihop attempted"),
    (73, "EDOTDOT", "RFS specific error"),
    (74, "EBADMSG", "Not a data message"),
    (75, "EOVERFLOW", "Value too large for defined data type"),
    (76, "ENOTUNIQ", "Name not unique on network"),
    (77, "EBADFD", "File descriptor in bad state"),
    (78, "EREMCHG", "Remote address changed"),
    (79, "ELIBACC", "Can not access a needed shared library"),
    (80, "ELIBBAD", "Accessing a corrupted shared library"),
    (81, "ELIBSCN", ".lib section in a.out corrupted"),
    (
        82,
        "ELIBMAX",
        "Attempting to link in too many shared libraries",
    ),
    (83, "ELIBEXEC", "Cannot exec a shared library directly"),
    (84, "EILSEQ", "Illegal byte sequence"),
    (
        85,
        "ERESTART",
        "Interrupted system call should be restarted",
    ),
    (86, "ESTRPIPE", "Streams pipe error"),
    (87, "EUSERS", "Too many users"),
    (88, "ENOTSOCK", "Socket operation on non-socket"),
    (89, "EDESTADDRREQ", "Destination address required"),
    (90, "EMSGSIZE", "Message too long"),
    (91, "EPROTOTYPE", "Protocol wrong type for socket"),
    (92, "ENOPROTOOPT", "Protocol not available"),
    (93, "EPROTONOSUPPORT", "Protocol not supported"),
    (94, "ESOCKTNOSUPPORT", "Socket type not supported"),
    (
        95,
        "EOPNOTSUPP",
        "Operation not supported on transport endpoint",
    ),
    (96, "EPFNOSUPPORT", "Protocol family not supported"),
    (
        97,
        "EAFNOSUPPORT",
        "Address family not supported by protocol",
    ),
    (98, "EADDRINUSE", "Address already in use"),
    (99, "EADDRNOTAVAIL", "Cannot assign requested address"),
    (100, "ENETDOWN", "Network is down"),
    (101, "ENETUNREACH", "Network is unreachable"),
    (
        102,
        "ENETRESET",
        "Network dropped connection because of reset",
    ),
    (103, "ECONNABORTED", "Software caused connection abort"),
    (104, "ECONNRESET", "Connection reset by peer"),
    (105, "ENOBUFS", "No buffer space available"),
    (106, "EISCONN", "Transport endpoint is already connected"),
    (107, "ENOTCONN", "Transport endpoint is not connected"),
    (
        108,
        "ESHUTDOWN",
        "Cannot send after transport endpoint shutdown",
    ),
    (109, "ETOOMANYREFS", "Too many references: cannot splice"),
    (110, "ETIMEDOUT", "Connection timed out"),
    (111, "ECONNREFUSED", "Connection refused"),
    (112, "EHOSTDOWN", "Host is down"),
    (113, "EHOSTUNREACH", "No route to host"),
    (114, "EALREADY", "Operation already in progress"),
    (115, "EINPROGRESS", "Operation now in progress"),
    (116, "ESTALE", "Stale file handle"),
    (117, "EUCLEAN", "Structure needs cleaning"),
    (118, "ENOTNAM", "Not a XENIX named type file"),
    (119, "ENAVAIL", "No XENIX semaphores available"),
    (120, "EISNAM", "Is a named type file"),
    (121, "EREMOTEIO", "Remote I/O error"),
    (122, "EDQUOT", "Quota exceeded"),
    (123, "ENOMEDIUM", "No medium found"),
    (124, "EMEDIUMTYPE", "Wrong medium type"),
    (125, "ECANCELED", "Operation Canceled"),
    (126, "ENOKEY", "Required key not available"),
    (127, "EKEYEXPIRED", "Key has expired"),
    (128, "EKEYREVOKED", "Key has been revoked"),
    (129, "EKEYREJECTED", "Key was rejected by service"),
    (130, "EOWNERDEAD", "Owner died"),
    (131, "ENOTRECOVERABLE", "State not recoverable"),
    (132, "ERFKILL", "Operation not possible due to RF-kill"),
    (133, "EHWPOISON", "Memory page has hardware error"),
    (512, "ERESTARTSYS", "Restart system call"),
    (513, "ERESTARTNOINTR", "Restart system call"),
    (514, "ERESTARTNOHAND", "Restart if no handler"),
    (516, "ERESTART_RESTARTBLOCK", "Restart via restart_syscall"),
];
