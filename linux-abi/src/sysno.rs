//! x86-64 system call numbers and their names.
//!
//! Generated from the kernel's `asm/unistd_64.h`; one constant per call, plus
//! [`syscall_name`] for logs and strace output.

/// `read`.
pub const SYS_READ: u64 = 0;
/// `write`.
pub const SYS_WRITE: u64 = 1;
/// `open`.
pub const SYS_OPEN: u64 = 2;
/// `close`.
pub const SYS_CLOSE: u64 = 3;
/// `stat`.
pub const SYS_STAT: u64 = 4;
/// `fstat`.
pub const SYS_FSTAT: u64 = 5;
/// `lstat`.
pub const SYS_LSTAT: u64 = 6;
/// `poll`.
pub const SYS_POLL: u64 = 7;
/// `lseek`.
pub const SYS_LSEEK: u64 = 8;
/// `mmap`.
pub const SYS_MMAP: u64 = 9;
/// `mprotect`.
pub const SYS_MPROTECT: u64 = 10;
/// `munmap`.
pub const SYS_MUNMAP: u64 = 11;
/// `brk`.
pub const SYS_BRK: u64 = 12;
/// `rt_sigaction`.
pub const SYS_RT_SIGACTION: u64 = 13;
/// `rt_sigprocmask`.
pub const SYS_RT_SIGPROCMASK: u64 = 14;
/// `rt_sigreturn`.
pub const SYS_RT_SIGRETURN: u64 = 15;
/// `ioctl`.
pub const SYS_IOCTL: u64 = 16;
/// `pread64`.
pub const SYS_PREAD64: u64 = 17;
/// `pwrite64`.
pub const SYS_PWRITE64: u64 = 18;
/// `readv`.
pub const SYS_READV: u64 = 19;
/// `writev`.
pub const SYS_WRITEV: u64 = 20;
/// `access`.
pub const SYS_ACCESS: u64 = 21;
/// `pipe`.
pub const SYS_PIPE: u64 = 22;
/// `select`.
pub const SYS_SELECT: u64 = 23;
/// `sched_yield`.
pub const SYS_SCHED_YIELD: u64 = 24;
/// `mremap`.
pub const SYS_MREMAP: u64 = 25;
/// `msync`.
pub const SYS_MSYNC: u64 = 26;
/// `mincore`.
pub const SYS_MINCORE: u64 = 27;
/// `madvise`.
pub const SYS_MADVISE: u64 = 28;
/// `shmget`.
pub const SYS_SHMGET: u64 = 29;
/// `shmat`.
pub const SYS_SHMAT: u64 = 30;
/// `shmctl`.
pub const SYS_SHMCTL: u64 = 31;
/// `dup`.
pub const SYS_DUP: u64 = 32;
/// `dup2`.
pub const SYS_DUP2: u64 = 33;
/// `pause`.
pub const SYS_PAUSE: u64 = 34;
/// `nanosleep`.
pub const SYS_NANOSLEEP: u64 = 35;
/// `getitimer`.
pub const SYS_GETITIMER: u64 = 36;
/// `alarm`.
pub const SYS_ALARM: u64 = 37;
/// `setitimer`.
pub const SYS_SETITIMER: u64 = 38;
/// `getpid`.
pub const SYS_GETPID: u64 = 39;
/// `sendfile`.
pub const SYS_SENDFILE: u64 = 40;
/// `socket`.
pub const SYS_SOCKET: u64 = 41;
/// `connect`.
pub const SYS_CONNECT: u64 = 42;
/// `accept`.
pub const SYS_ACCEPT: u64 = 43;
/// `sendto`.
pub const SYS_SENDTO: u64 = 44;
/// `recvfrom`.
pub const SYS_RECVFROM: u64 = 45;
/// `sendmsg`.
pub const SYS_SENDMSG: u64 = 46;
/// `recvmsg`.
pub const SYS_RECVMSG: u64 = 47;
/// `shutdown`.
pub const SYS_SHUTDOWN: u64 = 48;
/// `bind`.
pub const SYS_BIND: u64 = 49;
/// `listen`.
pub const SYS_LISTEN: u64 = 50;
/// `getsockname`.
pub const SYS_GETSOCKNAME: u64 = 51;
/// `getpeername`.
pub const SYS_GETPEERNAME: u64 = 52;
/// `socketpair`.
pub const SYS_SOCKETPAIR: u64 = 53;
/// `setsockopt`.
pub const SYS_SETSOCKOPT: u64 = 54;
/// `getsockopt`.
pub const SYS_GETSOCKOPT: u64 = 55;
/// `clone`.
pub const SYS_CLONE: u64 = 56;
/// `fork`.
pub const SYS_FORK: u64 = 57;
/// `vfork`.
pub const SYS_VFORK: u64 = 58;
/// `execve`.
pub const SYS_EXECVE: u64 = 59;
/// `exit`.
pub const SYS_EXIT: u64 = 60;
/// `wait4`.
pub const SYS_WAIT4: u64 = 61;
/// `kill`.
pub const SYS_KILL: u64 = 62;
/// `uname`.
pub const SYS_UNAME: u64 = 63;
/// `semget`.
pub const SYS_SEMGET: u64 = 64;
/// `semop`.
pub const SYS_SEMOP: u64 = 65;
/// `semctl`.
pub const SYS_SEMCTL: u64 = 66;
/// `shmdt`.
pub const SYS_SHMDT: u64 = 67;
/// `msgget`.
pub const SYS_MSGGET: u64 = 68;
/// `msgsnd`.
pub const SYS_MSGSND: u64 = 69;
/// `msgrcv`.
pub const SYS_MSGRCV: u64 = 70;
/// `msgctl`.
pub const SYS_MSGCTL: u64 = 71;
/// `fcntl`.
pub const SYS_FCNTL: u64 = 72;
/// `flock`.
pub const SYS_FLOCK: u64 = 73;
/// `fsync`.
pub const SYS_FSYNC: u64 = 74;
/// `fdatasync`.
pub const SYS_FDATASYNC: u64 = 75;
/// `truncate`.
pub const SYS_TRUNCATE: u64 = 76;
/// `ftruncate`.
pub const SYS_FTRUNCATE: u64 = 77;
/// `getdents`.
pub const SYS_GETDENTS: u64 = 78;
/// `getcwd`.
pub const SYS_GETCWD: u64 = 79;
/// `chdir`.
pub const SYS_CHDIR: u64 = 80;
/// `fchdir`.
pub const SYS_FCHDIR: u64 = 81;
/// `rename`.
pub const SYS_RENAME: u64 = 82;
/// `mkdir`.
pub const SYS_MKDIR: u64 = 83;
/// `rmdir`.
pub const SYS_RMDIR: u64 = 84;
/// `creat`.
pub const SYS_CREAT: u64 = 85;
/// `link`.
pub const SYS_LINK: u64 = 86;
/// `unlink`.
pub const SYS_UNLINK: u64 = 87;
/// `symlink`.
pub const SYS_SYMLINK: u64 = 88;
/// `readlink`.
pub const SYS_READLINK: u64 = 89;
/// `chmod`.
pub const SYS_CHMOD: u64 = 90;
/// `fchmod`.
pub const SYS_FCHMOD: u64 = 91;
/// `chown`.
pub const SYS_CHOWN: u64 = 92;
/// `fchown`.
pub const SYS_FCHOWN: u64 = 93;
/// `lchown`.
pub const SYS_LCHOWN: u64 = 94;
/// `umask`.
pub const SYS_UMASK: u64 = 95;
/// `gettimeofday`.
pub const SYS_GETTIMEOFDAY: u64 = 96;
/// `getrlimit`.
pub const SYS_GETRLIMIT: u64 = 97;
/// `getrusage`.
pub const SYS_GETRUSAGE: u64 = 98;
/// `sysinfo`.
pub const SYS_SYSINFO: u64 = 99;
/// `times`.
pub const SYS_TIMES: u64 = 100;
/// `ptrace`.
pub const SYS_PTRACE: u64 = 101;
/// `getuid`.
pub const SYS_GETUID: u64 = 102;
/// `syslog`.
pub const SYS_SYSLOG: u64 = 103;
/// `getgid`.
pub const SYS_GETGID: u64 = 104;
/// `setuid`.
pub const SYS_SETUID: u64 = 105;
/// `setgid`.
pub const SYS_SETGID: u64 = 106;
/// `geteuid`.
pub const SYS_GETEUID: u64 = 107;
/// `getegid`.
pub const SYS_GETEGID: u64 = 108;
/// `setpgid`.
pub const SYS_SETPGID: u64 = 109;
/// `getppid`.
pub const SYS_GETPPID: u64 = 110;
/// `getpgrp`.
pub const SYS_GETPGRP: u64 = 111;
/// `setsid`.
pub const SYS_SETSID: u64 = 112;
/// `setreuid`.
pub const SYS_SETREUID: u64 = 113;
/// `setregid`.
pub const SYS_SETREGID: u64 = 114;
/// `getgroups`.
pub const SYS_GETGROUPS: u64 = 115;
/// `setgroups`.
pub const SYS_SETGROUPS: u64 = 116;
/// `setresuid`.
pub const SYS_SETRESUID: u64 = 117;
/// `getresuid`.
pub const SYS_GETRESUID: u64 = 118;
/// `setresgid`.
pub const SYS_SETRESGID: u64 = 119;
/// `getresgid`.
pub const SYS_GETRESGID: u64 = 120;
/// `getpgid`.
pub const SYS_GETPGID: u64 = 121;
/// `setfsuid`.
pub const SYS_SETFSUID: u64 = 122;
/// `setfsgid`.
pub const SYS_SETFSGID: u64 = 123;
/// `getsid`.
pub const SYS_GETSID: u64 = 124;
/// `capget`.
pub const SYS_CAPGET: u64 = 125;
/// `capset`.
pub const SYS_CAPSET: u64 = 126;
/// `rt_sigpending`.
pub const SYS_RT_SIGPENDING: u64 = 127;
/// `rt_sigtimedwait`.
pub const SYS_RT_SIGTIMEDWAIT: u64 = 128;
/// `rt_sigqueueinfo`.
pub const SYS_RT_SIGQUEUEINFO: u64 = 129;
/// `rt_sigsuspend`.
pub const SYS_RT_SIGSUSPEND: u64 = 130;
/// `sigaltstack`.
pub const SYS_SIGALTSTACK: u64 = 131;
/// `utime`.
pub const SYS_UTIME: u64 = 132;
/// `mknod`.
pub const SYS_MKNOD: u64 = 133;
/// `uselib`.
pub const SYS_USELIB: u64 = 134;
/// `personality`.
pub const SYS_PERSONALITY: u64 = 135;
/// `ustat`.
pub const SYS_USTAT: u64 = 136;
/// `statfs`.
pub const SYS_STATFS: u64 = 137;
/// `fstatfs`.
pub const SYS_FSTATFS: u64 = 138;
/// `sysfs`.
pub const SYS_SYSFS: u64 = 139;
/// `getpriority`.
pub const SYS_GETPRIORITY: u64 = 140;
/// `setpriority`.
pub const SYS_SETPRIORITY: u64 = 141;
/// `sched_setparam`.
pub const SYS_SCHED_SETPARAM: u64 = 142;
/// `sched_getparam`.
pub const SYS_SCHED_GETPARAM: u64 = 143;
/// `sched_setscheduler`.
pub const SYS_SCHED_SETSCHEDULER: u64 = 144;
/// `sched_getscheduler`.
pub const SYS_SCHED_GETSCHEDULER: u64 = 145;
/// `sched_get_priority_max`.
pub const SYS_SCHED_GET_PRIORITY_MAX: u64 = 146;
/// `sched_get_priority_min`.
pub const SYS_SCHED_GET_PRIORITY_MIN: u64 = 147;
/// `sched_rr_get_interval`.
pub const SYS_SCHED_RR_GET_INTERVAL: u64 = 148;
/// `mlock`.
pub const SYS_MLOCK: u64 = 149;
/// `munlock`.
pub const SYS_MUNLOCK: u64 = 150;
/// `mlockall`.
pub const SYS_MLOCKALL: u64 = 151;
/// `munlockall`.
pub const SYS_MUNLOCKALL: u64 = 152;
/// `vhangup`.
pub const SYS_VHANGUP: u64 = 153;
/// `modify_ldt`.
pub const SYS_MODIFY_LDT: u64 = 154;
/// `pivot_root`.
pub const SYS_PIVOT_ROOT: u64 = 155;
/// `_sysctl`.
pub const SYS__SYSCTL: u64 = 156;
/// `prctl`.
pub const SYS_PRCTL: u64 = 157;
/// `arch_prctl`.
pub const SYS_ARCH_PRCTL: u64 = 158;
/// `adjtimex`.
pub const SYS_ADJTIMEX: u64 = 159;
/// `setrlimit`.
pub const SYS_SETRLIMIT: u64 = 160;
/// `chroot`.
pub const SYS_CHROOT: u64 = 161;
/// `sync`.
pub const SYS_SYNC: u64 = 162;
/// `acct`.
pub const SYS_ACCT: u64 = 163;
/// `settimeofday`.
pub const SYS_SETTIMEOFDAY: u64 = 164;
/// `mount`.
pub const SYS_MOUNT: u64 = 165;
/// `umount2`.
pub const SYS_UMOUNT2: u64 = 166;
/// `swapon`.
pub const SYS_SWAPON: u64 = 167;
/// `swapoff`.
pub const SYS_SWAPOFF: u64 = 168;
/// `reboot`.
pub const SYS_REBOOT: u64 = 169;
/// `sethostname`.
pub const SYS_SETHOSTNAME: u64 = 170;
/// `setdomainname`.
pub const SYS_SETDOMAINNAME: u64 = 171;
/// `iopl`.
pub const SYS_IOPL: u64 = 172;
/// `ioperm`.
pub const SYS_IOPERM: u64 = 173;
/// `create_module`.
pub const SYS_CREATE_MODULE: u64 = 174;
/// `init_module`.
pub const SYS_INIT_MODULE: u64 = 175;
/// `delete_module`.
pub const SYS_DELETE_MODULE: u64 = 176;
/// `get_kernel_syms`.
pub const SYS_GET_KERNEL_SYMS: u64 = 177;
/// `query_module`.
pub const SYS_QUERY_MODULE: u64 = 178;
/// `quotactl`.
pub const SYS_QUOTACTL: u64 = 179;
/// `nfsservctl`.
pub const SYS_NFSSERVCTL: u64 = 180;
/// `getpmsg`.
pub const SYS_GETPMSG: u64 = 181;
/// `putpmsg`.
pub const SYS_PUTPMSG: u64 = 182;
/// `afs_syscall`.
pub const SYS_AFS_SYSCALL: u64 = 183;
/// `tuxcall`.
pub const SYS_TUXCALL: u64 = 184;
/// `security`.
pub const SYS_SECURITY: u64 = 185;
/// `gettid`.
pub const SYS_GETTID: u64 = 186;
/// `readahead`.
pub const SYS_READAHEAD: u64 = 187;
/// `setxattr`.
pub const SYS_SETXATTR: u64 = 188;
/// `lsetxattr`.
pub const SYS_LSETXATTR: u64 = 189;
/// `fsetxattr`.
pub const SYS_FSETXATTR: u64 = 190;
/// `getxattr`.
pub const SYS_GETXATTR: u64 = 191;
/// `lgetxattr`.
pub const SYS_LGETXATTR: u64 = 192;
/// `fgetxattr`.
pub const SYS_FGETXATTR: u64 = 193;
/// `listxattr`.
pub const SYS_LISTXATTR: u64 = 194;
/// `llistxattr`.
pub const SYS_LLISTXATTR: u64 = 195;
/// `flistxattr`.
pub const SYS_FLISTXATTR: u64 = 196;
/// `removexattr`.
pub const SYS_REMOVEXATTR: u64 = 197;
/// `lremovexattr`.
pub const SYS_LREMOVEXATTR: u64 = 198;
/// `fremovexattr`.
pub const SYS_FREMOVEXATTR: u64 = 199;
/// `tkill`.
pub const SYS_TKILL: u64 = 200;
/// `time`.
pub const SYS_TIME: u64 = 201;
/// `futex`.
pub const SYS_FUTEX: u64 = 202;
/// `sched_setaffinity`.
pub const SYS_SCHED_SETAFFINITY: u64 = 203;
/// `sched_getaffinity`.
pub const SYS_SCHED_GETAFFINITY: u64 = 204;
/// `set_thread_area`.
pub const SYS_SET_THREAD_AREA: u64 = 205;
/// `io_setup`.
pub const SYS_IO_SETUP: u64 = 206;
/// `io_destroy`.
pub const SYS_IO_DESTROY: u64 = 207;
/// `io_getevents`.
pub const SYS_IO_GETEVENTS: u64 = 208;
/// `io_submit`.
pub const SYS_IO_SUBMIT: u64 = 209;
/// `io_cancel`.
pub const SYS_IO_CANCEL: u64 = 210;
/// `get_thread_area`.
pub const SYS_GET_THREAD_AREA: u64 = 211;
/// `lookup_dcookie`.
pub const SYS_LOOKUP_DCOOKIE: u64 = 212;
/// `epoll_create`.
pub const SYS_EPOLL_CREATE: u64 = 213;
/// `epoll_ctl_old`.
pub const SYS_EPOLL_CTL_OLD: u64 = 214;
/// `epoll_wait_old`.
pub const SYS_EPOLL_WAIT_OLD: u64 = 215;
/// `remap_file_pages`.
pub const SYS_REMAP_FILE_PAGES: u64 = 216;
/// `getdents64`.
pub const SYS_GETDENTS64: u64 = 217;
/// `set_tid_address`.
pub const SYS_SET_TID_ADDRESS: u64 = 218;
/// `restart_syscall`.
pub const SYS_RESTART_SYSCALL: u64 = 219;
/// `semtimedop`.
pub const SYS_SEMTIMEDOP: u64 = 220;
/// `fadvise64`.
pub const SYS_FADVISE64: u64 = 221;
/// `timer_create`.
pub const SYS_TIMER_CREATE: u64 = 222;
/// `timer_settime`.
pub const SYS_TIMER_SETTIME: u64 = 223;
/// `timer_gettime`.
pub const SYS_TIMER_GETTIME: u64 = 224;
/// `timer_getoverrun`.
pub const SYS_TIMER_GETOVERRUN: u64 = 225;
/// `timer_delete`.
pub const SYS_TIMER_DELETE: u64 = 226;
/// `clock_settime`.
pub const SYS_CLOCK_SETTIME: u64 = 227;
/// `clock_gettime`.
pub const SYS_CLOCK_GETTIME: u64 = 228;
/// `clock_getres`.
pub const SYS_CLOCK_GETRES: u64 = 229;
/// `clock_nanosleep`.
pub const SYS_CLOCK_NANOSLEEP: u64 = 230;
/// `exit_group`.
pub const SYS_EXIT_GROUP: u64 = 231;
/// `epoll_wait`.
pub const SYS_EPOLL_WAIT: u64 = 232;
/// `epoll_ctl`.
pub const SYS_EPOLL_CTL: u64 = 233;
/// `tgkill`.
pub const SYS_TGKILL: u64 = 234;
/// `utimes`.
pub const SYS_UTIMES: u64 = 235;
/// `vserver`.
pub const SYS_VSERVER: u64 = 236;
/// `mbind`.
pub const SYS_MBIND: u64 = 237;
/// `set_mempolicy`.
pub const SYS_SET_MEMPOLICY: u64 = 238;
/// `get_mempolicy`.
pub const SYS_GET_MEMPOLICY: u64 = 239;
/// `mq_open`.
pub const SYS_MQ_OPEN: u64 = 240;
/// `mq_unlink`.
pub const SYS_MQ_UNLINK: u64 = 241;
/// `mq_timedsend`.
pub const SYS_MQ_TIMEDSEND: u64 = 242;
/// `mq_timedreceive`.
pub const SYS_MQ_TIMEDRECEIVE: u64 = 243;
/// `mq_notify`.
pub const SYS_MQ_NOTIFY: u64 = 244;
/// `mq_getsetattr`.
pub const SYS_MQ_GETSETATTR: u64 = 245;
/// `kexec_load`.
pub const SYS_KEXEC_LOAD: u64 = 246;
/// `waitid`.
pub const SYS_WAITID: u64 = 247;
/// `add_key`.
pub const SYS_ADD_KEY: u64 = 248;
/// `request_key`.
pub const SYS_REQUEST_KEY: u64 = 249;
/// `keyctl`.
pub const SYS_KEYCTL: u64 = 250;
/// `ioprio_set`.
pub const SYS_IOPRIO_SET: u64 = 251;
/// `ioprio_get`.
pub const SYS_IOPRIO_GET: u64 = 252;
/// `inotify_init`.
pub const SYS_INOTIFY_INIT: u64 = 253;
/// `inotify_add_watch`.
pub const SYS_INOTIFY_ADD_WATCH: u64 = 254;
/// `inotify_rm_watch`.
pub const SYS_INOTIFY_RM_WATCH: u64 = 255;
/// `migrate_pages`.
pub const SYS_MIGRATE_PAGES: u64 = 256;
/// `openat`.
pub const SYS_OPENAT: u64 = 257;
/// `mkdirat`.
pub const SYS_MKDIRAT: u64 = 258;
/// `mknodat`.
pub const SYS_MKNODAT: u64 = 259;
/// `fchownat`.
pub const SYS_FCHOWNAT: u64 = 260;
/// `futimesat`.
pub const SYS_FUTIMESAT: u64 = 261;
/// `newfstatat`.
pub const SYS_NEWFSTATAT: u64 = 262;
/// `unlinkat`.
pub const SYS_UNLINKAT: u64 = 263;
/// `renameat`.
pub const SYS_RENAMEAT: u64 = 264;
/// `linkat`.
pub const SYS_LINKAT: u64 = 265;
/// `symlinkat`.
pub const SYS_SYMLINKAT: u64 = 266;
/// `readlinkat`.
pub const SYS_READLINKAT: u64 = 267;
/// `fchmodat`.
pub const SYS_FCHMODAT: u64 = 268;
/// `faccessat`.
pub const SYS_FACCESSAT: u64 = 269;
/// `pselect6`.
pub const SYS_PSELECT6: u64 = 270;
/// `ppoll`.
pub const SYS_PPOLL: u64 = 271;
/// `unshare`.
pub const SYS_UNSHARE: u64 = 272;
/// `set_robust_list`.
pub const SYS_SET_ROBUST_LIST: u64 = 273;
/// `get_robust_list`.
pub const SYS_GET_ROBUST_LIST: u64 = 274;
/// `splice`.
pub const SYS_SPLICE: u64 = 275;
/// `tee`.
pub const SYS_TEE: u64 = 276;
/// `sync_file_range`.
pub const SYS_SYNC_FILE_RANGE: u64 = 277;
/// `vmsplice`.
pub const SYS_VMSPLICE: u64 = 278;
/// `move_pages`.
pub const SYS_MOVE_PAGES: u64 = 279;
/// `utimensat`.
pub const SYS_UTIMENSAT: u64 = 280;
/// `epoll_pwait`.
pub const SYS_EPOLL_PWAIT: u64 = 281;
/// `signalfd`.
pub const SYS_SIGNALFD: u64 = 282;
/// `timerfd_create`.
pub const SYS_TIMERFD_CREATE: u64 = 283;
/// `eventfd`.
pub const SYS_EVENTFD: u64 = 284;
/// `fallocate`.
pub const SYS_FALLOCATE: u64 = 285;
/// `timerfd_settime`.
pub const SYS_TIMERFD_SETTIME: u64 = 286;
/// `timerfd_gettime`.
pub const SYS_TIMERFD_GETTIME: u64 = 287;
/// `accept4`.
pub const SYS_ACCEPT4: u64 = 288;
/// `signalfd4`.
pub const SYS_SIGNALFD4: u64 = 289;
/// `eventfd2`.
pub const SYS_EVENTFD2: u64 = 290;
/// `epoll_create1`.
pub const SYS_EPOLL_CREATE1: u64 = 291;
/// `dup3`.
pub const SYS_DUP3: u64 = 292;
/// `pipe2`.
pub const SYS_PIPE2: u64 = 293;
/// `inotify_init1`.
pub const SYS_INOTIFY_INIT1: u64 = 294;
/// `preadv`.
pub const SYS_PREADV: u64 = 295;
/// `pwritev`.
pub const SYS_PWRITEV: u64 = 296;
/// `rt_tgsigqueueinfo`.
pub const SYS_RT_TGSIGQUEUEINFO: u64 = 297;
/// `perf_event_open`.
pub const SYS_PERF_EVENT_OPEN: u64 = 298;
/// `recvmmsg`.
pub const SYS_RECVMMSG: u64 = 299;
/// `fanotify_init`.
pub const SYS_FANOTIFY_INIT: u64 = 300;
/// `fanotify_mark`.
pub const SYS_FANOTIFY_MARK: u64 = 301;
/// `prlimit64`.
pub const SYS_PRLIMIT64: u64 = 302;
/// `name_to_handle_at`.
pub const SYS_NAME_TO_HANDLE_AT: u64 = 303;
/// `open_by_handle_at`.
pub const SYS_OPEN_BY_HANDLE_AT: u64 = 304;
/// `clock_adjtime`.
pub const SYS_CLOCK_ADJTIME: u64 = 305;
/// `syncfs`.
pub const SYS_SYNCFS: u64 = 306;
/// `sendmmsg`.
pub const SYS_SENDMMSG: u64 = 307;
/// `setns`.
pub const SYS_SETNS: u64 = 308;
/// `getcpu`.
pub const SYS_GETCPU: u64 = 309;
/// `process_vm_readv`.
pub const SYS_PROCESS_VM_READV: u64 = 310;
/// `process_vm_writev`.
pub const SYS_PROCESS_VM_WRITEV: u64 = 311;
/// `kcmp`.
pub const SYS_KCMP: u64 = 312;
/// `finit_module`.
pub const SYS_FINIT_MODULE: u64 = 313;
/// `sched_setattr`.
pub const SYS_SCHED_SETATTR: u64 = 314;
/// `sched_getattr`.
pub const SYS_SCHED_GETATTR: u64 = 315;
/// `renameat2`.
pub const SYS_RENAMEAT2: u64 = 316;
/// `seccomp`.
pub const SYS_SECCOMP: u64 = 317;
/// `getrandom`.
pub const SYS_GETRANDOM: u64 = 318;
/// `memfd_create`.
pub const SYS_MEMFD_CREATE: u64 = 319;
/// `kexec_file_load`.
pub const SYS_KEXEC_FILE_LOAD: u64 = 320;
/// `bpf`.
pub const SYS_BPF: u64 = 321;
/// `execveat`.
pub const SYS_EXECVEAT: u64 = 322;
/// `userfaultfd`.
pub const SYS_USERFAULTFD: u64 = 323;
/// `membarrier`.
pub const SYS_MEMBARRIER: u64 = 324;
/// `mlock2`.
pub const SYS_MLOCK2: u64 = 325;
/// `copy_file_range`.
pub const SYS_COPY_FILE_RANGE: u64 = 326;
/// `preadv2`.
pub const SYS_PREADV2: u64 = 327;
/// `pwritev2`.
pub const SYS_PWRITEV2: u64 = 328;
/// `pkey_mprotect`.
pub const SYS_PKEY_MPROTECT: u64 = 329;
/// `pkey_alloc`.
pub const SYS_PKEY_ALLOC: u64 = 330;
/// `pkey_free`.
pub const SYS_PKEY_FREE: u64 = 331;
/// `statx`.
pub const SYS_STATX: u64 = 332;
/// `io_pgetevents`.
pub const SYS_IO_PGETEVENTS: u64 = 333;
/// `rseq`.
pub const SYS_RSEQ: u64 = 334;
/// `pidfd_send_signal`.
pub const SYS_PIDFD_SEND_SIGNAL: u64 = 424;
/// `io_uring_setup`.
pub const SYS_IO_URING_SETUP: u64 = 425;
/// `io_uring_enter`.
pub const SYS_IO_URING_ENTER: u64 = 426;
/// `io_uring_register`.
pub const SYS_IO_URING_REGISTER: u64 = 427;
/// `open_tree`.
pub const SYS_OPEN_TREE: u64 = 428;
/// `move_mount`.
pub const SYS_MOVE_MOUNT: u64 = 429;
/// `fsopen`.
pub const SYS_FSOPEN: u64 = 430;
/// `fsconfig`.
pub const SYS_FSCONFIG: u64 = 431;
/// `fsmount`.
pub const SYS_FSMOUNT: u64 = 432;
/// `fspick`.
pub const SYS_FSPICK: u64 = 433;
/// `pidfd_open`.
pub const SYS_PIDFD_OPEN: u64 = 434;
/// `clone3`.
pub const SYS_CLONE3: u64 = 435;
/// `close_range`.
pub const SYS_CLOSE_RANGE: u64 = 436;
/// `openat2`.
pub const SYS_OPENAT2: u64 = 437;
/// `pidfd_getfd`.
pub const SYS_PIDFD_GETFD: u64 = 438;
/// `faccessat2`.
pub const SYS_FACCESSAT2: u64 = 439;
/// `process_madvise`.
pub const SYS_PROCESS_MADVISE: u64 = 440;
/// `epoll_pwait2`.
pub const SYS_EPOLL_PWAIT2: u64 = 441;
/// `mount_setattr`.
pub const SYS_MOUNT_SETATTR: u64 = 442;
/// `quotactl_fd`.
pub const SYS_QUOTACTL_FD: u64 = 443;
/// `landlock_create_ruleset`.
pub const SYS_LANDLOCK_CREATE_RULESET: u64 = 444;
/// `landlock_add_rule`.
pub const SYS_LANDLOCK_ADD_RULE: u64 = 445;
/// `landlock_restrict_self`.
pub const SYS_LANDLOCK_RESTRICT_SELF: u64 = 446;
/// `memfd_secret`.
pub const SYS_MEMFD_SECRET: u64 = 447;
/// `process_mrelease`.
pub const SYS_PROCESS_MRELEASE: u64 = 448;
/// `futex_waitv`.
pub const SYS_FUTEX_WAITV: u64 = 449;
/// `set_mempolicy_home_node`.
pub const SYS_SET_MEMPOLICY_HOME_NODE: u64 = 450;

/// Every known x86-64 system call as `(number, name)`, in number order.
pub const SYSCALLS: &[(u64, &str)] = &[
    (0, "read"),
    (1, "write"),
    (2, "open"),
    (3, "close"),
    (4, "stat"),
    (5, "fstat"),
    (6, "lstat"),
    (7, "poll"),
    (8, "lseek"),
    (9, "mmap"),
    (10, "mprotect"),
    (11, "munmap"),
    (12, "brk"),
    (13, "rt_sigaction"),
    (14, "rt_sigprocmask"),
    (15, "rt_sigreturn"),
    (16, "ioctl"),
    (17, "pread64"),
    (18, "pwrite64"),
    (19, "readv"),
    (20, "writev"),
    (21, "access"),
    (22, "pipe"),
    (23, "select"),
    (24, "sched_yield"),
    (25, "mremap"),
    (26, "msync"),
    (27, "mincore"),
    (28, "madvise"),
    (29, "shmget"),
    (30, "shmat"),
    (31, "shmctl"),
    (32, "dup"),
    (33, "dup2"),
    (34, "pause"),
    (35, "nanosleep"),
    (36, "getitimer"),
    (37, "alarm"),
    (38, "setitimer"),
    (39, "getpid"),
    (40, "sendfile"),
    (41, "socket"),
    (42, "connect"),
    (43, "accept"),
    (44, "sendto"),
    (45, "recvfrom"),
    (46, "sendmsg"),
    (47, "recvmsg"),
    (48, "shutdown"),
    (49, "bind"),
    (50, "listen"),
    (51, "getsockname"),
    (52, "getpeername"),
    (53, "socketpair"),
    (54, "setsockopt"),
    (55, "getsockopt"),
    (56, "clone"),
    (57, "fork"),
    (58, "vfork"),
    (59, "execve"),
    (60, "exit"),
    (61, "wait4"),
    (62, "kill"),
    (63, "uname"),
    (64, "semget"),
    (65, "semop"),
    (66, "semctl"),
    (67, "shmdt"),
    (68, "msgget"),
    (69, "msgsnd"),
    (70, "msgrcv"),
    (71, "msgctl"),
    (72, "fcntl"),
    (73, "flock"),
    (74, "fsync"),
    (75, "fdatasync"),
    (76, "truncate"),
    (77, "ftruncate"),
    (78, "getdents"),
    (79, "getcwd"),
    (80, "chdir"),
    (81, "fchdir"),
    (82, "rename"),
    (83, "mkdir"),
    (84, "rmdir"),
    (85, "creat"),
    (86, "link"),
    (87, "unlink"),
    (88, "symlink"),
    (89, "readlink"),
    (90, "chmod"),
    (91, "fchmod"),
    (92, "chown"),
    (93, "fchown"),
    (94, "lchown"),
    (95, "umask"),
    (96, "gettimeofday"),
    (97, "getrlimit"),
    (98, "getrusage"),
    (99, "sysinfo"),
    (100, "times"),
    (101, "ptrace"),
    (102, "getuid"),
    (103, "syslog"),
    (104, "getgid"),
    (105, "setuid"),
    (106, "setgid"),
    (107, "geteuid"),
    (108, "getegid"),
    (109, "setpgid"),
    (110, "getppid"),
    (111, "getpgrp"),
    (112, "setsid"),
    (113, "setreuid"),
    (114, "setregid"),
    (115, "getgroups"),
    (116, "setgroups"),
    (117, "setresuid"),
    (118, "getresuid"),
    (119, "setresgid"),
    (120, "getresgid"),
    (121, "getpgid"),
    (122, "setfsuid"),
    (123, "setfsgid"),
    (124, "getsid"),
    (125, "capget"),
    (126, "capset"),
    (127, "rt_sigpending"),
    (128, "rt_sigtimedwait"),
    (129, "rt_sigqueueinfo"),
    (130, "rt_sigsuspend"),
    (131, "sigaltstack"),
    (132, "utime"),
    (133, "mknod"),
    (134, "uselib"),
    (135, "personality"),
    (136, "ustat"),
    (137, "statfs"),
    (138, "fstatfs"),
    (139, "sysfs"),
    (140, "getpriority"),
    (141, "setpriority"),
    (142, "sched_setparam"),
    (143, "sched_getparam"),
    (144, "sched_setscheduler"),
    (145, "sched_getscheduler"),
    (146, "sched_get_priority_max"),
    (147, "sched_get_priority_min"),
    (148, "sched_rr_get_interval"),
    (149, "mlock"),
    (150, "munlock"),
    (151, "mlockall"),
    (152, "munlockall"),
    (153, "vhangup"),
    (154, "modify_ldt"),
    (155, "pivot_root"),
    (156, "_sysctl"),
    (157, "prctl"),
    (158, "arch_prctl"),
    (159, "adjtimex"),
    (160, "setrlimit"),
    (161, "chroot"),
    (162, "sync"),
    (163, "acct"),
    (164, "settimeofday"),
    (165, "mount"),
    (166, "umount2"),
    (167, "swapon"),
    (168, "swapoff"),
    (169, "reboot"),
    (170, "sethostname"),
    (171, "setdomainname"),
    (172, "iopl"),
    (173, "ioperm"),
    (174, "create_module"),
    (175, "init_module"),
    (176, "delete_module"),
    (177, "get_kernel_syms"),
    (178, "query_module"),
    (179, "quotactl"),
    (180, "nfsservctl"),
    (181, "getpmsg"),
    (182, "putpmsg"),
    (183, "afs_syscall"),
    (184, "tuxcall"),
    (185, "security"),
    (186, "gettid"),
    (187, "readahead"),
    (188, "setxattr"),
    (189, "lsetxattr"),
    (190, "fsetxattr"),
    (191, "getxattr"),
    (192, "lgetxattr"),
    (193, "fgetxattr"),
    (194, "listxattr"),
    (195, "llistxattr"),
    (196, "flistxattr"),
    (197, "removexattr"),
    (198, "lremovexattr"),
    (199, "fremovexattr"),
    (200, "tkill"),
    (201, "time"),
    (202, "futex"),
    (203, "sched_setaffinity"),
    (204, "sched_getaffinity"),
    (205, "set_thread_area"),
    (206, "io_setup"),
    (207, "io_destroy"),
    (208, "io_getevents"),
    (209, "io_submit"),
    (210, "io_cancel"),
    (211, "get_thread_area"),
    (212, "lookup_dcookie"),
    (213, "epoll_create"),
    (214, "epoll_ctl_old"),
    (215, "epoll_wait_old"),
    (216, "remap_file_pages"),
    (217, "getdents64"),
    (218, "set_tid_address"),
    (219, "restart_syscall"),
    (220, "semtimedop"),
    (221, "fadvise64"),
    (222, "timer_create"),
    (223, "timer_settime"),
    (224, "timer_gettime"),
    (225, "timer_getoverrun"),
    (226, "timer_delete"),
    (227, "clock_settime"),
    (228, "clock_gettime"),
    (229, "clock_getres"),
    (230, "clock_nanosleep"),
    (231, "exit_group"),
    (232, "epoll_wait"),
    (233, "epoll_ctl"),
    (234, "tgkill"),
    (235, "utimes"),
    (236, "vserver"),
    (237, "mbind"),
    (238, "set_mempolicy"),
    (239, "get_mempolicy"),
    (240, "mq_open"),
    (241, "mq_unlink"),
    (242, "mq_timedsend"),
    (243, "mq_timedreceive"),
    (244, "mq_notify"),
    (245, "mq_getsetattr"),
    (246, "kexec_load"),
    (247, "waitid"),
    (248, "add_key"),
    (249, "request_key"),
    (250, "keyctl"),
    (251, "ioprio_set"),
    (252, "ioprio_get"),
    (253, "inotify_init"),
    (254, "inotify_add_watch"),
    (255, "inotify_rm_watch"),
    (256, "migrate_pages"),
    (257, "openat"),
    (258, "mkdirat"),
    (259, "mknodat"),
    (260, "fchownat"),
    (261, "futimesat"),
    (262, "newfstatat"),
    (263, "unlinkat"),
    (264, "renameat"),
    (265, "linkat"),
    (266, "symlinkat"),
    (267, "readlinkat"),
    (268, "fchmodat"),
    (269, "faccessat"),
    (270, "pselect6"),
    (271, "ppoll"),
    (272, "unshare"),
    (273, "set_robust_list"),
    (274, "get_robust_list"),
    (275, "splice"),
    (276, "tee"),
    (277, "sync_file_range"),
    (278, "vmsplice"),
    (279, "move_pages"),
    (280, "utimensat"),
    (281, "epoll_pwait"),
    (282, "signalfd"),
    (283, "timerfd_create"),
    (284, "eventfd"),
    (285, "fallocate"),
    (286, "timerfd_settime"),
    (287, "timerfd_gettime"),
    (288, "accept4"),
    (289, "signalfd4"),
    (290, "eventfd2"),
    (291, "epoll_create1"),
    (292, "dup3"),
    (293, "pipe2"),
    (294, "inotify_init1"),
    (295, "preadv"),
    (296, "pwritev"),
    (297, "rt_tgsigqueueinfo"),
    (298, "perf_event_open"),
    (299, "recvmmsg"),
    (300, "fanotify_init"),
    (301, "fanotify_mark"),
    (302, "prlimit64"),
    (303, "name_to_handle_at"),
    (304, "open_by_handle_at"),
    (305, "clock_adjtime"),
    (306, "syncfs"),
    (307, "sendmmsg"),
    (308, "setns"),
    (309, "getcpu"),
    (310, "process_vm_readv"),
    (311, "process_vm_writev"),
    (312, "kcmp"),
    (313, "finit_module"),
    (314, "sched_setattr"),
    (315, "sched_getattr"),
    (316, "renameat2"),
    (317, "seccomp"),
    (318, "getrandom"),
    (319, "memfd_create"),
    (320, "kexec_file_load"),
    (321, "bpf"),
    (322, "execveat"),
    (323, "userfaultfd"),
    (324, "membarrier"),
    (325, "mlock2"),
    (326, "copy_file_range"),
    (327, "preadv2"),
    (328, "pwritev2"),
    (329, "pkey_mprotect"),
    (330, "pkey_alloc"),
    (331, "pkey_free"),
    (332, "statx"),
    (333, "io_pgetevents"),
    (334, "rseq"),
    (424, "pidfd_send_signal"),
    (425, "io_uring_setup"),
    (426, "io_uring_enter"),
    (427, "io_uring_register"),
    (428, "open_tree"),
    (429, "move_mount"),
    (430, "fsopen"),
    (431, "fsconfig"),
    (432, "fsmount"),
    (433, "fspick"),
    (434, "pidfd_open"),
    (435, "clone3"),
    (436, "close_range"),
    (437, "openat2"),
    (438, "pidfd_getfd"),
    (439, "faccessat2"),
    (440, "process_madvise"),
    (441, "epoll_pwait2"),
    (442, "mount_setattr"),
    (443, "quotactl_fd"),
    (444, "landlock_create_ruleset"),
    (445, "landlock_add_rule"),
    (446, "landlock_restrict_self"),
    (447, "memfd_secret"),
    (448, "process_mrelease"),
    (449, "futex_waitv"),
    (450, "set_mempolicy_home_node"),
];

/// The name of system call `nr`, or `None` for a number Linux does not define.
pub fn syscall_name(nr: u64) -> Option<&'static str> {
    SYSCALLS
        .binary_search_by_key(&nr, |&(n, _)| n)
        .ok()
        .map(|i| SYSCALLS[i].1)
}

/// One past the highest system call number Linux defines on x86-64.
pub const SYSCALL_COUNT: u64 = 451;
