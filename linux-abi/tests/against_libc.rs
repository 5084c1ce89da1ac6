//! The ABI numbers against the `libc` crate's (an independent transcription of the
//! same kernel headers): a typo in a generated constant fails here. Numbers libc does
//! not know are left out, and Linux-internal errnos (512 and up) have no libc
//! counterpart.

use linux_abi::Errno;
use linux_abi::sysno::*;

#[test]
fn system_call_numbers_match_libc() {
    assert_eq!(SYS_READ, libc::SYS_read as u64, "SYS_READ");
    assert_eq!(SYS_WRITE, libc::SYS_write as u64, "SYS_WRITE");
    assert_eq!(SYS_OPEN, libc::SYS_open as u64, "SYS_OPEN");
    assert_eq!(SYS_CLOSE, libc::SYS_close as u64, "SYS_CLOSE");
    assert_eq!(SYS_STAT, libc::SYS_stat as u64, "SYS_STAT");
    assert_eq!(SYS_FSTAT, libc::SYS_fstat as u64, "SYS_FSTAT");
    assert_eq!(SYS_LSTAT, libc::SYS_lstat as u64, "SYS_LSTAT");
    assert_eq!(SYS_POLL, libc::SYS_poll as u64, "SYS_POLL");
    assert_eq!(SYS_LSEEK, libc::SYS_lseek as u64, "SYS_LSEEK");
    assert_eq!(SYS_MMAP, libc::SYS_mmap as u64, "SYS_MMAP");
    assert_eq!(SYS_MPROTECT, libc::SYS_mprotect as u64, "SYS_MPROTECT");
    assert_eq!(SYS_MUNMAP, libc::SYS_munmap as u64, "SYS_MUNMAP");
    assert_eq!(SYS_BRK, libc::SYS_brk as u64, "SYS_BRK");
    assert_eq!(
        SYS_RT_SIGACTION,
        libc::SYS_rt_sigaction as u64,
        "SYS_RT_SIGACTION"
    );
    assert_eq!(
        SYS_RT_SIGPROCMASK,
        libc::SYS_rt_sigprocmask as u64,
        "SYS_RT_SIGPROCMASK"
    );
    assert_eq!(
        SYS_RT_SIGRETURN,
        libc::SYS_rt_sigreturn as u64,
        "SYS_RT_SIGRETURN"
    );
    assert_eq!(SYS_IOCTL, libc::SYS_ioctl as u64, "SYS_IOCTL");
    assert_eq!(SYS_PREAD64, libc::SYS_pread64 as u64, "SYS_PREAD64");
    assert_eq!(SYS_PWRITE64, libc::SYS_pwrite64 as u64, "SYS_PWRITE64");
    assert_eq!(SYS_READV, libc::SYS_readv as u64, "SYS_READV");
    assert_eq!(SYS_WRITEV, libc::SYS_writev as u64, "SYS_WRITEV");
    assert_eq!(SYS_ACCESS, libc::SYS_access as u64, "SYS_ACCESS");
    assert_eq!(SYS_PIPE, libc::SYS_pipe as u64, "SYS_PIPE");
    assert_eq!(SYS_SELECT, libc::SYS_select as u64, "SYS_SELECT");
    assert_eq!(
        SYS_SCHED_YIELD,
        libc::SYS_sched_yield as u64,
        "SYS_SCHED_YIELD"
    );
    assert_eq!(SYS_MREMAP, libc::SYS_mremap as u64, "SYS_MREMAP");
    assert_eq!(SYS_MSYNC, libc::SYS_msync as u64, "SYS_MSYNC");
    assert_eq!(SYS_MINCORE, libc::SYS_mincore as u64, "SYS_MINCORE");
    assert_eq!(SYS_MADVISE, libc::SYS_madvise as u64, "SYS_MADVISE");
    assert_eq!(SYS_SHMGET, libc::SYS_shmget as u64, "SYS_SHMGET");
    assert_eq!(SYS_SHMAT, libc::SYS_shmat as u64, "SYS_SHMAT");
    assert_eq!(SYS_SHMCTL, libc::SYS_shmctl as u64, "SYS_SHMCTL");
    assert_eq!(SYS_DUP, libc::SYS_dup as u64, "SYS_DUP");
    assert_eq!(SYS_DUP2, libc::SYS_dup2 as u64, "SYS_DUP2");
    assert_eq!(SYS_PAUSE, libc::SYS_pause as u64, "SYS_PAUSE");
    assert_eq!(SYS_NANOSLEEP, libc::SYS_nanosleep as u64, "SYS_NANOSLEEP");
    assert_eq!(SYS_GETITIMER, libc::SYS_getitimer as u64, "SYS_GETITIMER");
    assert_eq!(SYS_ALARM, libc::SYS_alarm as u64, "SYS_ALARM");
    assert_eq!(SYS_SETITIMER, libc::SYS_setitimer as u64, "SYS_SETITIMER");
    assert_eq!(SYS_GETPID, libc::SYS_getpid as u64, "SYS_GETPID");
    assert_eq!(SYS_SENDFILE, libc::SYS_sendfile as u64, "SYS_SENDFILE");
    assert_eq!(SYS_SOCKET, libc::SYS_socket as u64, "SYS_SOCKET");
    assert_eq!(SYS_CONNECT, libc::SYS_connect as u64, "SYS_CONNECT");
    assert_eq!(SYS_ACCEPT, libc::SYS_accept as u64, "SYS_ACCEPT");
    assert_eq!(SYS_SENDTO, libc::SYS_sendto as u64, "SYS_SENDTO");
    assert_eq!(SYS_RECVFROM, libc::SYS_recvfrom as u64, "SYS_RECVFROM");
    assert_eq!(SYS_SENDMSG, libc::SYS_sendmsg as u64, "SYS_SENDMSG");
    assert_eq!(SYS_RECVMSG, libc::SYS_recvmsg as u64, "SYS_RECVMSG");
    assert_eq!(SYS_SHUTDOWN, libc::SYS_shutdown as u64, "SYS_SHUTDOWN");
    assert_eq!(SYS_BIND, libc::SYS_bind as u64, "SYS_BIND");
    assert_eq!(SYS_LISTEN, libc::SYS_listen as u64, "SYS_LISTEN");
    assert_eq!(
        SYS_GETSOCKNAME,
        libc::SYS_getsockname as u64,
        "SYS_GETSOCKNAME"
    );
    assert_eq!(
        SYS_GETPEERNAME,
        libc::SYS_getpeername as u64,
        "SYS_GETPEERNAME"
    );
    assert_eq!(
        SYS_SOCKETPAIR,
        libc::SYS_socketpair as u64,
        "SYS_SOCKETPAIR"
    );
    assert_eq!(
        SYS_SETSOCKOPT,
        libc::SYS_setsockopt as u64,
        "SYS_SETSOCKOPT"
    );
    assert_eq!(
        SYS_GETSOCKOPT,
        libc::SYS_getsockopt as u64,
        "SYS_GETSOCKOPT"
    );
    assert_eq!(SYS_CLONE, libc::SYS_clone as u64, "SYS_CLONE");
    assert_eq!(SYS_FORK, libc::SYS_fork as u64, "SYS_FORK");
    assert_eq!(SYS_VFORK, libc::SYS_vfork as u64, "SYS_VFORK");
    assert_eq!(SYS_EXECVE, libc::SYS_execve as u64, "SYS_EXECVE");
    assert_eq!(SYS_EXIT, libc::SYS_exit as u64, "SYS_EXIT");
    assert_eq!(SYS_WAIT4, libc::SYS_wait4 as u64, "SYS_WAIT4");
    assert_eq!(SYS_KILL, libc::SYS_kill as u64, "SYS_KILL");
    assert_eq!(SYS_UNAME, libc::SYS_uname as u64, "SYS_UNAME");
    assert_eq!(SYS_SEMGET, libc::SYS_semget as u64, "SYS_SEMGET");
    assert_eq!(SYS_SEMOP, libc::SYS_semop as u64, "SYS_SEMOP");
    assert_eq!(SYS_SEMCTL, libc::SYS_semctl as u64, "SYS_SEMCTL");
    assert_eq!(SYS_SHMDT, libc::SYS_shmdt as u64, "SYS_SHMDT");
    assert_eq!(SYS_MSGGET, libc::SYS_msgget as u64, "SYS_MSGGET");
    assert_eq!(SYS_MSGSND, libc::SYS_msgsnd as u64, "SYS_MSGSND");
    assert_eq!(SYS_MSGRCV, libc::SYS_msgrcv as u64, "SYS_MSGRCV");
    assert_eq!(SYS_MSGCTL, libc::SYS_msgctl as u64, "SYS_MSGCTL");
    assert_eq!(SYS_FCNTL, libc::SYS_fcntl as u64, "SYS_FCNTL");
    assert_eq!(SYS_FLOCK, libc::SYS_flock as u64, "SYS_FLOCK");
    assert_eq!(SYS_FSYNC, libc::SYS_fsync as u64, "SYS_FSYNC");
    assert_eq!(SYS_FDATASYNC, libc::SYS_fdatasync as u64, "SYS_FDATASYNC");
    assert_eq!(SYS_TRUNCATE, libc::SYS_truncate as u64, "SYS_TRUNCATE");
    assert_eq!(SYS_FTRUNCATE, libc::SYS_ftruncate as u64, "SYS_FTRUNCATE");
    assert_eq!(SYS_GETDENTS, libc::SYS_getdents as u64, "SYS_GETDENTS");
    assert_eq!(SYS_GETCWD, libc::SYS_getcwd as u64, "SYS_GETCWD");
    assert_eq!(SYS_CHDIR, libc::SYS_chdir as u64, "SYS_CHDIR");
    assert_eq!(SYS_FCHDIR, libc::SYS_fchdir as u64, "SYS_FCHDIR");
    assert_eq!(SYS_RENAME, libc::SYS_rename as u64, "SYS_RENAME");
    assert_eq!(SYS_MKDIR, libc::SYS_mkdir as u64, "SYS_MKDIR");
    assert_eq!(SYS_RMDIR, libc::SYS_rmdir as u64, "SYS_RMDIR");
    assert_eq!(SYS_CREAT, libc::SYS_creat as u64, "SYS_CREAT");
    assert_eq!(SYS_LINK, libc::SYS_link as u64, "SYS_LINK");
    assert_eq!(SYS_UNLINK, libc::SYS_unlink as u64, "SYS_UNLINK");
    assert_eq!(SYS_SYMLINK, libc::SYS_symlink as u64, "SYS_SYMLINK");
    assert_eq!(SYS_READLINK, libc::SYS_readlink as u64, "SYS_READLINK");
    assert_eq!(SYS_CHMOD, libc::SYS_chmod as u64, "SYS_CHMOD");
    assert_eq!(SYS_FCHMOD, libc::SYS_fchmod as u64, "SYS_FCHMOD");
    assert_eq!(SYS_CHOWN, libc::SYS_chown as u64, "SYS_CHOWN");
    assert_eq!(SYS_FCHOWN, libc::SYS_fchown as u64, "SYS_FCHOWN");
    assert_eq!(SYS_LCHOWN, libc::SYS_lchown as u64, "SYS_LCHOWN");
    assert_eq!(SYS_UMASK, libc::SYS_umask as u64, "SYS_UMASK");
    assert_eq!(
        SYS_GETTIMEOFDAY,
        libc::SYS_gettimeofday as u64,
        "SYS_GETTIMEOFDAY"
    );
    assert_eq!(SYS_GETRLIMIT, libc::SYS_getrlimit as u64, "SYS_GETRLIMIT");
    assert_eq!(SYS_GETRUSAGE, libc::SYS_getrusage as u64, "SYS_GETRUSAGE");
    assert_eq!(SYS_SYSINFO, libc::SYS_sysinfo as u64, "SYS_SYSINFO");
    assert_eq!(SYS_TIMES, libc::SYS_times as u64, "SYS_TIMES");
    assert_eq!(SYS_PTRACE, libc::SYS_ptrace as u64, "SYS_PTRACE");
    assert_eq!(SYS_GETUID, libc::SYS_getuid as u64, "SYS_GETUID");
    assert_eq!(SYS_SYSLOG, libc::SYS_syslog as u64, "SYS_SYSLOG");
    assert_eq!(SYS_GETGID, libc::SYS_getgid as u64, "SYS_GETGID");
    assert_eq!(SYS_SETUID, libc::SYS_setuid as u64, "SYS_SETUID");
    assert_eq!(SYS_SETGID, libc::SYS_setgid as u64, "SYS_SETGID");
    assert_eq!(SYS_GETEUID, libc::SYS_geteuid as u64, "SYS_GETEUID");
    assert_eq!(SYS_GETEGID, libc::SYS_getegid as u64, "SYS_GETEGID");
    assert_eq!(SYS_SETPGID, libc::SYS_setpgid as u64, "SYS_SETPGID");
    assert_eq!(SYS_GETPPID, libc::SYS_getppid as u64, "SYS_GETPPID");
    assert_eq!(SYS_GETPGRP, libc::SYS_getpgrp as u64, "SYS_GETPGRP");
    assert_eq!(SYS_SETSID, libc::SYS_setsid as u64, "SYS_SETSID");
    assert_eq!(SYS_SETREUID, libc::SYS_setreuid as u64, "SYS_SETREUID");
    assert_eq!(SYS_SETREGID, libc::SYS_setregid as u64, "SYS_SETREGID");
    assert_eq!(SYS_GETGROUPS, libc::SYS_getgroups as u64, "SYS_GETGROUPS");
    assert_eq!(SYS_SETGROUPS, libc::SYS_setgroups as u64, "SYS_SETGROUPS");
    assert_eq!(SYS_SETRESUID, libc::SYS_setresuid as u64, "SYS_SETRESUID");
    assert_eq!(SYS_GETRESUID, libc::SYS_getresuid as u64, "SYS_GETRESUID");
    assert_eq!(SYS_SETRESGID, libc::SYS_setresgid as u64, "SYS_SETRESGID");
    assert_eq!(SYS_GETRESGID, libc::SYS_getresgid as u64, "SYS_GETRESGID");
    assert_eq!(SYS_GETPGID, libc::SYS_getpgid as u64, "SYS_GETPGID");
    assert_eq!(SYS_SETFSUID, libc::SYS_setfsuid as u64, "SYS_SETFSUID");
    assert_eq!(SYS_SETFSGID, libc::SYS_setfsgid as u64, "SYS_SETFSGID");
    assert_eq!(SYS_GETSID, libc::SYS_getsid as u64, "SYS_GETSID");
    assert_eq!(SYS_CAPGET, libc::SYS_capget as u64, "SYS_CAPGET");
    assert_eq!(SYS_CAPSET, libc::SYS_capset as u64, "SYS_CAPSET");
    assert_eq!(
        SYS_RT_SIGPENDING,
        libc::SYS_rt_sigpending as u64,
        "SYS_RT_SIGPENDING"
    );
    assert_eq!(
        SYS_RT_SIGTIMEDWAIT,
        libc::SYS_rt_sigtimedwait as u64,
        "SYS_RT_SIGTIMEDWAIT"
    );
    assert_eq!(
        SYS_RT_SIGQUEUEINFO,
        libc::SYS_rt_sigqueueinfo as u64,
        "SYS_RT_SIGQUEUEINFO"
    );
    assert_eq!(
        SYS_RT_SIGSUSPEND,
        libc::SYS_rt_sigsuspend as u64,
        "SYS_RT_SIGSUSPEND"
    );
    assert_eq!(
        SYS_SIGALTSTACK,
        libc::SYS_sigaltstack as u64,
        "SYS_SIGALTSTACK"
    );
    assert_eq!(SYS_UTIME, libc::SYS_utime as u64, "SYS_UTIME");
    assert_eq!(SYS_MKNOD, libc::SYS_mknod as u64, "SYS_MKNOD");
    assert_eq!(SYS_USELIB, libc::SYS_uselib as u64, "SYS_USELIB");
    assert_eq!(
        SYS_PERSONALITY,
        libc::SYS_personality as u64,
        "SYS_PERSONALITY"
    );
    assert_eq!(SYS_USTAT, libc::SYS_ustat as u64, "SYS_USTAT");
    assert_eq!(SYS_STATFS, libc::SYS_statfs as u64, "SYS_STATFS");
    assert_eq!(SYS_FSTATFS, libc::SYS_fstatfs as u64, "SYS_FSTATFS");
    assert_eq!(SYS_SYSFS, libc::SYS_sysfs as u64, "SYS_SYSFS");
    assert_eq!(
        SYS_GETPRIORITY,
        libc::SYS_getpriority as u64,
        "SYS_GETPRIORITY"
    );
    assert_eq!(
        SYS_SETPRIORITY,
        libc::SYS_setpriority as u64,
        "SYS_SETPRIORITY"
    );
    assert_eq!(
        SYS_SCHED_SETPARAM,
        libc::SYS_sched_setparam as u64,
        "SYS_SCHED_SETPARAM"
    );
    assert_eq!(
        SYS_SCHED_GETPARAM,
        libc::SYS_sched_getparam as u64,
        "SYS_SCHED_GETPARAM"
    );
    assert_eq!(
        SYS_SCHED_SETSCHEDULER,
        libc::SYS_sched_setscheduler as u64,
        "SYS_SCHED_SETSCHEDULER"
    );
    assert_eq!(
        SYS_SCHED_GETSCHEDULER,
        libc::SYS_sched_getscheduler as u64,
        "SYS_SCHED_GETSCHEDULER"
    );
    assert_eq!(
        SYS_SCHED_GET_PRIORITY_MAX,
        libc::SYS_sched_get_priority_max as u64,
        "SYS_SCHED_GET_PRIORITY_MAX"
    );
    assert_eq!(
        SYS_SCHED_GET_PRIORITY_MIN,
        libc::SYS_sched_get_priority_min as u64,
        "SYS_SCHED_GET_PRIORITY_MIN"
    );
    assert_eq!(
        SYS_SCHED_RR_GET_INTERVAL,
        libc::SYS_sched_rr_get_interval as u64,
        "SYS_SCHED_RR_GET_INTERVAL"
    );
    assert_eq!(SYS_MLOCK, libc::SYS_mlock as u64, "SYS_MLOCK");
    assert_eq!(SYS_MUNLOCK, libc::SYS_munlock as u64, "SYS_MUNLOCK");
    assert_eq!(SYS_MLOCKALL, libc::SYS_mlockall as u64, "SYS_MLOCKALL");
    assert_eq!(
        SYS_MUNLOCKALL,
        libc::SYS_munlockall as u64,
        "SYS_MUNLOCKALL"
    );
    assert_eq!(SYS_VHANGUP, libc::SYS_vhangup as u64, "SYS_VHANGUP");
    assert_eq!(
        SYS_MODIFY_LDT,
        libc::SYS_modify_ldt as u64,
        "SYS_MODIFY_LDT"
    );
    assert_eq!(
        SYS_PIVOT_ROOT,
        libc::SYS_pivot_root as u64,
        "SYS_PIVOT_ROOT"
    );
    assert_eq!(SYS__SYSCTL, libc::SYS__sysctl as u64, "SYS__SYSCTL");
    assert_eq!(SYS_PRCTL, libc::SYS_prctl as u64, "SYS_PRCTL");
    assert_eq!(
        SYS_ARCH_PRCTL,
        libc::SYS_arch_prctl as u64,
        "SYS_ARCH_PRCTL"
    );
    assert_eq!(SYS_ADJTIMEX, libc::SYS_adjtimex as u64, "SYS_ADJTIMEX");
    assert_eq!(SYS_SETRLIMIT, libc::SYS_setrlimit as u64, "SYS_SETRLIMIT");
    assert_eq!(SYS_CHROOT, libc::SYS_chroot as u64, "SYS_CHROOT");
    assert_eq!(SYS_SYNC, libc::SYS_sync as u64, "SYS_SYNC");
    assert_eq!(SYS_ACCT, libc::SYS_acct as u64, "SYS_ACCT");
    assert_eq!(
        SYS_SETTIMEOFDAY,
        libc::SYS_settimeofday as u64,
        "SYS_SETTIMEOFDAY"
    );
    assert_eq!(SYS_MOUNT, libc::SYS_mount as u64, "SYS_MOUNT");
    assert_eq!(SYS_UMOUNT2, libc::SYS_umount2 as u64, "SYS_UMOUNT2");
    assert_eq!(SYS_SWAPON, libc::SYS_swapon as u64, "SYS_SWAPON");
    assert_eq!(SYS_SWAPOFF, libc::SYS_swapoff as u64, "SYS_SWAPOFF");
    assert_eq!(SYS_REBOOT, libc::SYS_reboot as u64, "SYS_REBOOT");
    assert_eq!(
        SYS_SETHOSTNAME,
        libc::SYS_sethostname as u64,
        "SYS_SETHOSTNAME"
    );
    assert_eq!(
        SYS_SETDOMAINNAME,
        libc::SYS_setdomainname as u64,
        "SYS_SETDOMAINNAME"
    );
    assert_eq!(SYS_IOPL, libc::SYS_iopl as u64, "SYS_IOPL");
    assert_eq!(SYS_IOPERM, libc::SYS_ioperm as u64, "SYS_IOPERM");
    assert_eq!(
        SYS_INIT_MODULE,
        libc::SYS_init_module as u64,
        "SYS_INIT_MODULE"
    );
    assert_eq!(
        SYS_DELETE_MODULE,
        libc::SYS_delete_module as u64,
        "SYS_DELETE_MODULE"
    );
    assert_eq!(SYS_QUOTACTL, libc::SYS_quotactl as u64, "SYS_QUOTACTL");
    assert_eq!(
        SYS_NFSSERVCTL,
        libc::SYS_nfsservctl as u64,
        "SYS_NFSSERVCTL"
    );
    assert_eq!(SYS_GETPMSG, libc::SYS_getpmsg as u64, "SYS_GETPMSG");
    assert_eq!(SYS_PUTPMSG, libc::SYS_putpmsg as u64, "SYS_PUTPMSG");
    assert_eq!(
        SYS_AFS_SYSCALL,
        libc::SYS_afs_syscall as u64,
        "SYS_AFS_SYSCALL"
    );
    assert_eq!(SYS_TUXCALL, libc::SYS_tuxcall as u64, "SYS_TUXCALL");
    assert_eq!(SYS_SECURITY, libc::SYS_security as u64, "SYS_SECURITY");
    assert_eq!(SYS_GETTID, libc::SYS_gettid as u64, "SYS_GETTID");
    assert_eq!(SYS_READAHEAD, libc::SYS_readahead as u64, "SYS_READAHEAD");
    assert_eq!(SYS_SETXATTR, libc::SYS_setxattr as u64, "SYS_SETXATTR");
    assert_eq!(SYS_LSETXATTR, libc::SYS_lsetxattr as u64, "SYS_LSETXATTR");
    assert_eq!(SYS_FSETXATTR, libc::SYS_fsetxattr as u64, "SYS_FSETXATTR");
    assert_eq!(SYS_GETXATTR, libc::SYS_getxattr as u64, "SYS_GETXATTR");
    assert_eq!(SYS_LGETXATTR, libc::SYS_lgetxattr as u64, "SYS_LGETXATTR");
    assert_eq!(SYS_FGETXATTR, libc::SYS_fgetxattr as u64, "SYS_FGETXATTR");
    assert_eq!(SYS_LISTXATTR, libc::SYS_listxattr as u64, "SYS_LISTXATTR");
    assert_eq!(
        SYS_LLISTXATTR,
        libc::SYS_llistxattr as u64,
        "SYS_LLISTXATTR"
    );
    assert_eq!(
        SYS_FLISTXATTR,
        libc::SYS_flistxattr as u64,
        "SYS_FLISTXATTR"
    );
    assert_eq!(
        SYS_REMOVEXATTR,
        libc::SYS_removexattr as u64,
        "SYS_REMOVEXATTR"
    );
    assert_eq!(
        SYS_LREMOVEXATTR,
        libc::SYS_lremovexattr as u64,
        "SYS_LREMOVEXATTR"
    );
    assert_eq!(
        SYS_FREMOVEXATTR,
        libc::SYS_fremovexattr as u64,
        "SYS_FREMOVEXATTR"
    );
    assert_eq!(SYS_TKILL, libc::SYS_tkill as u64, "SYS_TKILL");
    assert_eq!(SYS_TIME, libc::SYS_time as u64, "SYS_TIME");
    assert_eq!(SYS_FUTEX, libc::SYS_futex as u64, "SYS_FUTEX");
    assert_eq!(
        SYS_SCHED_SETAFFINITY,
        libc::SYS_sched_setaffinity as u64,
        "SYS_SCHED_SETAFFINITY"
    );
    assert_eq!(
        SYS_SCHED_GETAFFINITY,
        libc::SYS_sched_getaffinity as u64,
        "SYS_SCHED_GETAFFINITY"
    );
    assert_eq!(
        SYS_SET_THREAD_AREA,
        libc::SYS_set_thread_area as u64,
        "SYS_SET_THREAD_AREA"
    );
    assert_eq!(SYS_IO_SETUP, libc::SYS_io_setup as u64, "SYS_IO_SETUP");
    assert_eq!(
        SYS_IO_DESTROY,
        libc::SYS_io_destroy as u64,
        "SYS_IO_DESTROY"
    );
    assert_eq!(
        SYS_IO_GETEVENTS,
        libc::SYS_io_getevents as u64,
        "SYS_IO_GETEVENTS"
    );
    assert_eq!(SYS_IO_SUBMIT, libc::SYS_io_submit as u64, "SYS_IO_SUBMIT");
    assert_eq!(SYS_IO_CANCEL, libc::SYS_io_cancel as u64, "SYS_IO_CANCEL");
    assert_eq!(
        SYS_GET_THREAD_AREA,
        libc::SYS_get_thread_area as u64,
        "SYS_GET_THREAD_AREA"
    );
    assert_eq!(
        SYS_LOOKUP_DCOOKIE,
        libc::SYS_lookup_dcookie as u64,
        "SYS_LOOKUP_DCOOKIE"
    );
    assert_eq!(
        SYS_EPOLL_CREATE,
        libc::SYS_epoll_create as u64,
        "SYS_EPOLL_CREATE"
    );
    assert_eq!(
        SYS_EPOLL_CTL_OLD,
        libc::SYS_epoll_ctl_old as u64,
        "SYS_EPOLL_CTL_OLD"
    );
    assert_eq!(
        SYS_EPOLL_WAIT_OLD,
        libc::SYS_epoll_wait_old as u64,
        "SYS_EPOLL_WAIT_OLD"
    );
    assert_eq!(
        SYS_REMAP_FILE_PAGES,
        libc::SYS_remap_file_pages as u64,
        "SYS_REMAP_FILE_PAGES"
    );
    assert_eq!(
        SYS_GETDENTS64,
        libc::SYS_getdents64 as u64,
        "SYS_GETDENTS64"
    );
    assert_eq!(
        SYS_SET_TID_ADDRESS,
        libc::SYS_set_tid_address as u64,
        "SYS_SET_TID_ADDRESS"
    );
    assert_eq!(
        SYS_RESTART_SYSCALL,
        libc::SYS_restart_syscall as u64,
        "SYS_RESTART_SYSCALL"
    );
    assert_eq!(
        SYS_SEMTIMEDOP,
        libc::SYS_semtimedop as u64,
        "SYS_SEMTIMEDOP"
    );
    assert_eq!(SYS_FADVISE64, libc::SYS_fadvise64 as u64, "SYS_FADVISE64");
    assert_eq!(
        SYS_TIMER_CREATE,
        libc::SYS_timer_create as u64,
        "SYS_TIMER_CREATE"
    );
    assert_eq!(
        SYS_TIMER_SETTIME,
        libc::SYS_timer_settime as u64,
        "SYS_TIMER_SETTIME"
    );
    assert_eq!(
        SYS_TIMER_GETTIME,
        libc::SYS_timer_gettime as u64,
        "SYS_TIMER_GETTIME"
    );
    assert_eq!(
        SYS_TIMER_GETOVERRUN,
        libc::SYS_timer_getoverrun as u64,
        "SYS_TIMER_GETOVERRUN"
    );
    assert_eq!(
        SYS_TIMER_DELETE,
        libc::SYS_timer_delete as u64,
        "SYS_TIMER_DELETE"
    );
    assert_eq!(
        SYS_CLOCK_SETTIME,
        libc::SYS_clock_settime as u64,
        "SYS_CLOCK_SETTIME"
    );
    assert_eq!(
        SYS_CLOCK_GETTIME,
        libc::SYS_clock_gettime as u64,
        "SYS_CLOCK_GETTIME"
    );
    assert_eq!(
        SYS_CLOCK_GETRES,
        libc::SYS_clock_getres as u64,
        "SYS_CLOCK_GETRES"
    );
    assert_eq!(
        SYS_CLOCK_NANOSLEEP,
        libc::SYS_clock_nanosleep as u64,
        "SYS_CLOCK_NANOSLEEP"
    );
    assert_eq!(
        SYS_EXIT_GROUP,
        libc::SYS_exit_group as u64,
        "SYS_EXIT_GROUP"
    );
    assert_eq!(
        SYS_EPOLL_WAIT,
        libc::SYS_epoll_wait as u64,
        "SYS_EPOLL_WAIT"
    );
    assert_eq!(SYS_EPOLL_CTL, libc::SYS_epoll_ctl as u64, "SYS_EPOLL_CTL");
    assert_eq!(SYS_TGKILL, libc::SYS_tgkill as u64, "SYS_TGKILL");
    assert_eq!(SYS_UTIMES, libc::SYS_utimes as u64, "SYS_UTIMES");
    assert_eq!(SYS_VSERVER, libc::SYS_vserver as u64, "SYS_VSERVER");
    assert_eq!(SYS_MBIND, libc::SYS_mbind as u64, "SYS_MBIND");
    assert_eq!(
        SYS_SET_MEMPOLICY,
        libc::SYS_set_mempolicy as u64,
        "SYS_SET_MEMPOLICY"
    );
    assert_eq!(
        SYS_GET_MEMPOLICY,
        libc::SYS_get_mempolicy as u64,
        "SYS_GET_MEMPOLICY"
    );
    assert_eq!(SYS_MQ_OPEN, libc::SYS_mq_open as u64, "SYS_MQ_OPEN");
    assert_eq!(SYS_MQ_UNLINK, libc::SYS_mq_unlink as u64, "SYS_MQ_UNLINK");
    assert_eq!(
        SYS_MQ_TIMEDSEND,
        libc::SYS_mq_timedsend as u64,
        "SYS_MQ_TIMEDSEND"
    );
    assert_eq!(
        SYS_MQ_TIMEDRECEIVE,
        libc::SYS_mq_timedreceive as u64,
        "SYS_MQ_TIMEDRECEIVE"
    );
    assert_eq!(SYS_MQ_NOTIFY, libc::SYS_mq_notify as u64, "SYS_MQ_NOTIFY");
    assert_eq!(
        SYS_MQ_GETSETATTR,
        libc::SYS_mq_getsetattr as u64,
        "SYS_MQ_GETSETATTR"
    );
    assert_eq!(
        SYS_KEXEC_LOAD,
        libc::SYS_kexec_load as u64,
        "SYS_KEXEC_LOAD"
    );
    assert_eq!(SYS_WAITID, libc::SYS_waitid as u64, "SYS_WAITID");
    assert_eq!(SYS_ADD_KEY, libc::SYS_add_key as u64, "SYS_ADD_KEY");
    assert_eq!(
        SYS_REQUEST_KEY,
        libc::SYS_request_key as u64,
        "SYS_REQUEST_KEY"
    );
    assert_eq!(SYS_KEYCTL, libc::SYS_keyctl as u64, "SYS_KEYCTL");
    assert_eq!(
        SYS_IOPRIO_SET,
        libc::SYS_ioprio_set as u64,
        "SYS_IOPRIO_SET"
    );
    assert_eq!(
        SYS_IOPRIO_GET,
        libc::SYS_ioprio_get as u64,
        "SYS_IOPRIO_GET"
    );
    assert_eq!(
        SYS_INOTIFY_INIT,
        libc::SYS_inotify_init as u64,
        "SYS_INOTIFY_INIT"
    );
    assert_eq!(
        SYS_INOTIFY_ADD_WATCH,
        libc::SYS_inotify_add_watch as u64,
        "SYS_INOTIFY_ADD_WATCH"
    );
    assert_eq!(
        SYS_INOTIFY_RM_WATCH,
        libc::SYS_inotify_rm_watch as u64,
        "SYS_INOTIFY_RM_WATCH"
    );
    assert_eq!(
        SYS_MIGRATE_PAGES,
        libc::SYS_migrate_pages as u64,
        "SYS_MIGRATE_PAGES"
    );
    assert_eq!(SYS_OPENAT, libc::SYS_openat as u64, "SYS_OPENAT");
    assert_eq!(SYS_MKDIRAT, libc::SYS_mkdirat as u64, "SYS_MKDIRAT");
    assert_eq!(SYS_MKNODAT, libc::SYS_mknodat as u64, "SYS_MKNODAT");
    assert_eq!(SYS_FCHOWNAT, libc::SYS_fchownat as u64, "SYS_FCHOWNAT");
    assert_eq!(SYS_FUTIMESAT, libc::SYS_futimesat as u64, "SYS_FUTIMESAT");
    assert_eq!(
        SYS_NEWFSTATAT,
        libc::SYS_newfstatat as u64,
        "SYS_NEWFSTATAT"
    );
    assert_eq!(SYS_UNLINKAT, libc::SYS_unlinkat as u64, "SYS_UNLINKAT");
    assert_eq!(SYS_RENAMEAT, libc::SYS_renameat as u64, "SYS_RENAMEAT");
    assert_eq!(SYS_LINKAT, libc::SYS_linkat as u64, "SYS_LINKAT");
    assert_eq!(SYS_SYMLINKAT, libc::SYS_symlinkat as u64, "SYS_SYMLINKAT");
    assert_eq!(
        SYS_READLINKAT,
        libc::SYS_readlinkat as u64,
        "SYS_READLINKAT"
    );
    assert_eq!(SYS_FCHMODAT, libc::SYS_fchmodat as u64, "SYS_FCHMODAT");
    assert_eq!(SYS_FACCESSAT, libc::SYS_faccessat as u64, "SYS_FACCESSAT");
    assert_eq!(SYS_PSELECT6, libc::SYS_pselect6 as u64, "SYS_PSELECT6");
    assert_eq!(SYS_PPOLL, libc::SYS_ppoll as u64, "SYS_PPOLL");
    assert_eq!(SYS_UNSHARE, libc::SYS_unshare as u64, "SYS_UNSHARE");
    assert_eq!(
        SYS_SET_ROBUST_LIST,
        libc::SYS_set_robust_list as u64,
        "SYS_SET_ROBUST_LIST"
    );
    assert_eq!(
        SYS_GET_ROBUST_LIST,
        libc::SYS_get_robust_list as u64,
        "SYS_GET_ROBUST_LIST"
    );
    assert_eq!(SYS_SPLICE, libc::SYS_splice as u64, "SYS_SPLICE");
    assert_eq!(SYS_TEE, libc::SYS_tee as u64, "SYS_TEE");
    assert_eq!(
        SYS_SYNC_FILE_RANGE,
        libc::SYS_sync_file_range as u64,
        "SYS_SYNC_FILE_RANGE"
    );
    assert_eq!(SYS_VMSPLICE, libc::SYS_vmsplice as u64, "SYS_VMSPLICE");
    assert_eq!(
        SYS_MOVE_PAGES,
        libc::SYS_move_pages as u64,
        "SYS_MOVE_PAGES"
    );
    assert_eq!(SYS_UTIMENSAT, libc::SYS_utimensat as u64, "SYS_UTIMENSAT");
    assert_eq!(
        SYS_EPOLL_PWAIT,
        libc::SYS_epoll_pwait as u64,
        "SYS_EPOLL_PWAIT"
    );
    assert_eq!(SYS_SIGNALFD, libc::SYS_signalfd as u64, "SYS_SIGNALFD");
    assert_eq!(
        SYS_TIMERFD_CREATE,
        libc::SYS_timerfd_create as u64,
        "SYS_TIMERFD_CREATE"
    );
    assert_eq!(SYS_EVENTFD, libc::SYS_eventfd as u64, "SYS_EVENTFD");
    assert_eq!(SYS_FALLOCATE, libc::SYS_fallocate as u64, "SYS_FALLOCATE");
    assert_eq!(
        SYS_TIMERFD_SETTIME,
        libc::SYS_timerfd_settime as u64,
        "SYS_TIMERFD_SETTIME"
    );
    assert_eq!(
        SYS_TIMERFD_GETTIME,
        libc::SYS_timerfd_gettime as u64,
        "SYS_TIMERFD_GETTIME"
    );
    assert_eq!(SYS_ACCEPT4, libc::SYS_accept4 as u64, "SYS_ACCEPT4");
    assert_eq!(SYS_SIGNALFD4, libc::SYS_signalfd4 as u64, "SYS_SIGNALFD4");
    assert_eq!(SYS_EVENTFD2, libc::SYS_eventfd2 as u64, "SYS_EVENTFD2");
    assert_eq!(
        SYS_EPOLL_CREATE1,
        libc::SYS_epoll_create1 as u64,
        "SYS_EPOLL_CREATE1"
    );
    assert_eq!(SYS_DUP3, libc::SYS_dup3 as u64, "SYS_DUP3");
    assert_eq!(SYS_PIPE2, libc::SYS_pipe2 as u64, "SYS_PIPE2");
    assert_eq!(
        SYS_INOTIFY_INIT1,
        libc::SYS_inotify_init1 as u64,
        "SYS_INOTIFY_INIT1"
    );
    assert_eq!(SYS_PREADV, libc::SYS_preadv as u64, "SYS_PREADV");
    assert_eq!(SYS_PWRITEV, libc::SYS_pwritev as u64, "SYS_PWRITEV");
    assert_eq!(
        SYS_RT_TGSIGQUEUEINFO,
        libc::SYS_rt_tgsigqueueinfo as u64,
        "SYS_RT_TGSIGQUEUEINFO"
    );
    assert_eq!(
        SYS_PERF_EVENT_OPEN,
        libc::SYS_perf_event_open as u64,
        "SYS_PERF_EVENT_OPEN"
    );
    assert_eq!(SYS_RECVMMSG, libc::SYS_recvmmsg as u64, "SYS_RECVMMSG");
    assert_eq!(
        SYS_FANOTIFY_INIT,
        libc::SYS_fanotify_init as u64,
        "SYS_FANOTIFY_INIT"
    );
    assert_eq!(
        SYS_FANOTIFY_MARK,
        libc::SYS_fanotify_mark as u64,
        "SYS_FANOTIFY_MARK"
    );
    assert_eq!(SYS_PRLIMIT64, libc::SYS_prlimit64 as u64, "SYS_PRLIMIT64");
    assert_eq!(
        SYS_NAME_TO_HANDLE_AT,
        libc::SYS_name_to_handle_at as u64,
        "SYS_NAME_TO_HANDLE_AT"
    );
    assert_eq!(
        SYS_OPEN_BY_HANDLE_AT,
        libc::SYS_open_by_handle_at as u64,
        "SYS_OPEN_BY_HANDLE_AT"
    );
    assert_eq!(
        SYS_CLOCK_ADJTIME,
        libc::SYS_clock_adjtime as u64,
        "SYS_CLOCK_ADJTIME"
    );
    assert_eq!(SYS_SYNCFS, libc::SYS_syncfs as u64, "SYS_SYNCFS");
    assert_eq!(SYS_SENDMMSG, libc::SYS_sendmmsg as u64, "SYS_SENDMMSG");
    assert_eq!(SYS_SETNS, libc::SYS_setns as u64, "SYS_SETNS");
    assert_eq!(SYS_GETCPU, libc::SYS_getcpu as u64, "SYS_GETCPU");
    assert_eq!(
        SYS_PROCESS_VM_READV,
        libc::SYS_process_vm_readv as u64,
        "SYS_PROCESS_VM_READV"
    );
    assert_eq!(
        SYS_PROCESS_VM_WRITEV,
        libc::SYS_process_vm_writev as u64,
        "SYS_PROCESS_VM_WRITEV"
    );
    assert_eq!(SYS_KCMP, libc::SYS_kcmp as u64, "SYS_KCMP");
    assert_eq!(
        SYS_FINIT_MODULE,
        libc::SYS_finit_module as u64,
        "SYS_FINIT_MODULE"
    );
    assert_eq!(
        SYS_SCHED_SETATTR,
        libc::SYS_sched_setattr as u64,
        "SYS_SCHED_SETATTR"
    );
    assert_eq!(
        SYS_SCHED_GETATTR,
        libc::SYS_sched_getattr as u64,
        "SYS_SCHED_GETATTR"
    );
    assert_eq!(SYS_RENAMEAT2, libc::SYS_renameat2 as u64, "SYS_RENAMEAT2");
    assert_eq!(SYS_SECCOMP, libc::SYS_seccomp as u64, "SYS_SECCOMP");
    assert_eq!(SYS_GETRANDOM, libc::SYS_getrandom as u64, "SYS_GETRANDOM");
    assert_eq!(
        SYS_MEMFD_CREATE,
        libc::SYS_memfd_create as u64,
        "SYS_MEMFD_CREATE"
    );
    assert_eq!(
        SYS_KEXEC_FILE_LOAD,
        libc::SYS_kexec_file_load as u64,
        "SYS_KEXEC_FILE_LOAD"
    );
    assert_eq!(SYS_BPF, libc::SYS_bpf as u64, "SYS_BPF");
    assert_eq!(SYS_EXECVEAT, libc::SYS_execveat as u64, "SYS_EXECVEAT");
    assert_eq!(
        SYS_USERFAULTFD,
        libc::SYS_userfaultfd as u64,
        "SYS_USERFAULTFD"
    );
    assert_eq!(
        SYS_MEMBARRIER,
        libc::SYS_membarrier as u64,
        "SYS_MEMBARRIER"
    );
    assert_eq!(SYS_MLOCK2, libc::SYS_mlock2 as u64, "SYS_MLOCK2");
    assert_eq!(
        SYS_COPY_FILE_RANGE,
        libc::SYS_copy_file_range as u64,
        "SYS_COPY_FILE_RANGE"
    );
    assert_eq!(SYS_PREADV2, libc::SYS_preadv2 as u64, "SYS_PREADV2");
    assert_eq!(SYS_PWRITEV2, libc::SYS_pwritev2 as u64, "SYS_PWRITEV2");
    assert_eq!(
        SYS_PKEY_MPROTECT,
        libc::SYS_pkey_mprotect as u64,
        "SYS_PKEY_MPROTECT"
    );
    assert_eq!(
        SYS_PKEY_ALLOC,
        libc::SYS_pkey_alloc as u64,
        "SYS_PKEY_ALLOC"
    );
    assert_eq!(SYS_PKEY_FREE, libc::SYS_pkey_free as u64, "SYS_PKEY_FREE");
    assert_eq!(SYS_STATX, libc::SYS_statx as u64, "SYS_STATX");
    assert_eq!(SYS_RSEQ, libc::SYS_rseq as u64, "SYS_RSEQ");
    assert_eq!(
        SYS_PIDFD_SEND_SIGNAL,
        libc::SYS_pidfd_send_signal as u64,
        "SYS_PIDFD_SEND_SIGNAL"
    );
    assert_eq!(
        SYS_IO_URING_SETUP,
        libc::SYS_io_uring_setup as u64,
        "SYS_IO_URING_SETUP"
    );
    assert_eq!(
        SYS_IO_URING_ENTER,
        libc::SYS_io_uring_enter as u64,
        "SYS_IO_URING_ENTER"
    );
    assert_eq!(
        SYS_IO_URING_REGISTER,
        libc::SYS_io_uring_register as u64,
        "SYS_IO_URING_REGISTER"
    );
    assert_eq!(SYS_OPEN_TREE, libc::SYS_open_tree as u64, "SYS_OPEN_TREE");
    assert_eq!(
        SYS_MOVE_MOUNT,
        libc::SYS_move_mount as u64,
        "SYS_MOVE_MOUNT"
    );
    assert_eq!(SYS_FSOPEN, libc::SYS_fsopen as u64, "SYS_FSOPEN");
    assert_eq!(SYS_FSCONFIG, libc::SYS_fsconfig as u64, "SYS_FSCONFIG");
    assert_eq!(SYS_FSMOUNT, libc::SYS_fsmount as u64, "SYS_FSMOUNT");
    assert_eq!(SYS_FSPICK, libc::SYS_fspick as u64, "SYS_FSPICK");
    assert_eq!(
        SYS_PIDFD_OPEN,
        libc::SYS_pidfd_open as u64,
        "SYS_PIDFD_OPEN"
    );
    assert_eq!(SYS_CLONE3, libc::SYS_clone3 as u64, "SYS_CLONE3");
    assert_eq!(
        SYS_CLOSE_RANGE,
        libc::SYS_close_range as u64,
        "SYS_CLOSE_RANGE"
    );
    assert_eq!(SYS_OPENAT2, libc::SYS_openat2 as u64, "SYS_OPENAT2");
    assert_eq!(
        SYS_PIDFD_GETFD,
        libc::SYS_pidfd_getfd as u64,
        "SYS_PIDFD_GETFD"
    );
    assert_eq!(
        SYS_FACCESSAT2,
        libc::SYS_faccessat2 as u64,
        "SYS_FACCESSAT2"
    );
    assert_eq!(
        SYS_PROCESS_MADVISE,
        libc::SYS_process_madvise as u64,
        "SYS_PROCESS_MADVISE"
    );
    assert_eq!(
        SYS_EPOLL_PWAIT2,
        libc::SYS_epoll_pwait2 as u64,
        "SYS_EPOLL_PWAIT2"
    );
    assert_eq!(
        SYS_MOUNT_SETATTR,
        libc::SYS_mount_setattr as u64,
        "SYS_MOUNT_SETATTR"
    );
    assert_eq!(
        SYS_QUOTACTL_FD,
        libc::SYS_quotactl_fd as u64,
        "SYS_QUOTACTL_FD"
    );
    assert_eq!(
        SYS_LANDLOCK_CREATE_RULESET,
        libc::SYS_landlock_create_ruleset as u64,
        "SYS_LANDLOCK_CREATE_RULESET"
    );
    assert_eq!(
        SYS_LANDLOCK_ADD_RULE,
        libc::SYS_landlock_add_rule as u64,
        "SYS_LANDLOCK_ADD_RULE"
    );
    assert_eq!(
        SYS_LANDLOCK_RESTRICT_SELF,
        libc::SYS_landlock_restrict_self as u64,
        "SYS_LANDLOCK_RESTRICT_SELF"
    );
    assert_eq!(
        SYS_MEMFD_SECRET,
        libc::SYS_memfd_secret as u64,
        "SYS_MEMFD_SECRET"
    );
    assert_eq!(
        SYS_PROCESS_MRELEASE,
        libc::SYS_process_mrelease as u64,
        "SYS_PROCESS_MRELEASE"
    );
    assert_eq!(
        SYS_FUTEX_WAITV,
        libc::SYS_futex_waitv as u64,
        "SYS_FUTEX_WAITV"
    );
    assert_eq!(
        SYS_SET_MEMPOLICY_HOME_NODE,
        libc::SYS_set_mempolicy_home_node as u64,
        "SYS_SET_MEMPOLICY_HOME_NODE"
    );
}

#[test]
fn errno_values_match_libc() {
    assert_eq!(Errno::EPERM.raw(), libc::EPERM, "EPERM");
    assert_eq!(Errno::ENOENT.raw(), libc::ENOENT, "ENOENT");
    assert_eq!(Errno::ESRCH.raw(), libc::ESRCH, "ESRCH");
    assert_eq!(Errno::EINTR.raw(), libc::EINTR, "EINTR");
    assert_eq!(Errno::EIO.raw(), libc::EIO, "EIO");
    assert_eq!(Errno::ENXIO.raw(), libc::ENXIO, "ENXIO");
    assert_eq!(Errno::E2BIG.raw(), libc::E2BIG, "E2BIG");
    assert_eq!(Errno::ENOEXEC.raw(), libc::ENOEXEC, "ENOEXEC");
    assert_eq!(Errno::EBADF.raw(), libc::EBADF, "EBADF");
    assert_eq!(Errno::ECHILD.raw(), libc::ECHILD, "ECHILD");
    assert_eq!(Errno::EAGAIN.raw(), libc::EAGAIN, "EAGAIN");
    assert_eq!(Errno::ENOMEM.raw(), libc::ENOMEM, "ENOMEM");
    assert_eq!(Errno::EACCES.raw(), libc::EACCES, "EACCES");
    assert_eq!(Errno::EFAULT.raw(), libc::EFAULT, "EFAULT");
    assert_eq!(Errno::ENOTBLK.raw(), libc::ENOTBLK, "ENOTBLK");
    assert_eq!(Errno::EBUSY.raw(), libc::EBUSY, "EBUSY");
    assert_eq!(Errno::EEXIST.raw(), libc::EEXIST, "EEXIST");
    assert_eq!(Errno::EXDEV.raw(), libc::EXDEV, "EXDEV");
    assert_eq!(Errno::ENODEV.raw(), libc::ENODEV, "ENODEV");
    assert_eq!(Errno::ENOTDIR.raw(), libc::ENOTDIR, "ENOTDIR");
    assert_eq!(Errno::EISDIR.raw(), libc::EISDIR, "EISDIR");
    assert_eq!(Errno::EINVAL.raw(), libc::EINVAL, "EINVAL");
    assert_eq!(Errno::ENFILE.raw(), libc::ENFILE, "ENFILE");
    assert_eq!(Errno::EMFILE.raw(), libc::EMFILE, "EMFILE");
    assert_eq!(Errno::ENOTTY.raw(), libc::ENOTTY, "ENOTTY");
    assert_eq!(Errno::ETXTBSY.raw(), libc::ETXTBSY, "ETXTBSY");
    assert_eq!(Errno::EFBIG.raw(), libc::EFBIG, "EFBIG");
    assert_eq!(Errno::ENOSPC.raw(), libc::ENOSPC, "ENOSPC");
    assert_eq!(Errno::ESPIPE.raw(), libc::ESPIPE, "ESPIPE");
    assert_eq!(Errno::EROFS.raw(), libc::EROFS, "EROFS");
    assert_eq!(Errno::EMLINK.raw(), libc::EMLINK, "EMLINK");
    assert_eq!(Errno::EPIPE.raw(), libc::EPIPE, "EPIPE");
    assert_eq!(Errno::EDOM.raw(), libc::EDOM, "EDOM");
    assert_eq!(Errno::ERANGE.raw(), libc::ERANGE, "ERANGE");
    assert_eq!(Errno::EDEADLK.raw(), libc::EDEADLK, "EDEADLK");
    assert_eq!(
        Errno::ENAMETOOLONG.raw(),
        libc::ENAMETOOLONG,
        "ENAMETOOLONG"
    );
    assert_eq!(Errno::ENOLCK.raw(), libc::ENOLCK, "ENOLCK");
    assert_eq!(Errno::ENOSYS.raw(), libc::ENOSYS, "ENOSYS");
    assert_eq!(Errno::ENOTEMPTY.raw(), libc::ENOTEMPTY, "ENOTEMPTY");
    assert_eq!(Errno::ELOOP.raw(), libc::ELOOP, "ELOOP");
    assert_eq!(Errno::ENOMSG.raw(), libc::ENOMSG, "ENOMSG");
    assert_eq!(Errno::EIDRM.raw(), libc::EIDRM, "EIDRM");
    assert_eq!(Errno::ECHRNG.raw(), libc::ECHRNG, "ECHRNG");
    assert_eq!(Errno::EL2NSYNC.raw(), libc::EL2NSYNC, "EL2NSYNC");
    assert_eq!(Errno::EL3HLT.raw(), libc::EL3HLT, "EL3HLT");
    assert_eq!(Errno::EL3RST.raw(), libc::EL3RST, "EL3RST");
    assert_eq!(Errno::ELNRNG.raw(), libc::ELNRNG, "ELNRNG");
    assert_eq!(Errno::EUNATCH.raw(), libc::EUNATCH, "EUNATCH");
    assert_eq!(Errno::ENOCSI.raw(), libc::ENOCSI, "ENOCSI");
    assert_eq!(Errno::EL2HLT.raw(), libc::EL2HLT, "EL2HLT");
    assert_eq!(Errno::EBADE.raw(), libc::EBADE, "EBADE");
    assert_eq!(Errno::EBADR.raw(), libc::EBADR, "EBADR");
    assert_eq!(Errno::EXFULL.raw(), libc::EXFULL, "EXFULL");
    assert_eq!(Errno::ENOANO.raw(), libc::ENOANO, "ENOANO");
    assert_eq!(Errno::EBADRQC.raw(), libc::EBADRQC, "EBADRQC");
    assert_eq!(Errno::EBADSLT.raw(), libc::EBADSLT, "EBADSLT");
    assert_eq!(Errno::EBFONT.raw(), libc::EBFONT, "EBFONT");
    assert_eq!(Errno::ENOSTR.raw(), libc::ENOSTR, "ENOSTR");
    assert_eq!(Errno::ENODATA.raw(), libc::ENODATA, "ENODATA");
    assert_eq!(Errno::ETIME.raw(), libc::ETIME, "ETIME");
    assert_eq!(Errno::ENOSR.raw(), libc::ENOSR, "ENOSR");
    assert_eq!(Errno::ENONET.raw(), libc::ENONET, "ENONET");
    assert_eq!(Errno::ENOPKG.raw(), libc::ENOPKG, "ENOPKG");
    assert_eq!(Errno::EREMOTE.raw(), libc::EREMOTE, "EREMOTE");
    assert_eq!(Errno::ENOLINK.raw(), libc::ENOLINK, "ENOLINK");
    assert_eq!(Errno::EADV.raw(), libc::EADV, "EADV");
    assert_eq!(Errno::ESRMNT.raw(), libc::ESRMNT, "ESRMNT");
    assert_eq!(Errno::ECOMM.raw(), libc::ECOMM, "ECOMM");
    assert_eq!(Errno::EPROTO.raw(), libc::EPROTO, "EPROTO");
    assert_eq!(Errno::EMULTIHOP.raw(), libc::EMULTIHOP, "EMULTIHOP");
    assert_eq!(Errno::EDOTDOT.raw(), libc::EDOTDOT, "EDOTDOT");
    assert_eq!(Errno::EBADMSG.raw(), libc::EBADMSG, "EBADMSG");
    assert_eq!(Errno::EOVERFLOW.raw(), libc::EOVERFLOW, "EOVERFLOW");
    assert_eq!(Errno::ENOTUNIQ.raw(), libc::ENOTUNIQ, "ENOTUNIQ");
    assert_eq!(Errno::EBADFD.raw(), libc::EBADFD, "EBADFD");
    assert_eq!(Errno::EREMCHG.raw(), libc::EREMCHG, "EREMCHG");
    assert_eq!(Errno::ELIBACC.raw(), libc::ELIBACC, "ELIBACC");
    assert_eq!(Errno::ELIBBAD.raw(), libc::ELIBBAD, "ELIBBAD");
    assert_eq!(Errno::ELIBSCN.raw(), libc::ELIBSCN, "ELIBSCN");
    assert_eq!(Errno::ELIBMAX.raw(), libc::ELIBMAX, "ELIBMAX");
    assert_eq!(Errno::ELIBEXEC.raw(), libc::ELIBEXEC, "ELIBEXEC");
    assert_eq!(Errno::EILSEQ.raw(), libc::EILSEQ, "EILSEQ");
    assert_eq!(Errno::ERESTART.raw(), libc::ERESTART, "ERESTART");
    assert_eq!(Errno::ESTRPIPE.raw(), libc::ESTRPIPE, "ESTRPIPE");
    assert_eq!(Errno::EUSERS.raw(), libc::EUSERS, "EUSERS");
    assert_eq!(Errno::ENOTSOCK.raw(), libc::ENOTSOCK, "ENOTSOCK");
    assert_eq!(
        Errno::EDESTADDRREQ.raw(),
        libc::EDESTADDRREQ,
        "EDESTADDRREQ"
    );
    assert_eq!(Errno::EMSGSIZE.raw(), libc::EMSGSIZE, "EMSGSIZE");
    assert_eq!(Errno::EPROTOTYPE.raw(), libc::EPROTOTYPE, "EPROTOTYPE");
    assert_eq!(Errno::ENOPROTOOPT.raw(), libc::ENOPROTOOPT, "ENOPROTOOPT");
    assert_eq!(
        Errno::EPROTONOSUPPORT.raw(),
        libc::EPROTONOSUPPORT,
        "EPROTONOSUPPORT"
    );
    assert_eq!(
        Errno::ESOCKTNOSUPPORT.raw(),
        libc::ESOCKTNOSUPPORT,
        "ESOCKTNOSUPPORT"
    );
    assert_eq!(Errno::EOPNOTSUPP.raw(), libc::EOPNOTSUPP, "EOPNOTSUPP");
    assert_eq!(
        Errno::EPFNOSUPPORT.raw(),
        libc::EPFNOSUPPORT,
        "EPFNOSUPPORT"
    );
    assert_eq!(
        Errno::EAFNOSUPPORT.raw(),
        libc::EAFNOSUPPORT,
        "EAFNOSUPPORT"
    );
    assert_eq!(Errno::EADDRINUSE.raw(), libc::EADDRINUSE, "EADDRINUSE");
    assert_eq!(
        Errno::EADDRNOTAVAIL.raw(),
        libc::EADDRNOTAVAIL,
        "EADDRNOTAVAIL"
    );
    assert_eq!(Errno::ENETDOWN.raw(), libc::ENETDOWN, "ENETDOWN");
    assert_eq!(Errno::ENETUNREACH.raw(), libc::ENETUNREACH, "ENETUNREACH");
    assert_eq!(Errno::ENETRESET.raw(), libc::ENETRESET, "ENETRESET");
    assert_eq!(
        Errno::ECONNABORTED.raw(),
        libc::ECONNABORTED,
        "ECONNABORTED"
    );
    assert_eq!(Errno::ECONNRESET.raw(), libc::ECONNRESET, "ECONNRESET");
    assert_eq!(Errno::ENOBUFS.raw(), libc::ENOBUFS, "ENOBUFS");
    assert_eq!(Errno::EISCONN.raw(), libc::EISCONN, "EISCONN");
    assert_eq!(Errno::ENOTCONN.raw(), libc::ENOTCONN, "ENOTCONN");
    assert_eq!(Errno::ESHUTDOWN.raw(), libc::ESHUTDOWN, "ESHUTDOWN");
    assert_eq!(
        Errno::ETOOMANYREFS.raw(),
        libc::ETOOMANYREFS,
        "ETOOMANYREFS"
    );
    assert_eq!(Errno::ETIMEDOUT.raw(), libc::ETIMEDOUT, "ETIMEDOUT");
    assert_eq!(
        Errno::ECONNREFUSED.raw(),
        libc::ECONNREFUSED,
        "ECONNREFUSED"
    );
    assert_eq!(Errno::EHOSTDOWN.raw(), libc::EHOSTDOWN, "EHOSTDOWN");
    assert_eq!(
        Errno::EHOSTUNREACH.raw(),
        libc::EHOSTUNREACH,
        "EHOSTUNREACH"
    );
    assert_eq!(Errno::EALREADY.raw(), libc::EALREADY, "EALREADY");
    assert_eq!(Errno::EINPROGRESS.raw(), libc::EINPROGRESS, "EINPROGRESS");
    assert_eq!(Errno::ESTALE.raw(), libc::ESTALE, "ESTALE");
    assert_eq!(Errno::EUCLEAN.raw(), libc::EUCLEAN, "EUCLEAN");
    assert_eq!(Errno::ENOTNAM.raw(), libc::ENOTNAM, "ENOTNAM");
    assert_eq!(Errno::ENAVAIL.raw(), libc::ENAVAIL, "ENAVAIL");
    assert_eq!(Errno::EISNAM.raw(), libc::EISNAM, "EISNAM");
    assert_eq!(Errno::EREMOTEIO.raw(), libc::EREMOTEIO, "EREMOTEIO");
    assert_eq!(Errno::EDQUOT.raw(), libc::EDQUOT, "EDQUOT");
    assert_eq!(Errno::ENOMEDIUM.raw(), libc::ENOMEDIUM, "ENOMEDIUM");
    assert_eq!(Errno::EMEDIUMTYPE.raw(), libc::EMEDIUMTYPE, "EMEDIUMTYPE");
    assert_eq!(Errno::ECANCELED.raw(), libc::ECANCELED, "ECANCELED");
    assert_eq!(Errno::ENOKEY.raw(), libc::ENOKEY, "ENOKEY");
    assert_eq!(Errno::EKEYEXPIRED.raw(), libc::EKEYEXPIRED, "EKEYEXPIRED");
    assert_eq!(Errno::EKEYREVOKED.raw(), libc::EKEYREVOKED, "EKEYREVOKED");
    assert_eq!(
        Errno::EKEYREJECTED.raw(),
        libc::EKEYREJECTED,
        "EKEYREJECTED"
    );
    assert_eq!(Errno::EOWNERDEAD.raw(), libc::EOWNERDEAD, "EOWNERDEAD");
    assert_eq!(
        Errno::ENOTRECOVERABLE.raw(),
        libc::ENOTRECOVERABLE,
        "ENOTRECOVERABLE"
    );
    assert_eq!(Errno::ERFKILL.raw(), libc::ERFKILL, "ERFKILL");
    assert_eq!(Errno::EHWPOISON.raw(), libc::EHWPOISON, "EHWPOISON");
    assert_eq!(Errno::EWOULDBLOCK.raw(), libc::EWOULDBLOCK, "EWOULDBLOCK");
}
