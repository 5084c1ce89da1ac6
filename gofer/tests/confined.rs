//! Confinement, in subprocesses (this test has its own `main`, so every child is a fresh,
//! single-threaded re-execution of this binary that picks its role from the environment):
//! the seccomp filter kills a forbidden system call, `pivot_root` makes `/` the served
//! root, a confined gofer serves through a real client, read-only gives `EROFS`, and a
//! killed gofer makes client calls fail instead of hanging.
//!
//! Needs root (namespaces, mounts); without it every case is skipped with a message.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;
use std::{env, fs};

use gofer::{GoferOptions, confine, serve};
use lisafs_proto::{Client, ClientError, Errno, socketpair};

const ROLE: &str = "GOFER_TEST_ROLE";
const ARG: &str = "GOFER_TEST_ARG";
/// Exit status of a child that could not create namespaces (the case is skipped).
const NO_NAMESPACES: i32 = 77;

fn main() {
    if let Ok(role) = env::var(ROLE) {
        let code = child(&role, env::var(ARG).unwrap_or_default());
        std::process::exit(code);
    }
    if !test_require::is_root() {
        test_require::skip("root", "the confined tests need namespaces and mounts");
        return;
    }
    let tests: [Case; 6] = [
        (
            "seccomp_kills_a_forbidden_syscall",
            seccomp_kills_a_forbidden_syscall,
        ),
        (
            "pivot_root_makes_the_served_root_slash",
            pivot_root_makes_the_served_root_slash,
        ),
        (
            "serving_the_host_root_hides_kernel_interfaces",
            serving_the_host_root_hides_kernel_interfaces,
        ),
        (
            "confined_gofer_serves_a_client",
            confined_gofer_serves_a_client,
        ),
        (
            "confined_read_only_gives_erofs",
            confined_read_only_gives_erofs,
        ),
        (
            "killed_gofer_fails_calls_instead_of_hanging",
            killed_gofer_fails_calls_instead_of_hanging,
        ),
    ];
    let mut failed = 0;
    for (name, f) in tests {
        match std::panic::catch_unwind(f) {
            Ok(Outcome::Passed) => println!("test {name} ... ok"),
            Ok(Outcome::Skipped(why)) => {
                println!("test {name} ... skipped: {why}");
                if test_require::required("root") {
                    println!("test {name} ... FAILED: RSENTRY_REQUIRE requires root");
                    failed += 1;
                }
            }
            Err(_) => {
                println!("test {name} ... FAILED");
                failed += 1;
            }
        }
    }
    assert_eq!(failed, 0, "{failed} confined test(s) failed");
}

/// A named test case.
type Case = (&'static str, fn() -> Outcome);

enum Outcome {
    Passed,
    Skipped(String),
}

/// The child side. Returns the exit status.
fn child(role: &str, arg: String) -> i32 {
    match role {
        "seccomp" => {
            if let Err(e) = confine::install_seccomp() {
                eprintln!("install_seccomp: {e}");
                return 1;
            }
            // Allowed calls keep working...
            eprintln!("filter installed");
            // ...and a forbidden one (getppid is in no file server's job) kills us.
            // SAFETY: getppid touches no memory.
            unsafe { libc::syscall(libc::SYS_getppid) };
            3
        }
        "confine-check" => {
            let (root, outside) = arg.split_once('\n').unwrap_or((&arg, ""));
            match confine::unshare_and_fork() {
                Err(e) => {
                    eprintln!("unshare: {e}");
                    NO_NAMESPACES
                }
                Ok(confine::Side::Parent(pid)) => match confine::wait_child(pid) {
                    Ok(()) => 0,
                    Err(e) => {
                        eprintln!("{e}");
                        2
                    }
                },
                Ok(confine::Side::Child) => {
                    if let Err(e) = add_submounts(Path::new(root)) {
                        eprintln!("setting up submounts: {e}");
                        return 1;
                    }
                    if let Err(e) = confine::confine(Path::new(root), true) {
                        eprintln!("confine: {e}");
                        return 1;
                    }
                    check_confined(Path::new(outside))
                }
            }
        }
        "confine-slash" => match confine::unshare_and_fork() {
            Err(e) => {
                eprintln!("unshare: {e}");
                NO_NAMESPACES
            }
            Ok(confine::Side::Parent(pid)) => match confine::wait_child(pid) {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("{e}");
                    2
                }
            },
            Ok(confine::Side::Child) => {
                if let Err(e) = confine::confine(Path::new("/"), true) {
                    eprintln!("confine: {e}");
                    return 1;
                }
                check_slash_confined(Path::new(&arg))
            }
        },
        "serve" => {
            // SAFETY: the parent placed the server socket at descriptor 3 for us.
            let sock = unsafe { OwnedFd::from_raw_fd(3) };
            let opts = GoferOptions {
                read_only: env::var("GOFER_TEST_RO").is_ok(),
                confine: true,
                threads: 2,
            };
            match serve(Path::new(&arg), sock, opts) {
                Ok(()) => 0,
                Err(gofer::GoferError::Confine {
                    step: "unshare", ..
                }) => NO_NAMESPACES,
                Err(e) => {
                    eprintln!("serve: {e}");
                    1
                }
            }
        }
        _ => 100,
    }
}

/// In the child's own mount namespace, before confinement: a file system below the root
/// (tmpfs at `data/`, to be served) and a kernel interface (procfs at `proc/`, to be
/// detached).
fn add_submounts(root: &Path) -> nix::Result<()> {
    use nix::mount::{MsFlags, mount};
    fs::create_dir_all(root.join("data")).map_err(|_| nix::Error::EIO)?;
    fs::create_dir_all(root.join("proc")).map_err(|_| nix::Error::EIO)?;
    mount(
        Some("tmpfs"),
        &root.join("data"),
        Some("tmpfs"),
        MsFlags::empty(),
        None::<&str>,
    )?;
    fs::write(root.join("data/file"), b"sub").map_err(|_| nix::Error::EIO)?;
    mount(
        Some("proc"),
        &root.join("proc"),
        Some("proc"),
        MsFlags::empty(),
        None::<&str>,
    )
}

/// Inside the confined child: `/` is the served root and nothing else is visible.
fn check_confined(outside: &Path) -> i32 {
    let mut bad = Vec::new();
    if !Path::new("/marker").exists() {
        bad.push("/marker (a file of the served root) is not at /".to_string());
    }
    if outside.exists() || fs::metadata(outside).is_ok() {
        bad.push(format!("{} is still reachable", outside.display()));
    }
    let mut names: Vec<_> = fs::read_dir("/")
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    names.sort();
    if names != ["data", "marker", "proc"] {
        bad.push(format!("/ holds {names:?}, expected data, marker, proc"));
    }
    if fs::read("/data/file").ok().as_deref() != Some(&b"sub"[..]) {
        bad.push("the file system mounted below the root is not served".into());
    }
    if fs::read_dir("/proc").map(|d| d.count()).unwrap_or(1) != 0 {
        bad.push("procfs mounted below the root was not detached".into());
    }
    if fs::write("/data/new", b"x").is_ok() {
        bad.push("a submount of a read-only root accepted a write".into());
    }
    if Path::new("/proc/self").exists() {
        bad.push("host /proc is visible".into());
    }
    if fs::write("/new", b"x").is_ok() {
        bad.push("a read-only confined root accepted a write".into());
    }
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) } != 1 {
        bad.push("no_new_privs is not set".into());
    }
    let eff = caps::read(None, caps::CapSet::Effective).unwrap_or_default();
    if eff.iter().any(|c| !confine::KEPT_CAPS.contains(c))
        || eff.contains(&caps::Capability::CAP_SYS_ADMIN)
    {
        bad.push(format!("unexpected capabilities {eff:?}"));
    }
    if caps::has_cap(
        None,
        caps::CapSet::Bounding,
        caps::Capability::CAP_SYS_ADMIN,
    )
    .unwrap_or(true)
    {
        bad.push("CAP_SYS_ADMIN still in the bounding set".into());
    }
    // SAFETY: getpid touches no memory.
    if unsafe { libc::getpid() } != 1 {
        bad.push("not PID 1 of a new PID namespace".into());
    }
    for b in &bad {
        eprintln!("confinement: {b}");
    }
    if bad.is_empty() { 0 } else { 2 }
}

/// Inside a child that confined itself to the host `/`: host files are there, read-only;
/// the kernel interfaces are gone.
fn check_slash_confined(host_file: &Path) -> i32 {
    let mut bad = Vec::new();
    if !host_file.exists() {
        bad.push(format!("host file {} is not served", host_file.display()));
    }
    if Path::new("/proc/self").exists() || Path::new("/sys/kernel").exists() {
        bad.push("/proc or /sys is still mounted".into());
    }
    let probe = host_file.with_extension("gofer-probe");
    match fs::write(&probe, b"x") {
        Ok(()) => {
            let _ = fs::remove_file(&probe);
            bad.push("the read-only host root accepted a write".into());
        }
        Err(e) if e.raw_os_error() == Some(libc::EROFS) => {}
        Err(e) => bad.push(format!("write failed with {e}, expected EROFS")),
    }
    for b in &bad {
        eprintln!("confinement: {b}");
    }
    if bad.is_empty() { 0 } else { 2 }
}

fn me() -> Command {
    let mut c = Command::new(env::current_exe().expect("current_exe"));
    c.stdin(Stdio::null());
    c
}

fn skipped_if_no_namespaces(st: ExitStatus) -> Option<Outcome> {
    (st.code() == Some(NO_NAMESPACES))
        .then(|| Outcome::Skipped("cannot create namespaces here".into()))
}

fn seccomp_kills_a_forbidden_syscall() -> Outcome {
    let st = me().env(ROLE, "seccomp").status().expect("spawn");
    assert_eq!(
        st.signal(),
        Some(libc::SIGSYS),
        "child should die of SIGSYS, got {st:?}"
    );
    Outcome::Passed
}

struct Tree {
    _dir: tempfile::TempDir,
    root: PathBuf,
    outside: PathBuf,
}

fn tree() -> Tree {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    let outside = dir.path().join("outside");
    fs::create_dir(&root).expect("mkdir");
    fs::create_dir(&outside).expect("mkdir");
    fs::write(root.join("marker"), b"inside").expect("write");
    fs::write(outside.join("secret"), b"SECRET").expect("write");
    Tree {
        _dir: dir,
        root,
        outside,
    }
}

fn pivot_root_makes_the_served_root_slash() -> Outcome {
    let t = tree();
    let arg = format!(
        "{}\n{}",
        t.root.display(),
        t.outside.join("secret").display()
    );
    let st = me()
        .env(ROLE, "confine-check")
        .env(ARG, arg)
        .status()
        .expect("spawn");
    if let Some(o) = skipped_if_no_namespaces(st) {
        return o;
    }
    assert!(st.success(), "confinement checks failed: {st:?}");
    Outcome::Passed
}

fn serving_the_host_root_hides_kernel_interfaces() -> Outcome {
    let t = tree();
    let host_file = t.root.join("marker");
    let st = me()
        .env(ROLE, "confine-slash")
        .env(ARG, &host_file)
        .status()
        .expect("spawn");
    if let Some(o) = skipped_if_no_namespaces(st) {
        return o;
    }
    assert!(st.success(), "confinement to / failed: {st:?}");
    // Nothing the child did (detaching /proc, read-only mounts) reached this namespace.
    assert!(Path::new("/proc/self").exists());
    fs::write(t.root.join("after"), b"still writable").expect("host root still writable");
    Outcome::Passed
}

/// Spawns a confined gofer serving `root`; returns it and a connected client.
fn spawn_gofer(root: &Path, read_only: bool) -> (Child, Client) {
    let (c, s) = socketpair().expect("socketpair");
    let raw = s.as_raw_fd();
    let mut cmd = me();
    cmd.env(ROLE, "serve").env(ARG, root);
    if read_only {
        cmd.env("GOFER_TEST_RO", "1");
    }
    // SAFETY: dup2 is async-signal-safe; it only places the server socket at fd 3 in the
    // child between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(raw, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn().expect("spawn gofer");
    drop(s); // only the gofer holds the server end now
    (child, Client::new(c).expect("client"))
}

/// Runs `f` on another thread and fails (instead of hanging the suite) if it never returns.
fn bounded<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(120))
        .expect("the call hung")
}

fn confined_gofer_serves_a_client() -> Outcome {
    let t = tree();
    let (mut child, c) = spawn_gofer(&t.root, false);
    let root = match c.mount(b"") {
        Ok(r) => r.root,
        Err(_) => {
            let st = child.wait().expect("wait");
            if let Some(o) = skipped_if_no_namespaces(st) {
                return o;
            }
            panic!("mount failed; gofer exited with {st:?}");
        }
    };
    let w = c.walk(root.id, &["marker"]).expect("walk");
    let h = c
        .open_at(w.nodes[0].id, libc::O_RDONLY as u32)
        .expect("open");
    assert_eq!(c.pread(h.handle, 0, 100).expect("pread"), b"inside");
    // A donated fd works in this (unconfined) process.
    let mut donated = fs::File::from(h.fd.expect("donated fd"));
    let mut s = String::new();
    std::io::Read::read_to_string(&mut donated, &mut s).expect("read");
    assert_eq!(s, "inside");
    // Create, write, rename, symlink, readdir, unlink: the whole seccomp allowlist at work.
    let f = c
        .open_create_at(root.id, b"new", libc::O_RDWR as u32, 0o640, 0, 0)
        .expect("create");
    c.pwrite(f.handle, 0, b"written by the sandbox")
        .expect("pwrite");
    c.rename_at(root.id, b"new", root.id, b"renamed", 0)
        .expect("rename");
    assert_eq!(
        fs::read(t.root.join("renamed")).expect("host read"),
        b"written by the sandbox"
    );
    let d = c.mkdir_at(root.id, b"d", 0o755, 0, 0).expect("mkdir");
    c.symlink_at(d.id, b"up", b"../../outside/secret", 0, 0)
        .expect("symlink");
    c.link_at(root.id, b"hard", f.node.id).expect("link");
    c.set_stat(lisafs_proto::SetStatReq {
        node: f.node.id,
        mode: Some(0o600),
        size: Some(7),
        ..Default::default()
    })
    .expect("setstat");
    let dh = c.open_at(root.id, libc::O_RDONLY as u32).expect("open dir");
    let mut names: Vec<_> = c
        .getdents64(dh.handle, 0, 4096)
        .expect("getdents")
        .into_iter()
        .map(|e| e.name)
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            b"d".to_vec(),
            b"hard".to_vec(),
            b"marker".to_vec(),
            b"renamed".to_vec()
        ]
    );
    // Walking the symlink out stops at the symlink.
    let w = c.walk(d.id, &["up"]).expect("walk");
    assert!(w.nodes[0].stat.is_symlink());
    assert_eq!(
        c.open_at(w.nodes[0].id, 0).err(),
        Some(ClientError::Errno(Errno::ELOOP))
    );
    c.unlink_at(root.id, b"hard", 0).expect("unlink");
    c.fsync(f.handle, true).expect("fsync");
    c.fstatfs(root.id).expect("statfs");
    c.close(&[f.node.id, d.id], &[f.handle, dh.handle])
        .expect("close");
    drop(c);
    let st = child.wait().expect("wait");
    assert!(st.success(), "gofer exit after hang-up: {st:?}");
    assert_eq!(fs::read(t.outside.join("secret")).expect("read"), b"SECRET");
    Outcome::Passed
}

fn confined_read_only_gives_erofs() -> Outcome {
    let t = tree();
    let (mut child, c) = spawn_gofer(&t.root, true);
    let Ok(m) = c.mount(b"") else {
        let st = child.wait().expect("wait");
        return skipped_if_no_namespaces(st).unwrap_or_else(|| panic!("mount failed: {st:?}"));
    };
    let root = m.root;
    assert_eq!(
        c.open_create_at(root.id, b"n", 2, 0o600, 0, 0).err(),
        Some(ClientError::Errno(Errno::EROFS))
    );
    assert_eq!(
        c.mkdir_at(root.id, b"n", 0o700, 0, 0).err(),
        Some(ClientError::Errno(Errno::EROFS))
    );
    let w = c.walk(root.id, &["marker"]).expect("walk");
    assert_eq!(
        c.open_at(w.nodes[0].id, libc::O_RDWR as u32).err(),
        Some(ClientError::Errno(Errno::EROFS))
    );
    drop(c);
    assert!(child.wait().expect("wait").success());
    assert_eq!(fs::read_dir(&t.root).expect("readdir").count(), 1);
    Outcome::Passed
}

fn killed_gofer_fails_calls_instead_of_hanging() -> Outcome {
    let t = tree();
    let (mut child, c) = spawn_gofer(&t.root, false);
    let Ok(m) = c.mount(b"") else {
        let st = child.wait().expect("wait");
        return skipped_if_no_namespaces(st).unwrap_or_else(|| panic!("mount failed: {st:?}"));
    };
    child.kill().expect("kill");
    let st = child.wait().expect("wait");
    assert_eq!(st.signal(), Some(libc::SIGKILL));
    // The serving grandchild dies with its parent (PR_SET_PDEATHSIG); the socket closes.
    let c = std::sync::Arc::new(c);
    let root = m.root.id;
    let r = bounded({
        let c = c.clone();
        move || c.fstat(root)
    });
    assert!(r.is_err(), "a call to a dead gofer must fail: {r:?}");
    let r = bounded(move || c.walk(root, &["marker"]));
    assert_eq!(r.err(), Some(ClientError::Disconnected));
    Outcome::Passed
}
