//! End-to-end tests: static C programs compiled by the test with `cc -static`, loaded by the
//! Sentry's loader from host files (a test-only [`ExecSource`]) and run on a real
//! platform (ptrace). Tests skip with a printed reason when the platform
//! or the compiler is missing.

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use linux_abi::Errno;
use platform::{MemoryFile, Platform};

use super::*;
use crate::mm::MappableFile;

/// A host file read with `pread` (tests only: the Sentry never opens host files itself).
#[derive(Debug)]
struct HostFile {
    file: std::fs::File,
    path: Vec<u8>,
}

impl MappableFile for HostFile {
    fn pread(&self, buf: &mut [u8], off: u64) -> Result<usize, Errno> {
        Ok(self.file.read_at(buf, off)?)
    }
    fn pwrite(&self, _buf: &[u8], _off: u64) -> Result<usize, Errno> {
        Err(Errno::EBADF)
    }
    fn size(&self) -> Result<u64, Errno> {
        Ok(self.file.metadata()?.len())
    }
    fn path(&self) -> Vec<u8> {
        self.path.clone()
    }
}

/// Opens executables from the host (tests only).
#[derive(Debug)]
struct HostExec;

impl ExecSource for HostExec {
    fn open_exec(&self, _t: &Task, path: &[u8]) -> Result<ExecImage, Errno> {
        let p = std::str::from_utf8(path).map_err(|_| Errno::ENOENT)?;
        let file = std::fs::File::open(p)?;
        Ok(ExecImage {
            file: Arc::new(HostFile {
                file,
                path: path.to_vec(),
            }),
            path: None,
        })
    }
}

fn platform() -> Option<Arc<dyn Platform>> {
    let mf = match MemoryFile::new("sentry-test", 4 << 30) {
        Ok(m) => Arc::new(m),
        Err(e) => {
            test_require::skip("ptrace", format!("memory file: {e}"));
            return None;
        }
    };
    match platform_ptrace::PtracePlatform::new(mf) {
        Ok(p) => Some(Arc::new(p)),
        Err(e) => {
            test_require::skip("ptrace", format!("platform unavailable: {e}"));
            None
        }
    }
}

/// Compiles `src` with `cc -static` into a temp dir; `None` (skip) without a compiler.
fn compile(dir: &Path, name: &str, src: &str, extra: &[&str]) -> Option<PathBuf> {
    let c = dir.join(format!("{name}.c"));
    std::fs::write(&c, src).ok()?;
    let out = dir.join(name);
    let res = Command::new("cc")
        .args(extra)
        .arg("-O1")
        .arg("-o")
        .arg(&out)
        .arg(&c)
        .output();
    match res {
        Ok(o) if o.status.success() => Some(out),
        // A fixture that does not compile is a bug in the test, not a reason to skip.
        Ok(o) => panic!("cc failed: {}", String::from_utf8_lossy(&o.stderr)),
        Err(e) => {
            test_require::skip("tools", format!("no cc: {e}"));
            None
        }
    }
}

/// Logs to the test output at the level `SENTRY_TEST_LOG` names (e.g. `info`).
fn init_log() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("SENTRY_TEST_LOG"))
        .with_test_writer()
        .try_init();
}

/// A writer into a shared buffer (strace output).
#[derive(Clone, Default)]
struct SharedBuf(Arc<parking_lot::Mutex<Vec<u8>>>);

impl std::io::Write for SharedBuf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn run(platform: Arc<dyn Platform>, argv: &[&str]) -> Result<ExitStatus, SentryError> {
    run_traced(platform, argv, None)
}

fn run_traced(
    platform: Arc<dyn Platform>,
    argv: &[&str],
    trace: Option<SharedBuf>,
) -> Result<ExitStatus, SentryError> {
    init_log();
    let strace = trace.is_some() || std::env::var_os("SENTRY_TEST_STRACE").is_some();
    let kernel = Kernel::new(platform, "testhost", strace, None)?;
    if let Some(buf) = trace {
        kernel.set_strace_output(Box::new(buf));
    }
    kernel.set_exec_source(Arc::new(HostExec));
    let ctx = kernel
        .vfs()
        .root_context(b"/")
        .map_err(SentryError::Filesystem)?;
    let fds = Arc::new(crate::fs::FdTable::new());
    let init = Task::new_process(&kernel, 0, Credentials::new(1000, 1000), fds, Arc::new(ctx))?;
    let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
    start_init(&kernel, init, &argv, &["A=B".to_string()])
}

const PROGRAM: &str = r#"
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <linux/futex.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

static int futex_word;

int main(int argc, char **argv) {
    if (getpid() != 1) return 10;
    if (getppid() != 0) return 11;
    if (getuid() != 1000) return 12;
    if (argc != 2 || strcmp(argv[1], "arg1") != 0) return 13;
    if (!getenv("A") || strcmp(getenv("A"), "B") != 0) return 14;
    char *p = mmap(0, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return 15;
    for (int i = 0; i < (1 << 20); i += 4096) p[i] = (char)(i >> 12);
    for (int i = 0; i < (1 << 20); i += 4096) if (p[i] != (char)(i >> 12)) return 16;
    if (munmap(p, 1 << 20) != 0) return 17;
    char *b = sbrk(0);
    if (sbrk(65536) == (void *)-1) return 18;
    memset(b, 7, 65536);
    char *m = malloc(10 << 20);
    if (!m) return 19;
    memset(m, 1, 10 << 20);
    free(m);
    struct utsname u;
    if (uname(&u) != 0 || strcmp(u.sysname, "Linux") != 0) return 20;
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) return 21;
    if (mprotect(b, 4096, PROT_READ) != 0) return 22;
    struct timespec tmo = {0, 10 * 1000 * 1000};
    if (syscall(SYS_futex, &futex_word, FUTEX_WAIT_PRIVATE, 1, NULL) != -1 || errno != EAGAIN) return 23;
    if (syscall(SYS_futex, &futex_word, FUTEX_WAIT_PRIVATE, 0, &tmo) != -1 || errno != ETIMEDOUT) return 24;
    if (syscall(SYS_futex, &futex_word, FUTEX_WAKE_PRIVATE, 1) != 0) return 25;
    if (syscall(SYS_futex, (char *)&futex_word + 1, FUTEX_WAKE_PRIVATE, 1) != -1 || errno != EINVAL) return 26;
    if (syscall(99999) != -1 || errno != ENOSYS) return 27;
    char *r = mmap(0, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    r[0] = 'a';
    r[4096] = 'b';
    char *blocker = mmap(r + 8192, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    if (blocker != r + 8192) return 33;
    char *r2 = mremap(r, 8192, 1 << 20, MREMAP_MAYMOVE);
    if (r2 == MAP_FAILED || r2 == r || r2[0] != 'a' || r2[4096] != 'b') return 34;
    r2[(1 << 20) - 1] = 'c';
    unsigned char vec[2];
    if (mincore(r2, 8192, vec) != 0 || !(vec[0] & 1)) return 35;
    if (madvise(r2, 8192, MADV_DONTNEED) != 0 || r2[0] != 0 || r2[4096] != 0) return 36;
    if (munmap(r2, 1 << 20) != 0 || munmap(blocker, 4096) != 0) return 37;
    struct sigaction sa = {0}, old;
    sa.sa_handler = SIG_IGN;
    if (sigaction(SIGUSR1, &sa, NULL) != 0) return 28;
    if (sigaction(SIGUSR1, NULL, &old) != 0 || old.sa_handler != SIG_IGN) return 29;
    sigset_t set, oldset;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    if (sigprocmask(SIG_BLOCK, &set, NULL) != 0) return 30;
    if (sigprocmask(SIG_SETMASK, NULL, &oldset) != 0 || !sigismember(&oldset, SIGUSR2)) return 31;
    if (kill(getpid(), SIGUSR1) != 0) return 32; /* ignored */
    return 42;
}
"#;

#[test]
fn static_program_runs_to_its_exit_code() {
    let Some(p) = platform() else { return };
    let dir = tempfile::tempdir().unwrap();
    let Some(exe) = compile(dir.path(), "prog", PROGRAM, &["-static"]) else {
        return;
    };
    let st = run(p, &[exe.to_str().unwrap(), "arg1"]).unwrap();
    assert_eq!(st, ExitStatus::Exited(42));
}

/// Identity, limits, time and system information calls, checked from inside (uid 1000).
const SYSCALLS_PROGRAM: &str = r#"
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/mman.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/time.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>
#include <asm/prctl.h>

int main(void) {
    char name[16] = {0};
    if (prctl(PR_SET_NAME, "worker-thread-name-too-long") != 0) return 1;
    if (prctl(PR_GET_NAME, name) != 0 || strcmp(name, "worker-thread-n") != 0) return 2;
    if (prctl(PR_GET_DUMPABLE) != 1) return 3;
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || prctl(PR_GET_NO_NEW_PRIVS) != 1) return 4;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur != 1024) return 5;
    rl.rlim_cur = 512;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) return 6;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur != 512) return 7;
    int any = open("/dev/null", O_RDONLY);
    if (any < 0 || dup2(any, 500) != 500) return 43;
    if (dup2(any, 600) != -1 || errno != EBADF) return 44; /* past the soft limit */
    close(500);
    close(any);
    rl.rlim_max = RLIM_INFINITY;
    if (setrlimit(RLIMIT_NOFILE, &rl) != -1 || errno != EPERM) return 8;
    if (setuid(0) != -1 || errno != EPERM) return 9;
    if (setgid(1000) != 0 || getegid() != 1000) return 10;
    if (getgroups(0, NULL) != 0) return 11;
    gid_t g = 5;
    if (setgroups(1, &g) != -1 || errno != EPERM) return 12;
    struct sysinfo si;
    if (sysinfo(&si) != 0 || si.totalram == 0 || si.uptime < 1) return 13;
    unsigned char rnd[64] = {0};
    if (getrandom(rnd, sizeof rnd, 0) != sizeof rnd) return 14;
    int nonzero = 0;
    for (int i = 0; i < 64; i++) nonzero |= rnd[i];
    if (!nonzero) return 15;
    struct timespec res, a, b;
    if (clock_getres(CLOCK_MONOTONIC, &res) != 0 || res.tv_sec != 0) return 16;
    if (clock_gettime(CLOCK_MONOTONIC, &a) != 0) return 17;
    struct timespec nap = {0, 2 * 1000 * 1000};
    if (nanosleep(&nap, NULL) != 0) return 18;
    if (clock_gettime(CLOCK_MONOTONIC, &b) != 0) return 19;
    if (b.tv_sec < a.tv_sec || (b.tv_sec == a.tv_sec && b.tv_nsec <= a.tv_nsec)) return 20;
    if (clock_gettime(99, &a) != -1 || errno != EINVAL) return 21;
    struct timeval tv;
    if (gettimeofday(&tv, NULL) != 0 || tv.tv_sec < 1700000000) return 22;
    if (time(NULL) < 1700000000) return 23;
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) != 0 || CPU_COUNT(&set) < 1) return 24;
    if (sched_yield() != 0) return 25;
    unsigned long fs = 0;
    if (syscall(SYS_arch_prctl, ARCH_GET_FS, &fs) != 0 || fs == 0) return 26;
    struct utsname u;
    if (uname(&u) != 0 || strcmp(u.machine, "x86_64") != 0 || strcmp(u.nodename, "testhost") != 0) return 27;
    if (getuid() != 1000 || geteuid() != 1000) return 28;
    if (syscall(SYS_gettid) != 1) return 29;
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0 || ru.ru_maxrss <= 0) return 30;
    if (getcpu(NULL, NULL) != 0) return 31;
    if (getpriority(PRIO_PROCESS, 0) != 0) return 32;
    int maps = open("/proc/self/maps", O_RDONLY);
    if (maps < 0) return 33;
    if (mmap(0, 4096, PROT_READ, MAP_PRIVATE, maps, 0) != MAP_FAILED || errno != ENODEV) return 34;
    int zero = open("/dev/zero", O_RDWR);
    char *z = mmap(0, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE, zero, 0);
    if (z == MAP_FAILED || z[100] != 0) return 35;
    z[5000] = 1;
    if (mmap(0, 4096, PROT_READ, MAP_PRIVATE, 12345, 0) != MAP_FAILED || errno != EBADF) return 36;
    unsigned int hdr[2] = {0x20080522, 0}, data[6] = {1, 1, 1, 1, 1, 1};
    if (syscall(SYS_capget, hdr, data) != 0 || data[0] || data[1] || data[3] || data[4]) return 37;
    hdr[0] = 1;
    if (syscall(SYS_capget, hdr, NULL) != 0 || hdr[0] != 0x20080522) return 38;
    if (sched_getscheduler(0) != SCHED_OTHER) return 39;
    if (sched_get_priority_max(SCHED_FIFO) != 99) return 40;
    struct sched_param sp = {50};
    if (sched_setscheduler(0, SCHED_FIFO, &sp) != -1 || errno != EPERM) return 41;
    if (syscall(SYS_personality, 0xffffffff) != 0) return 42;
    return 0;
}
"#;

#[test]
fn system_information_and_identity_calls() {
    let Some(p) = platform() else { return };
    let dir = tempfile::tempdir().unwrap();
    let Some(exe) = compile(dir.path(), "sysprog", SYSCALLS_PROGRAM, &["-static"]) else {
        return;
    };
    let st = run(p, &[exe.to_str().unwrap()]).unwrap();
    assert_eq!(
        st,
        ExitStatus::Exited(0),
        "the exit code is the failing check"
    );
}

#[test]
fn strace_prints_decoded_calls_and_results() {
    let Some(p) = platform() else { return };
    let dir = tempfile::tempdir().unwrap();
    let src = r#"
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>
int main(void) {
    open("/no/such/file", O_RDONLY | O_CLOEXEC);
    mmap(0, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return getpid() == 1 ? 5 : 6;
}"#;
    let Some(exe) = compile(dir.path(), "traced", src, &["-static"]) else {
        return;
    };
    let buf = SharedBuf::default();
    let st = run_traced(p, &[exe.to_str().unwrap()], Some(buf.clone())).unwrap();
    assert_eq!(st, ExitStatus::Exited(5));
    let out = String::from_utf8(buf.0.lock().clone()).unwrap();
    assert!(
        out.contains(
            r#"[pid 1] openat(AT_FDCWD, "/no/such/file", O_RDONLY|O_CLOEXEC, 0o0) = -1 ENOENT"#
        ),
        "{out}"
    );
    assert!(
        out.contains(
            "mmap(NULL, 8192, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0x0) = 0x"
        ),
        "{out}"
    );
    assert!(out.contains("[pid 1] getpid() = 1\n"), "{out}");
    assert!(out.contains("[pid 1] exit_group(5) = ?\n"), "{out}");
}

#[test]
fn static_pie_program_runs() {
    let Some(p) = platform() else { return };
    let dir = tempfile::tempdir().unwrap();
    let Some(exe) = compile(dir.path(), "pie", PROGRAM, &["-static-pie", "-fPIE"]) else {
        return;
    };
    let st = run(p, &[exe.to_str().unwrap(), "arg1"]).unwrap();
    assert_eq!(st, ExitStatus::Exited(42));
}

#[test]
fn bad_address_kills_with_sigsegv() {
    let Some(p) = platform() else { return };
    let dir = tempfile::tempdir().unwrap();
    let src = "int main(void) { volatile int *x = (int *)0x10; *x = 1; return 0; }";
    let Some(exe) = compile(dir.path(), "segv", src, &["-static"]) else {
        return;
    };
    let st = run(p, &[exe.to_str().unwrap()]).unwrap();
    assert_eq!(st, ExitStatus::Signaled(linux_abi::signal::SIGSEGV));
    assert_eq!(st.to_shell_code(), 139);
}

#[test]
fn access_past_the_end_of_a_mapped_file_is_sigbus() {
    let Some(p) = platform() else { return };
    let dir = tempfile::tempdir().unwrap();
    let src = r#"
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>
int main(void) {
    int fd = open("/tmp/f", O_RDWR | O_CREAT, 0600);
    if (fd < 0 || write(fd, "0123456789", 10) != 10) return 1;
    volatile char *m = mmap(0, 8192, PROT_READ, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) return 2;
    if (m[3] != '3' || m[100] != 0) return 3;
    return m[4096];
}"#;
    let Some(exe) = compile(dir.path(), "bus", src, &["-static"]) else {
        return;
    };
    let st = run(p, &[exe.to_str().unwrap()]).unwrap();
    assert_eq!(st, ExitStatus::Signaled(linux_abi::signal::SIGBUS));
}

#[test]
fn abort_kills_with_sigabrt() {
    let Some(p) = platform() else { return };
    let dir = tempfile::tempdir().unwrap();
    let src = "#include <stdlib.h>\nint main(void) { abort(); }";
    let Some(exe) = compile(dir.path(), "abrt", src, &["-static"]) else {
        return;
    };
    let st = run(p, &[exe.to_str().unwrap()]).unwrap();
    assert_eq!(st, ExitStatus::Signaled(linux_abi::signal::SIGABRT));
}

#[test]
fn non_elf_is_enoexec_and_missing_is_enoent() {
    let Some(p) = platform() else { return };
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk");
    std::fs::write(&junk, b"just text\n").unwrap();
    match run(p.clone(), &[junk.to_str().unwrap()]) {
        Err(SentryError::Exec { errno, .. }) => assert_eq!(errno, Errno::ENOEXEC),
        other => panic!("expected ENOEXEC, got {other:?}"),
    }
    match run(p, &["/nonexistent/prog"]) {
        Err(SentryError::Exec { errno, .. }) => assert_eq!(errno, Errno::ENOENT),
        other => panic!("expected ENOENT, got {other:?}"),
    }
}

#[test]
fn shebang_runs_the_interpreter_with_the_script() {
    let Some(p) = platform() else { return };
    let dir = tempfile::tempdir().unwrap();
    // The "interpreter" exits with argc * 10 + (argv[2] is the script path ? 1 : 0).
    let src = r#"
#include <string.h>
int main(int argc, char **argv) {
    int ok = argc == 4 && strcmp(argv[1], "-x") == 0 && strstr(argv[2], "script") && strcmp(argv[3], "a") == 0;
    return argc * 10 + ok;
}"#;
    let Some(interp) = compile(dir.path(), "interp", src, &["-static"]) else {
        return;
    };
    let script = dir.path().join("script");
    std::fs::write(&script, format!("#!{} -x\nbody\n", interp.display())).unwrap();
    let st = run(p, &[script.to_str().unwrap(), "a"]).unwrap();
    assert_eq!(st, ExitStatus::Exited(41));
}

/// A temp dir the sandbox can see through the Gofer (the sandbox mounts its own `/tmp`).
fn visible_tempdir() -> Option<tempfile::TempDir> {
    let r = tempfile::tempdir_in("/var/tmp");
    if let Err(e) = &r {
        test_require::skip("tools", format!("no /var/tmp: {e}"));
    }
    r.ok()
}

/// Runs `argv` through [`crate::run_sandbox`] with the host `/` served read-only by an
/// in-process Gofer, and returns the status and stdout.
fn run_over_host_root(
    platform: Arc<dyn Platform>,
    argv: &[&str],
    cwd: &str,
) -> (ExitStatus, String) {
    init_log();
    let (status, out, _gofer) = crate::testutil::run_over_gofer(
        platform,
        Path::new("/"),
        argv,
        &["PATH=/usr/bin:/bin", "LANG=C"],
        cwd,
    );
    (status, out)
}

#[test]
fn dynamic_program_loads_its_interpreter_and_libraries() {
    let Some(p) = platform() else { return };
    let Some(dir) = visible_tempdir() else { return };
    let src = r#"
#include <stdio.h>
#include <stdlib.h>
#include <sys/utsname.h>
#include <unistd.h>
int main(int argc, char **argv) {
    struct utsname u;
    uname(&u);
    char *m = malloc(1 << 20);
    m[12345] = 1;
    printf("dyn %s pid=%d argc=%d host=%s\n", argv[1], getpid(), argc, u.nodename);
    return 3;
}"#;
    let Some(exe) = compile(dir.path(), "dyn", src, &[]) else {
        return;
    };
    let (st, out) = run_over_host_root(p, &[exe.to_str().unwrap(), "x"], "/");
    assert_eq!(out, "dyn x pid=1 argc=2 host=sentry-test\n");
    assert_eq!(st, ExitStatus::Exited(3));
}

#[test]
fn host_shell_script_runs_through_bin_sh() {
    let Some(p) = platform() else { return };
    if !Path::new("/bin/sh").exists() {
        test_require::skip("tools", "no /bin/sh");
        return;
    }
    let Some(dir) = visible_tempdir() else { return };
    let script = dir.path().join("s.sh");
    std::fs::write(&script, "#!/bin/sh\necho \"script $1\"\nexit 7\n").unwrap();
    let mut perm = std::fs::metadata(&script).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o755);
    std::fs::set_permissions(&script, perm).unwrap();
    let (st, out) = run_over_host_root(p, &[script.to_str().unwrap(), "arg"], "/");
    assert_eq!(out, "script arg\n");
    assert_eq!(st, ExitStatus::Exited(7));
}

/// Runs the command in `SENTRY_RUN` (space-separated) over the host root and prints its
/// output: a development aid (`SENTRY_RUN="/bin/ls -l /" cargo test -- --ignored run_host_command`).
#[test]
#[ignore = "development aid: needs SENTRY_RUN"]
fn run_host_command() {
    let Some(p) = platform() else { return };
    let Ok(cmd) = std::env::var("SENTRY_RUN") else {
        return;
    };
    let argv: Vec<&str> = cmd.split(' ').collect();
    let (st, out) = run_over_host_root(p, &argv, "/");
    println!("{out}");
    println!("status: {st:?}");
}

/// Panic policy: a task thread that panics ends the sandbox (every process killed), and
/// still finishes, so that `execve` in another thread and the wait for PID 1 return.
/// Without it the panicking thread never finished and both waited forever.
#[test]
fn a_panicking_task_thread_ends_the_sandbox_without_hanging() {
    let Some(p) = platform() else { return };
    let dir = tempfile::tempdir().unwrap();
    let src = format!(
        r#"
#include <pthread.h>
#include <unistd.h>
#include <sys/syscall.h>
static void *boom(void *a) {{ syscall({nr}L); return a; }}
int main(int argc, char **argv) {{
    pthread_t th;
    pthread_create(&th, 0, boom, 0);
    /* execve waits for the other thread to finish, which panics instead (or, if
       execve won the race and ended that thread, the new image's thread panics while
       the main thread waits for it). */
    char *args[] = {{argv[0], "again", 0}};
    if (argc == 1) execve(argv[0], args, 0);
    pthread_join(th, 0);
    return 3;
}}
"#,
        nr = super::task::TEST_PANIC_SYSNO
    );
    let Some(exe) = compile(dir.path(), "panics", &src, &["-static", "-pthread"]) else {
        return;
    };
    let (tx, rx) = std::sync::mpsc::channel();
    let path = exe.to_str().unwrap().to_string();
    std::thread::spawn(move || {
        let _ = tx.send(run(p, &[&path]));
    });
    // A bound on a hang, not an ordering: the run normally ends in milliseconds.
    let st = rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("the sandbox hung after a task thread panicked")
        .unwrap();
    assert_eq!(st, ExitStatus::Signaled(linux_abi::signal::SIGKILL));
}

/// Kernel state lives in the kernel: two kernels in one process (two sandboxes, or two
/// containers of a pod later) do not see each other's System V IPC objects.
#[test]
fn two_kernels_have_separate_ipc_namespaces() {
    let Some(p) = platform() else { return };
    let k1 = Kernel::new(p.clone(), "one", false, None).unwrap();
    let k2 = Kernel::new(p, "two", false, None).unwrap();
    let id = {
        let mut n = k1.ipc().lock();
        let id = 1;
        n.undo.insert((7, id, 0), 1);
        id
    };
    assert!(k1.ipc().lock().undo.contains_key(&(7, id, 0)));
    assert!(
        k2.ipc().lock().undo.is_empty(),
        "the other kernel's namespace is its own"
    );
    k2.ipc().process_exited(7);
    assert!(k1.ipc().lock().undo.contains_key(&(7, id, 0)));
}

/// The same for Unix socket names: an abstract name bound in one kernel is unknown to
/// (and free in) the other.
#[test]
fn two_kernels_have_separate_unix_socket_names() {
    use crate::fs::socket::{Key, SOCK_STREAM, Ucred, UnixSocket};
    let Some(p) = platform() else { return };
    let k1 = Kernel::new(p.clone(), "one", false, None).unwrap();
    let k2 = Kernel::new(p, "two", false, None).unwrap();
    let key = Key::Abstract(b"rsentry-test".to_vec());
    let cred = Ucred::default();
    let s1 = UnixSocket::new(SOCK_STREAM, cred, k1.unix_names()).unwrap();
    s1.bind(b"\0rsentry-test".to_vec(), key.clone()).unwrap();
    assert!(k1.unix_names().lookup(&key).is_some());
    assert!(k2.unix_names().lookup(&key).is_none());
    let s2 = UnixSocket::new(SOCK_STREAM, cred, k2.unix_names()).unwrap();
    s2.bind(b"\0rsentry-test".to_vec(), key.clone())
        .expect("the name is free in the other kernel");
}

/// A ptrace platform whose memory file holds `capacity` bytes: the sandbox's memory limit.
fn platform_with_memory(capacity: u64) -> Option<Arc<dyn Platform>> {
    let mf = Arc::new(MemoryFile::new("sentry-test-limit", capacity).ok()?);
    match platform_ptrace::PtracePlatform::new(mf) {
        Ok(p) => Some(Arc::new(p)),
        Err(e) => {
            test_require::skip("ptrace", format!("platform unavailable: {e}"));
            None
        }
    }
}

/// Runs `argv` as root in a kernel whose memory limit is `limit` (memory file and
/// reported total).
fn run_limited(limit: u64, argv: &[&str]) -> Option<ExitStatus> {
    let p = platform_with_memory(limit)?;
    init_log();
    let kernel = Kernel::new(p, "testhost", false, None).unwrap();
    kernel.set_memory_limit(limit);
    kernel.set_exec_source(Arc::new(HostExec));
    let ctx = kernel.vfs().root_context(b"/").unwrap();
    let fds = Arc::new(crate::fs::FdTable::new());
    // Root: CAP_IPC_LOCK lets `mlock` go past RLIMIT_MEMLOCK up to the memory limit.
    let init = Task::new_process(&kernel, 0, Credentials::new(0, 0), fds, Arc::new(ctx)).unwrap();
    let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
    Some(start_init(&kernel, init, &argv, &[]).unwrap())
}

/// Each child fills memory past the 48 MiB limit in its own way; every one must die of
/// the OOM killer's SIGKILL, as under a Linux memory cgroup (before, the system-call
/// ways got an error back and lived: exit status 2, or mlock succeeded without
/// touching anything: 3). The parent lives on, each child's memory freed with it.
const OOM_PROGRAM: &str = r#"
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/sysinfo.h>
#include <sys/wait.h>
#include <unistd.h>

#define BIG (96UL << 20)

static void child(int mode) {
    /* A reservation larger than the limit is fine (overcommit). */
    char *p = mmap(0, BIG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) _exit(1);
    switch (mode) {
    case 0: /* the application touches it */
        for (unsigned long i = 0; i < BIG; i += 4096) p[i] = 1;
        break;
    case 1: /* the Sentry fills it in a system call */
        for (unsigned long i = 0; i < BIG; i += 1 << 20)
            if (getrandom(p + i, 1 << 20, 0) < 0) _exit(2);
        break;
    case 2: /* a pipe copied into untouched memory, with a short count to hide behind */
    {
        int fds[2];
        if (pipe(fds) != 0) _exit(1);
        static char chunk[65536];
        memset(chunk, 'x', sizeof chunk);
        for (unsigned long i = 0; i < BIG; i += sizeof chunk) {
            if (write(fds[1], chunk, sizeof chunk) != sizeof chunk) _exit(1);
            if (read(fds[0], p + i, sizeof chunk) < 0) _exit(2);
        }
        break;
    }
    case 3: /* populated by mmap */
        if (mmap(0, BIG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
                 -1, 0) == MAP_FAILED)
            _exit(2);
        break;
    case 4: /* locked (populated) by mlock */
        if (mlock(p, BIG) != 0) _exit(2);
        break;
    case 5: /* tmpfs pages written from the application's memory */
    {
        int fd = open("/big", O_CREAT | O_WRONLY | O_TRUNC, 0600);
        if (fd < 0) _exit(1);
        static char chunk[1 << 20];
        memset(chunk, 'y', sizeof chunk);
        for (unsigned long i = 0; i < BIG; i += sizeof chunk)
            if (write(fd, chunk, sizeof chunk) < 0) _exit(2);
        break;
    }
    }
    _exit(3);
}

int main(void) {
    struct sysinfo si;
    if (sysinfo(&si) != 0) return 20;
    /* The limit is the total memory; what the programs hold is not free. */
    if ((unsigned long)si.totalram * si.mem_unit != 48UL << 20) return 21;
    unsigned long free_before = (unsigned long)si.freeram * si.mem_unit;
    if (free_before == 0 || free_before >= 48UL << 20) return 22;
    for (int mode = 0; mode < 6; mode++) {
        pid_t pid = fork();
        if (pid < 0) return 23;
        if (pid == 0) child(mode);
        int st;
        if (waitpid(pid, &st, 0) != pid) return 24;
        if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL)
            return 30 + 10 * mode + (WIFEXITED(st) ? WEXITSTATUS(st) : 9);
        unlink("/big");
    }
    if (sysinfo(&si) != 0) return 25;
    if ((unsigned long)si.freeram * si.mem_unit < free_before - (1 << 20)) return 26;
    return 0;
}
"#;

#[test]
fn memory_limit_oom_kills_in_faults_and_in_system_calls() {
    let dir = tempfile::tempdir().unwrap();
    let Some(exe) = compile(dir.path(), "oom", OOM_PROGRAM, &["-static"]) else {
        return;
    };
    let Some(st) = run_limited(48 << 20, &[exe.to_str().unwrap()]) else {
        return;
    };
    assert_eq!(st, ExitStatus::Exited(0));
}

/// `RLIMIT_AS`, `RLIMIT_DATA` and `RLIMIT_MEMLOCK` refuse growth errno for errno as
/// Linux does (before, every call here succeeded).
const RLIMIT_PROGRAM: &str = r#"
#define _GNU_SOURCE
#include <errno.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(void) {
    /* RLIMIT_AS: the total of the mappings. */
    struct rlimit as = {256UL << 20, RLIM_INFINITY};
    if (setrlimit(RLIMIT_AS, &as) != 0) return 10;
    errno = 0;
    if (mmap(0, 512UL << 20, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) != MAP_FAILED
        || errno != ENOMEM)
        return 11;
    char *small = mmap(0, 1 << 20, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (small == MAP_FAILED) return 12;
    errno = 0;
    if (mremap(small, 1 << 20, 512UL << 20, MREMAP_MAYMOVE) != MAP_FAILED || errno != ENOMEM)
        return 13;
    /* Replacing a mapping in place does not grow the total. */
    if (mmap(small, 1 << 20, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0)
        != small)
        return 14;
    as.rlim_cur = RLIM_INFINITY;
    if (setrlimit(RLIMIT_AS, &as) != 0) return 15;

    /* RLIMIT_DATA: private writable memory, and the heap with the data segment. */
    struct rlimit data = {8UL << 20, RLIM_INFINITY};
    if (setrlimit(RLIMIT_DATA, &data) != 0) return 20;
    errno = 0;
    if (mmap(0, 16UL << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        != MAP_FAILED || errno != ENOMEM)
        return 21;
    /* Read-only or shared memory is not data. */
    char *ro = mmap(0, 16UL << 20, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (ro == MAP_FAILED) return 22;
    if (mmap(0, 16UL << 20, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0)
        == MAP_FAILED)
        return 23;
    errno = 0;
    if (mprotect(ro, 16UL << 20, PROT_READ | PROT_WRITE) != -1 || errno != ENOMEM) return 24;
    unsigned long cur = syscall(SYS_brk, 0);
    if (syscall(SYS_brk, cur + (16UL << 20)) != cur) return 25;
    errno = 0;
    if (sbrk(16 << 20) != (void *)-1 || errno != ENOMEM) return 26;
    if (sbrk(4096) == (void *)-1) return 27;
    data.rlim_cur = RLIM_INFINITY;
    if (setrlimit(RLIMIT_DATA, &data) != 0) return 28;
    if (mprotect(ro, 16UL << 20, PROT_READ | PROT_WRITE) != 0) return 29;

    /* RLIMIT_MEMLOCK (no CAP_IPC_LOCK here). */
    struct rlimit ml = {64 << 10, 64 << 10};
    if (setrlimit(RLIMIT_MEMLOCK, &ml) != 0) return 30;
    errno = 0;
    if (mlock(ro, 1 << 20) != -1 || errno != ENOMEM) return 31;
    if (mlock(ro, 4096) != 0) return 32;
    errno = 0;
    if (mlock((void *)4096, 4096) != -1 || errno != ENOMEM) return 33;
    errno = 0;
    if (munlock((void *)4096, 4096) != -1 || errno != ENOMEM) return 34;
    errno = 0;
    if (mmap(0, 1 << 20, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_LOCKED, -1, 0)
        != MAP_FAILED || errno != EAGAIN)
        return 35;
    ml.rlim_cur = 0;
    if (setrlimit(RLIMIT_MEMLOCK, &ml) != 0) return 36;
    errno = 0;
    if (mlock(ro, 4096) != -1 || errno != EPERM) return 37;
    return 0;
}
"#;

#[test]
fn address_space_data_and_memlock_rlimits_refuse_growth() {
    let Some(p) = platform() else { return };
    let dir = tempfile::tempdir().unwrap();
    let Some(exe) = compile(dir.path(), "rlimits", RLIMIT_PROGRAM, &["-static"]) else {
        return;
    };
    assert_eq!(
        run(p, &[exe.to_str().unwrap()]).unwrap(),
        ExitStatus::Exited(0)
    );
}

/// `wait`: sleeps until killed; `PATH`: exits 0 if PATH exists, 1 if not, after checking
/// that `..` of the root is the root.
const POD_PROGRAM: &str = r#"
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
int main(int argc, char **argv) {
    struct stat st;
    char buf[64];
    if (argc != 2) return 2;
    if (strcmp(argv[1], "wait") == 0) for (;;) pause();
    if (chdir("/..") != 0) return 3;
    if (!getcwd(buf, sizeof buf) || strcmp(buf, "/") != 0) return 4;
    return stat(argv[1], &st) == 0 ? 0 : 1;
}
"#;

#[test]
fn containers_of_a_pod_have_their_own_roots() {
    use crate::control::{InitState, MountFlags, MountSource, ProcessSpec, Sandbox};
    let Some(p) = platform() else { return };
    let dir = tempfile::tempdir().unwrap();
    let Some(exe) = compile(dir.path(), "pod", POD_PROGRAM, &["-static"]) else {
        return;
    };
    init_log();
    let exe = exe.to_string_lossy().into_owned();
    let spec = |arg: &str| ProcessSpec {
        argv: vec![exe.clone(), arg.to_string()],
        envp: vec![],
        cwd: "/".into(),
        uid: 0,
        gid: 0,
        groups: vec![],
        stdio: [0, 1, 2].map(|_| std::fs::File::open("/dev/null").unwrap().into()),
        umask: None,
        rlimits: vec![],
        caps: None,
        no_new_privs: false,
    };
    let sb = Sandbox::new(p, "pod", false, None).unwrap();
    sb.kernel().set_exec_source(Arc::new(HostExec));
    // No container can join a sandbox before its first process runs.
    assert!(sb.add_container("a", None).is_err());
    assert_eq!(sb.create_init(spec("wait")).unwrap(), 1);
    sb.start().unwrap();
    sb.add_container("a", None).unwrap();
    sb.mount(
        Some("a"),
        "/only-a",
        MountSource::Tmpfs(0o755),
        false,
        MountFlags::default(),
    )
    .unwrap();
    assert_eq!(sb.container_state("a"), None);
    let pid = sb.create_in("a", spec("/only-a")).unwrap();
    assert_eq!(sb.container_state("a"), Some(InitState::Created));
    assert_eq!(sb.init_pid(Some("a")), Some(pid));
    sb.start_in("a").unwrap();
    assert_eq!(sb.wait(pid).map(|s| s.to_shell_code()), Some(0));
    assert!(matches!(
        sb.container_state("a"),
        Some(InitState::Stopped(_))
    ));
    // Neither the root container nor another container sees a's directory.
    let in_root = sb.exec(spec("/only-a")).unwrap();
    assert_eq!(sb.wait(in_root).map(|s| s.to_shell_code()), Some(1));
    sb.add_container("b", None).unwrap();
    let in_b = sb.create_in("b", spec("/only-a")).unwrap();
    sb.start_in("b").unwrap();
    assert_eq!(sb.wait(in_b).map(|s| s.to_shell_code()), Some(1));
    // A stopped container takes no exec; its id can be used again.
    assert!(sb.exec_in(Some("a"), spec("/only-a")).is_err());
    sb.add_container("a", None).unwrap();
    let again = sb.create_in("a", spec("/only-a")).unwrap();
    sb.start_in("a").unwrap();
    assert_eq!(sb.wait(again).map(|s| s.to_shell_code()), Some(1));
    // Signals and listings stay within a container.
    sb.add_container("c", None).unwrap();
    let c = sb.create_in("c", spec("wait")).unwrap();
    sb.start_in("c").unwrap();
    let extra = sb.exec_in(Some("c"), spec("wait")).unwrap();
    let pids = |cid: Option<&str>| -> Vec<i32> {
        sb.processes_in(cid).into_iter().map(|p| p.pid).collect()
    };
    assert_eq!(pids(Some("c")), vec![c, extra]);
    assert_eq!(pids(None), vec![1]);
    assert_eq!(
        sb.signal_in(Some("c"), 1, linux_abi::signal::SIGKILL),
        Err(Errno::ESRCH)
    );
    sb.signal_init_in("c", linux_abi::signal::SIGTERM).unwrap();
    assert_eq!(sb.wait(c).map(|s| s.to_shell_code()), Some(128 + 15));
    // The end of a container's first process ends the container's other processes.
    assert_eq!(sb.wait(extra).map(|s| s.to_shell_code()), Some(128 + 9));
    assert_eq!(sb.init_state(), Some(InitState::Running));
    sb.remove_container("c");
    assert_eq!(sb.container_state("c"), None);
    assert!(sb.signal_init_in("c", 9).is_err());
    sb.signal(1, linux_abi::signal::SIGKILL).unwrap();
    assert_eq!(sb.wait_init().unwrap().to_shell_code(), 128 + 9);
}

/// POSIX message queues are the kernel's: `/dev/mqueue` of its first tree and of a tree
/// made later (a container of a pod) show the same queues, another kernel none of them.
#[test]
fn message_queues_are_per_kernel_and_in_every_tree() {
    use crate::fs::FsCred;
    use crate::fs::vfs::Follow;
    use linux_abi::flags::open::{O_CREAT, O_RDWR};
    let Some(p) = platform() else { return };
    let k1 = Kernel::new(p.clone(), "one", false, None).unwrap();
    let k2 = Kernel::new(p.clone(), "two", false, None).unwrap();
    let cred = FsCred::root();
    let ctx = k1.vfs().root_context(b"/").unwrap();
    k1.vfs()
        .open(&ctx, &cred, b"/dev/mqueue/q", O_CREAT | O_RDWR, 0o600)
        .unwrap();
    assert!(k1.ipc().mqueue().get(b"q").is_some());
    assert!(k2.ipc().mqueue().get(b"q").is_none());
    let ctx2 = k2.vfs().root_context(b"/").unwrap();
    assert_eq!(
        k2.vfs()
            .open(&ctx2, &cred, b"/dev/mqueue/q", O_RDWR, 0)
            .err(),
        Some(Errno::ENOENT)
    );
    let tree = k1
        .vfs()
        .new_tree(p.memory_file().clone(), None, k1.terminals_shared())
        .unwrap();
    let q = k1
        .vfs()
        .resolve(&tree, &tree, b"/dev/mqueue/q", Follow::Yes, &cred)
        .unwrap();
    assert_eq!(q.mount.fstype(), "mqueue");
    // Unlinking through the mount is mq_unlink.
    k1.vfs()
        .unlink(&tree, &tree, b"/dev/mqueue/q", false, &cred)
        .unwrap();
    assert!(k1.ipc().mqueue().get(b"q").is_none());
}
