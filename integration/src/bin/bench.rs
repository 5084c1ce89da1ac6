//! `bench`: the sandbox against native, side by side, in one command.
//!
//! Builds its own static C workloads with `cc`, runs each natively and inside
//! `runsc do` on every requested platform (and optionally under a peer runtime's `do`),
//! alternating the order, and prints the median of several runs after a warm-up with
//! sandbox/native ratios. It is a measurement, not a test: nothing is asserted.
//!
//! ```text
//! cargo run --release -p integration --bin bench -- [--platform ptrace,kvm,systrap] [--peer /usr/bin/runsc]
//!     [--filter NAME[,NAME...]] [--runs N] [--json FILE] [--runsc PATH]
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const WORK_C: &str = include_str!("../../bench/work.c");

/// How a row's figure is obtained and what it means.
#[derive(Clone, Copy, PartialEq)]
enum Metric {
    /// The workload prints nanoseconds per operation (lower is better).
    NsPerOp,
    /// The workload prints MB/s (higher is better).
    MbPerSec,
    /// Wall time of the whole command in milliseconds (lower is better).
    WallMs,
    /// Peak RSS in MiB of one sandbox process class (no native value).
    RssMib(&'static str),
    /// A server started under the variant on a network link of its own, loaded from the
    /// host by `wrk` for a few seconds: requests per second (higher is better).
    ReqPerSec,
    /// The same, as the bytes per second `wrk` received, in MB/s (higher is better).
    HttpMbPerSec,
}

impl Metric {
    fn unit(self) -> &'static str {
        match self {
            Metric::NsPerOp => "ns/op",
            Metric::MbPerSec => "MB/s",
            Metric::WallMs => "ms",
            Metric::RssMib(_) => "MiB",
            Metric::ReqPerSec => "req/s",
            Metric::HttpMbPerSec => "MB/s",
        }
    }

    /// Whether a larger figure is better (the ratio is then inverted).
    fn higher_is_better(self) -> bool {
        matches!(
            self,
            Metric::MbPerSec | Metric::ReqPerSec | Metric::HttpMbPerSec
        )
    }
}

struct Workload {
    name: &'static str,
    metric: Metric,
    argv: Vec<String>,
}

/// One way of running a command: natively, or through a runtime's `do`.
#[derive(Clone)]
struct Variant {
    label: String,
    prefix: Vec<String>,
    /// The prefix for a server workload: the variant with a network link of its own
    /// that the host reaches (a sandbox's `--network=sandbox` veth; natively, a network
    /// namespace with the same kind of veth pair).
    net_prefix: Vec<String>,
}

struct Options {
    platforms: Vec<String>,
    peer: Option<String>,
    filter: Option<String>,
    runs: usize,
    json: Option<PathBuf>,
    runsc: PathBuf,
}

fn usage() -> ! {
    eprintln!(
        "usage: bench [--platform ptrace,kvm,systrap] [--peer PATH] [--filter SUBSTR] [--runs N] [--json FILE] [--runsc PATH]"
    );
    std::process::exit(2)
}

fn parse_args() -> Options {
    let mut o = Options {
        platforms: Vec::new(),
        peer: None,
        filter: None,
        runs: 5,
        json: None,
        runsc: PathBuf::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let (key, inline) = match a.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (a.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .unwrap_or_else(|| usage())
        };
        match key.as_str() {
            "--platform" => o.platforms.extend(value().split(',').map(str::to_string)),
            "--peer" => o.peer = Some(value()),
            "--filter" => o.filter = Some(value()),
            "--runs" => {
                o.runs = value()
                    .parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .unwrap_or_else(|| usage())
            }
            "--json" => o.json = Some(PathBuf::from(value())),
            "--runsc" => o.runsc = PathBuf::from(value()),
            "-h" | "--help" => usage(),
            _ => {
                eprintln!("bench: unknown argument {a}");
                usage()
            }
        }
    }
    if o.runsc.as_os_str().is_empty() {
        // The runsc next to this binary, built first when missing or stale.
        o.runsc = integration::runsc().to_path_buf();
    }
    if o.platforms.is_empty() {
        o.platforms.push("ptrace".into());
        if Path::new("/dev/kvm").exists() {
            o.platforms.push("kvm".into());
        }
        o.platforms.push("systrap".into());
    }
    o
}

fn cc(out: &Path, src: &Path, extra: &[&str]) -> Result<(), String> {
    let st = Command::new("cc")
        .args(["-O2", "-static", "-o"])
        .arg(out)
        .arg(src)
        .args(extra)
        .status()
        .map_err(|e| format!("cc: {e}"))?;
    if st.success() {
        Ok(())
    } else {
        Err(format!("cc failed for {}", src.display()))
    }
}

/// Writes the fixtures into `dir` (outside /tmp: the sandbox has its own /tmp) and
/// returns the workloads.
fn prepare(dir: &Path) -> Result<Vec<Workload>, String> {
    let io = |e: std::io::Error| e.to_string();
    std::fs::create_dir_all(dir).map_err(io)?;
    let src = dir.join("work.c");
    std::fs::write(&src, WORK_C).map_err(io)?;
    let work = dir.join("work");
    cc(&work, &src, &["-pthread"])?;
    let true_c = dir.join("true.c");
    std::fs::write(&true_c, "int main(void) { return 0; }\n").map_err(io)?;
    let true_bin = dir.join("true");
    cc(&true_bin, &true_c, &[])?;

    let small = dir.join("small.dat");
    std::fs::write(&small, vec![7u8; 64 << 10]).map_err(io)?;
    let big = dir.join("big.dat");
    if std::fs::metadata(&big).map(|m| m.len()).unwrap_or(0) != 64 << 20 {
        std::fs::write(&big, vec![1u8; 64 << 20]).map_err(io)?;
    }

    // A mid-size C file for the compiler workload: many small functions and a table.
    let mut csrc = String::from("#include <stdio.h>\n#include <string.h>\n");
    for i in 0..400 {
        let _ = writeln!(
            csrc,
            "static int f{i}(int x) {{ int s = 0; for (int j = 0; j < x; j++) {{ s += (j * {i}) ^ (s >> 3); if (s > 100000) s -= {i} + 7; }} return s; }}"
        );
    }
    csrc.push_str("int main(void) { int t = 0;\n");
    for i in 0..400 {
        let _ = writeln!(csrc, "  t += f{i}({});", i % 17);
    }
    csrc.push_str("  printf(\"%d\\n\", t); return 0; }\n");
    let gcc_src = dir.join("mid.c");
    std::fs::write(&gcc_src, csrc).map_err(io)?;

    let py = dir.join("script.py");
    std::fs::write(
        &py,
        "import json, hashlib\nd = {str(i): [i, i * i, str(i) * 3] for i in range(20000)}\ns = json.dumps(d, sort_keys=True)\nprint(hashlib.sha256(s.encode()).hexdigest()[:16], sum(len(v[2]) for v in json.loads(s).values()))\n",
    )
    .map_err(io)?;
    let sql = dir.join("script.sql");
    let mut q = String::from("CREATE TABLE t(a INTEGER PRIMARY KEY, b TEXT, c REAL);\nBEGIN;\n");
    for i in 0..5000 {
        let _ = writeln!(q, "INSERT INTO t(b, c) VALUES ('row{i}', {i}.5);");
    }
    q.push_str("COMMIT;\nSELECT count(*), sum(c), max(length(b)) FROM t WHERE a % 3 = 0;\n");
    std::fs::write(&sql, q).map_err(io)?;

    let repo = git_checkout(dir)?;
    // nginx's site: its files below the bench directory, the workers drop to `nobody`.
    let site = if Path::new(integration::NGINX).exists() && Path::new(WRK).exists() {
        Some(integration::nginx_site(&dir.join("nginx"), HTTP_PORT, 2).map_err(io)?)
    } else {
        None
    };

    let s = |p: &Path| p.display().to_string();
    let w = |name, metric, argv: Vec<String>| Workload { name, metric, argv };
    let work_s = s(&work);
    let m = |mode: &str, iters: &str, arg: &str| {
        let mut v = vec![work_s.clone(), mode.to_string(), iters.to_string()];
        if !arg.is_empty() {
            v.push(arg.to_string());
        }
        v
    };
    let mut http = Vec::new();
    if let Some(site) = &site {
        let serve = vec!["sh".into(), "-c".into(), integration::nginx_command(site)];
        http.push(w("http small page nginx", Metric::ReqPerSec, serve.clone()));
        http.push(w("http 1MiB file nginx", Metric::HttpMbPerSec, serve));
    } else {
        eprintln!(
            "bench: no {} or {WRK}: no http rows (apt-get install nginx-light wrk)",
            integration::NGINX
        );
    }
    let mut rows = vec![
        w("syscall getpid", Metric::NsPerOp, m("getpid", "20000", "")),
        w(
            "open+close",
            Metric::NsPerOp,
            m("openclose", "2000", &s(&small)),
        ),
        w("stat", Metric::NsPerOp, m("stat", "2000", &s(&small))),
        w(
            "read 4KiB cached",
            Metric::NsPerOp,
            m("read4k", "5000", &s(&small)),
        ),
        w(
            "seq read 64MiB",
            Metric::MbPerSec,
            m("seqread", "2", &s(&big)),
        ),
        w("pipe ping-pong", Metric::NsPerOp, m("pipe", "2000", "")),
        w("unix ping-pong", Metric::NsPerOp, m("unix", "2000", "")),
        w("tcp loopback 256MiB", Metric::MbPerSec, m("tcp", "256", "")),
        w("tcp ping-pong", Metric::NsPerOp, m("tcprr", "2000", "")),
        w("fork+wait", Metric::NsPerOp, m("forkwait", "100", "")),
        w(
            "fork+exec true",
            Metric::NsPerOp,
            m("forkexec", "50", &s(&true_bin)),
        ),
        w(
            "thread create+join",
            Metric::NsPerOp,
            m("thread", "500", ""),
        ),
        w("mmap+touch 1 page", Metric::NsPerOp, m("mmap1", "2000", "")),
        w("touch 64MiB anon", Metric::NsPerOp, m("touch64m", "2", "")),
        w(
            "start-up /bin/true",
            Metric::WallMs,
            vec!["/bin/true".into()],
        ),
        w(
            "idle Sentry peak RSS",
            Metric::RssMib("sentry"),
            vec!["/bin/sleep".into(), "1".into()],
        ),
        w(
            "idle Gofer peak RSS",
            Metric::RssMib("gofer"),
            vec!["/bin/sleep".into(), "1".into()],
        ),
        w(
            "gcc -O2 mid-size C",
            Metric::WallMs,
            vec![
                "gcc".into(),
                "-O2".into(),
                "-c".into(),
                "-o".into(),
                "/dev/null".into(),
                s(&gcc_src),
            ],
        ),
        w(
            "tree walk find /usr",
            Metric::WallMs,
            vec!["sh".into(), "-c".into(), "find /usr -type f | wc -l".into()],
        ),
        w(
            "git status 3000 files",
            Metric::WallMs,
            vec![
                "git".into(),
                "-C".into(),
                s(&repo),
                "status".into(),
                "--porcelain".into(),
            ],
        ),
        w("python3 script", Metric::WallMs, vec![python3(), s(&py)]),
        w(
            "sqlite3 insert+query",
            Metric::WallMs,
            vec![
                "sh".into(),
                "-c".into(),
                format!("sqlite3 :memory: < {}", s(&sql)),
            ],
        ),
    ];
    rows.extend(http);
    Ok(rows)
}

/// A git checkout of 3000 small files in 30 directories under `dir` (made once), for the
/// `git status` row: every file is stat'ed against the index.
fn git_checkout(dir: &Path) -> Result<PathBuf, String> {
    let repo = dir.join("repo");
    if repo.join(".git").join("index").exists() {
        return Ok(repo);
    }
    let io = |e: std::io::Error| format!("git checkout: {e}");
    let _ = std::fs::remove_dir_all(&repo);
    for d in 0..30 {
        let sub = repo.join(format!("d{d:02}"));
        std::fs::create_dir_all(&sub).map_err(io)?;
        for f in 0..100 {
            std::fs::write(sub.join(format!("f{f:03}.txt")), format!("{d} {f}\n")).map_err(io)?;
        }
    }
    let git = |args: &[&str]| {
        let mut cmd = Command::new("git");
        cmd.arg("-C").arg(&repo).args([
            "-c",
            "user.name=bench",
            "-c",
            "user.email=bench@localhost",
        ]);
        run_tool(cmd, args)
    };
    git(&["init", "-q"])?;
    git(&["add", "."])?;
    git(&["commit", "-q", "-m", "bench"])?;
    Ok(repo)
}

/// Debian's interpreter by absolute path when it is there: `python3` on a machine's `PATH`
/// may be a pyenv shim, a bash script that forks and execs dozens of programs first,
/// which would make the row measure process creation rather than Python.
fn python3() -> String {
    let debian = "/usr/bin/python3";
    if Path::new(debian).exists() {
        debian.into()
    } else {
        "python3".into()
    }
}

/// Runs the tool `cmd` with `args` more; its stderr says why it failed.
fn run_tool(mut cmd: Command, args: &[&str]) -> Result<(), String> {
    let tool = cmd.get_program().to_string_lossy().into_owned();
    let out = cmd
        .args(args)
        .output()
        .map_err(|e| format!("{tool}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{tool} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Runs `argv` under `variant` in `cwd`; returns the figure, or why it failed.
fn measure(variant: &Variant, w: &Workload, cwd: &Path) -> Result<f64, String> {
    let server = matches!(w.metric, Metric::ReqPerSec | Metric::HttpMbPerSec);
    let mut full = if server {
        variant.net_prefix.clone()
    } else {
        variant.prefix.clone()
    };
    full.extend(w.argv.iter().cloned());
    let mut cmd = Command::new(&full[0]);
    cmd.args(&full[1..])
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let child = cmd.spawn().map_err(|e| format!("spawn {}: {e}", full[0]))?;
    if let Metric::RssMib(class) = w.metric {
        return peak_rss(child, class, variant.prefix.is_empty());
    }
    if server {
        return http_load(child, w.metric);
    }
    let out = wait_with_timeout(child, Duration::from_secs(120))?;
    let wall = start.elapsed();
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(format!(
            "{} ({})",
            out.status,
            err.lines().last().unwrap_or("").trim()
        ));
    }
    match w.metric {
        Metric::WallMs => Ok(wall.as_secs_f64() * 1e3),
        _ => String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse::<f64>()
            .map_err(|_| "unparsable output".to_string()),
    }
}

/// Debian's HTTP load generator.
const WRK: &str = "/usr/bin/wrk";
/// The port nginx listens on in every variant (each has a network of its own).
const HTTP_PORT: u16 = 8080;

/// Loads the server `child` started from the host with `wrk` for three seconds, once it
/// has printed its address (`inet A.B.C.D/N`) and accepts connections; then stops it.
fn http_load(mut child: std::process::Child, metric: Metric) -> Result<f64, String> {
    use std::io::BufRead as _;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut lines = std::io::BufReader::new(stdout).lines();
    let result = (|| {
        let addr = loop {
            let line = lines
                .next()
                .ok_or("the server ended before printing its address")?
                .map_err(|e| e.to_string())?;
            if let Some(a) =
                integration::inet_address(&line).and_then(|a| a.parse::<std::net::Ipv4Addr>().ok())
            {
                break a;
            }
        };
        let sa = std::net::SocketAddr::from((addr, HTTP_PORT));
        let start = Instant::now();
        while std::net::TcpStream::connect_timeout(&sa, Duration::from_secs(1)).is_err() {
            if start.elapsed() > Duration::from_secs(30) {
                return Err(format!("{sa} never accepted a connection"));
            }
            if let Ok(Some(st)) = child.try_wait() {
                return Err(format!("the server ended: {st}"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let path = match metric {
            Metric::ReqPerSec => "index.html",
            _ => "big.bin",
        };
        let out = Command::new(WRK)
            .args(["-t2", "-c16", "-d3s"])
            .arg(format!("http://{sa}/{path}"))
            .output()
            .map_err(|e| format!("{WRK}: {e}"))?;
        let text = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() || text.contains("Non-2xx") {
            return Err(format!("wrk: {}", text.trim().replace('\n', " | ")));
        }
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.trim().strip_prefix(name))
                .map(str::trim)
                .ok_or_else(|| format!("wrk printed no {name}"))
        };
        match metric {
            Metric::ReqPerSec => field("Requests/sec:")?
                .parse::<f64>()
                .map_err(|e| e.to_string()),
            _ => wrk_bytes(field("Transfer/sec:")?).map(|b| b / 1e6),
        }
    })();
    // SAFETY: kill(2) of our own child's pid with a plain signal number.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    match wait_with_timeout(child, Duration::from_secs(10)) {
        Err(_) => Err("the server did not stop on SIGTERM".into()),
        // A server that could not start says why on stderr.
        Ok(out) => result.map_err(|e| {
            let err = String::from_utf8_lossy(&out.stderr);
            match err.lines().last() {
                Some(l) => format!("{e}: {}", l.trim()),
                None => e,
            }
        }),
    }
}

/// `wrk`'s human-readable byte figures ("1.21GB", "803.51KB"; binary multiples).
fn wrk_bytes(v: &str) -> Result<f64, String> {
    let split = v
        .find(|c: char| c.is_ascii_alphabetic())
        .ok_or_else(|| format!("no unit in {v:?}"))?;
    let (n, unit) = v.split_at(split);
    let n: f64 = n.parse().map_err(|_| format!("not a number: {v:?}"))?;
    let k = match unit {
        "B" => 1.0,
        "KB" => 1024.0,
        "MB" => 1024.0 * 1024.0,
        "GB" => 1024.0 * 1024.0 * 1024.0,
        _ => return Err(format!("unknown unit in {v:?}")),
    };
    Ok(n * k)
}

/// A network namespace with a veth pair to the host, like the one `runsc do
/// --network=sandbox` makes, for the native side of the server rows; deleted on drop.
struct NativeNetns {
    name: String,
}

impl NativeNetns {
    fn new() -> Result<NativeNetns, String> {
        let pid = std::process::id();
        let ns = NativeNetns {
            name: format!("rsbench-{pid}"),
        };
        let host_end = format!("rsbh{pid}");
        let ip = |args: &[&str]| run_tool(Command::new("ip"), args);
        ip(&["netns", "add", &ns.name])?;
        let n = ns.name.as_str();
        ip(&[
            "link", "add", &host_end, "type", "veth", "peer", "name", "eth0", "netns", n,
        ])?;
        ip(&["addr", "add", "10.214.0.1/30", "dev", &host_end])?;
        ip(&["link", "set", &host_end, "up"])?;
        ip(&["-n", n, "addr", "add", "10.214.0.2/30", "dev", "eth0"])?;
        ip(&["-n", n, "link", "set", "eth0", "up"])?;
        ip(&["-n", n, "link", "set", "lo", "up"])?;
        Ok(ns)
    }
}

impl Drop for NativeNetns {
    fn drop(&mut self) {
        // Deleting the namespace deletes the pair.
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

fn wait_with_timeout(
    mut child: std::process::Child,
    limit: Duration,
) -> Result<std::process::Output, String> {
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => return child.wait_with_output().map_err(|e| e.to_string()),
            Ok(None) if start.elapsed() > limit => {
                let _ = child.kill();
                let _ = child.wait();
                return Err("timed out".into());
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(2)),
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// Peak RSS (VmHWM) of the largest descendant whose command line names `class`
/// ("sentry": the sandbox/boot process; "gofer"), sampled while an idle command runs.
fn peak_rss(child: std::process::Child, class: &str, native: bool) -> Result<f64, String> {
    if native {
        let _ = wait_with_timeout(child, Duration::from_secs(30));
        return Err("n/a".into());
    }
    let root = child.id() as i32;
    std::thread::sleep(Duration::from_millis(700));
    let mut best = 0u64;
    for pid in descendants(root) {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        // Our processes say `... gofer ...` / `... boot ...` (the boot command line also
        // names `--gofer-fd`); gVisor's call themselves runsc-gofer / runsc-sandbox.
        let words: Vec<&str> = cmdline.split_whitespace().collect();
        let is_sentry = words
            .iter()
            .any(|w| *w == "boot" || w.ends_with("runsc-sandbox"));
        let is_gofer = !is_sentry
            && words
                .iter()
                .any(|w| *w == "gofer" || w.ends_with("runsc-gofer"));
        if (class == "gofer" && is_gofer) || (class == "sentry" && is_sentry) {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            if let Some(kb) = status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
            {
                best = best.max(kb);
            }
        }
    }
    let out = wait_with_timeout(child, Duration::from_secs(30))?;
    if !out.status.success() {
        return Err(format!("{}", out.status));
    }
    if best == 0 {
        Err(format!("no {class} process seen"))
    } else {
        Ok(best as f64 / 1024.0)
    }
}

fn descendants(root: i32) -> Vec<i32> {
    let mut parent_of = BTreeMap::new();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                continue;
            };
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // The ppid is the second field after the parenthesised command name.
            if let Some(ppid) = stat
                .rsplit_once(')')
                .and_then(|(_, r)| r.split_whitespace().nth(1))
                && let Ok(ppid) = ppid.parse::<i32>()
            {
                parent_of.insert(pid, ppid);
            }
        }
    }
    let mut out = Vec::new();
    let mut frontier = vec![root];
    while let Some(p) = frontier.pop() {
        for (&c, &pp) in &parent_of {
            if pp == p {
                out.push(c);
                frontier.push(c);
            }
        }
    }
    out
}

fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// Ratio "how many times the cost of `base`": for MB/s the inverse, so >1 is slower.
fn ratio(metric: Metric, x: Option<f64>, base: Option<f64>) -> String {
    match (x, base) {
        (Some(x), Some(b)) if x > 0.0 && b > 0.0 => {
            let r = if metric.higher_is_better() {
                b / x
            } else {
                x / b
            };
            format!("{r:.2}x")
        }
        _ => "-".into(),
    }
}

fn fmt_val(v: &Result<f64, String>) -> String {
    match v {
        Ok(x) if *x >= 100.0 => format!("{x:.0}"),
        Ok(x) => format!("{x:.2}"),
        Err(e) if e == "n/a" => "n/a".into(),
        Err(_) => "FAILED".into(),
    }
}

fn main() {
    let o = parse_args();
    let target = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("."));
    let dir = target.join("bench-work");
    let workloads = match prepare(&dir) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("bench: preparing workloads: {e}");
            std::process::exit(1);
        }
    };
    let workloads: Vec<Workload> = workloads
        .into_iter()
        .filter(|w| {
            o.filter
                .as_deref()
                .is_none_or(|f| f.split(',').any(|f| w.name.contains(f)))
        })
        .collect();

    // The server rows' native side runs in a network namespace of its own.
    let netns = if workloads
        .iter()
        .any(|w| matches!(w.metric, Metric::ReqPerSec | Metric::HttpMbPerSec))
    {
        match NativeNetns::new() {
            Ok(ns) => Some(ns),
            Err(e) => {
                eprintln!("bench: a network namespace for native servers: {e}");
                None
            }
        }
    } else {
        None
    };
    let mut variants = vec![Variant {
        label: "native".into(),
        prefix: vec![],
        net_prefix: match &netns {
            Some(ns) => vec!["ip".into(), "netns".into(), "exec".into(), ns.name.clone()],
            None => vec!["false".into()],
        },
    }];
    for p in &o.platforms {
        let runsc = o.runsc.display().to_string();
        let platform = format!("--platform={p}");
        variants.push(Variant {
            label: p.clone(),
            prefix: vec![runsc.clone(), platform.clone(), "do".into(), "--".into()],
            net_prefix: vec![
                runsc,
                platform,
                "do".into(),
                "--network=sandbox".into(),
                "--".into(),
            ],
        });
    }
    if let Some(peer) = &o.peer {
        variants.push(Variant {
            label: "peer".into(),
            prefix: vec![
                peer.clone(),
                "--network=none".into(),
                "do".into(),
                "--".into(),
            ],
            net_prefix: vec![
                peer.clone(),
                "--network=sandbox".into(),
                "do".into(),
                "--".into(),
            ],
        });
    }

    let total = workloads.len() * variants.len() * (o.runs + 1);
    let mut done = 0usize;
    // results[workload][variant] = median or failure
    let mut results: Vec<Vec<Result<f64, String>>> = Vec::new();
    for w in &workloads {
        let mut samples: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
        let mut errors: Vec<Option<String>> = vec![None; variants.len()];
        for run in 0..=o.runs {
            // Alternate the order so drift and caches favour no variant.
            for k in 0..variants.len() {
                let vi = (k + run) % variants.len();
                done += 1;
                eprint!(
                    "\r[{done}/{total}] {} on {}            ",
                    w.name, variants[vi].label
                );
                let _ = std::io::stderr().flush();
                if errors[vi].is_some() {
                    continue;
                }
                match measure(&variants[vi], w, &dir) {
                    Ok(v) if run > 0 => samples[vi].push(v),
                    Ok(_) => {}
                    Err(e) => errors[vi] = Some(e),
                }
            }
        }
        results.push(
            samples
                .iter_mut()
                .zip(errors)
                .map(|(s, e)| match e {
                    Some(e) => Err(e),
                    None => median(s).ok_or_else(|| "no samples".to_string()),
                })
                .collect(),
        );
    }
    eprintln!();

    // The table: value per variant, then each sandbox column's ratio to native, and to the peer.
    let mut header = vec!["workload".to_string(), "unit".to_string()];
    header.extend(variants.iter().map(|v| v.label.clone()));
    for v in variants.iter().skip(1) {
        header.push(format!("{}/native", v.label));
    }
    let peer_idx = o.peer.as_ref().map(|_| variants.len() - 1);
    if let Some(pi) = peer_idx {
        for v in variants.iter().skip(1).take(pi - 1) {
            header.push(format!("{}/peer", v.label));
        }
    }
    let mut rows = vec![header];
    for (w, res) in workloads.iter().zip(&results) {
        let mut row = vec![w.name.to_string(), w.metric.unit().to_string()];
        row.extend(res.iter().map(fmt_val));
        let ok = |i: usize| res[i].as_ref().ok().copied();
        for i in 1..variants.len() {
            row.push(ratio(w.metric, ok(i), ok(0)));
        }
        if let Some(pi) = peer_idx {
            for i in 1..pi {
                row.push(ratio(w.metric, ok(i), ok(pi)));
            }
        }
        rows.push(row);
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    for (i, r) in rows.iter().enumerate() {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(c, cell)| {
                if c == 0 {
                    format!("{cell:<w$}", w = widths[c])
                } else {
                    format!("{cell:>w$}", w = widths[c])
                }
            })
            .collect();
        println!("{}", line.join("  "));
        if i == 0 {
            println!(
                "{}",
                widths
                    .iter()
                    .map(|&w| "-".repeat(w))
                    .collect::<Vec<_>>()
                    .join("  ")
            );
        }
    }
    for (w, res) in workloads.iter().zip(&results) {
        for (v, r) in variants.iter().zip(res) {
            if let Err(e) = r
                && e != "n/a"
            {
                println!("failed: {} on {}: {e}", w.name, v.label);
            }
        }
    }

    if let Some(path) = &o.json {
        let mut j = String::from("{\"runs\": ");
        let _ = write!(j, "{}, \"variants\": [", o.runs);
        j.push_str(
            &variants
                .iter()
                .map(|v| format!("\"{}\"", v.label))
                .collect::<Vec<_>>()
                .join(", "),
        );
        j.push_str("], \"results\": [");
        let items: Vec<String> = workloads
            .iter()
            .zip(&results)
            .map(|(w, res)| {
                let vals: Vec<String> = variants
                    .iter()
                    .zip(res)
                    .map(|(v, r)| match r {
                        Ok(x) => format!("\"{}\": {x}", v.label),
                        Err(e) => format!(
                            "\"{}\": {{\"error\": \"{}\"}}",
                            v.label,
                            e.replace(['"', '\\'], "'")
                        ),
                    })
                    .collect();
                format!(
                    "{{\"workload\": \"{}\", \"unit\": \"{}\", {}}}",
                    w.name,
                    w.metric.unit(),
                    vals.join(", ")
                )
            })
            .collect();
        j.push_str(&items.join(", "));
        j.push_str("]}\n");
        if let Err(e) = std::fs::write(path, j) {
            eprintln!("bench: writing {}: {e}", path.display());
        }
    }
}
