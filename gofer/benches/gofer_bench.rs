//! Gofer against native, measured in the same run: Walk+FStat, OpenAt plus a read on the
//! donated fd, and Getdents64 of a 10 000-entry directory; then request throughput with
//! 1, 2 and 4 server threads under 4 concurrent client threads. Prints ratios.
//!
//! Run with `cargo bench -p gofer` (`GOFER_BENCH_SCALE=0.1` for a quick run).

use std::fs;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gofer::{GoferOptions, serve};
use lisafs_proto::{Client, HandleId, NodeId, socketpair};

fn scale(n: u64) -> u64 {
    let s: f64 = std::env::var("GOFER_BENCH_SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1.0);
    ((n as f64 * s) as u64).max(1)
}

fn per_op(d: Duration, n: u64) -> f64 {
    d.as_secs_f64() * 1e6 / n as f64
}

/// Per-operation time in microseconds: the best of 3 rounds of `n / 3` calls each, after
/// a warm-up (the machine is shared: the best round is the least disturbed one).
fn time(n: u64, mut f: impl FnMut()) -> f64 {
    for _ in 0..n / 10 + 1 {
        f();
    }
    let per_round = (n / 3).max(1);
    (0..3)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..per_round {
                f();
            }
            per_op(t.elapsed(), per_round)
        })
        .fold(f64::INFINITY, f64::min)
}

struct Gofer {
    client: Option<Arc<Client>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Gofer {
    fn start(root: &Path, threads: usize) -> Gofer {
        let (c, s) = socketpair().expect("socketpair");
        let root = root.to_path_buf();
        let thread = std::thread::spawn(move || {
            serve(
                &root,
                s,
                GoferOptions {
                    read_only: false,
                    confine: false,
                    threads,
                },
            )
            .expect("serve");
        });
        Gofer {
            client: Some(Arc::new(Client::new(c).expect("client"))),
            thread: Some(thread),
        }
    }
    fn client(&self) -> &Arc<Client> {
        self.client.as_ref().expect("client")
    }
}

impl Drop for Gofer {
    fn drop(&mut self) {
        drop(self.client.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Per round trip: a 16-byte message echoed over a `SOCK_SEQPACKET` socketpair between
/// two threads.
fn seqpacket_pingpong(n: u64) -> f64 {
    use std::os::unix::net::UnixDatagram;
    let (a, b) = socketpair().expect("socketpair");
    // SOCK_SEQPACKET keeps message boundaries like a datagram socket: plain send/recv.
    let (a, b) = (UnixDatagram::from(a), UnixDatagram::from(b));
    let echo = std::thread::spawn(move || {
        let mut buf = [0u8; 16];
        while let Ok(k) = b.recv(&mut buf) {
            if k == 0 || b.send(&buf[..k]).is_err() {
                break;
            }
        }
    });
    let mut buf = [0u8; 16];
    let t = time(n, || {
        a.send(&[1u8; 16]).expect("send");
        a.recv(&mut buf).expect("recv");
    });
    let _ = a.shutdown(std::net::Shutdown::Both);
    let _ = echo.join();
    t
}

/// One raw `getdents64` into `buf` (the native baseline: same 64 KiB budget as the gofer
/// requests); returns the bytes filled.
fn native_getdents(dir: &fs::File, buf: &mut [u8]) -> usize {
    use std::os::fd::AsRawFd;
    // SAFETY: `buf` is writable for `buf.len()` bytes and outlives the call.
    let n = unsafe {
        libc::syscall(
            libc::SYS_getdents64,
            dir.as_raw_fd(),
            buf.as_mut_ptr(),
            buf.len(),
        )
    };
    usize::try_from(n).expect("getdents64")
}

/// Entries in a `linux_dirent64` buffer, without `.` and `..` (as the gofer returns them).
fn count_entries(buf: &[u8]) -> usize {
    let (mut at, mut count) = (0, 0);
    while at + 19 < buf.len() {
        let reclen = u16::from_ne_bytes([buf[at + 16], buf[at + 17]]) as usize;
        let name = &buf[at + 19..at + reclen];
        let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
        if name != b"." && name != b".." {
            count += 1;
        }
        at += reclen;
    }
    count
}

fn row(name: &str, gofer: f64, native: f64) {
    println!(
        "{name:<34} gofer {gofer:>9.2} us   native {native:>9.2} us   ratio {:>6.1}x",
        gofer / native
    );
}

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    fs::create_dir_all(root.join("a/b")).expect("mkdir");
    fs::write(root.join("a/b/file"), vec![7u8; 4096]).expect("write");
    fs::create_dir(root.join("big")).expect("mkdir");
    for i in 0..10_000 {
        fs::write(root.join(format!("big/entry-{i:05}")), b"").expect("create");
    }
    let threads: usize = std::env::var("GOFER_BENCH_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(gofer::default_threads());
    println!(
        "gofer benchmark: unconfined gofer in a thread, {threads} server threads; per operation"
    );
    let g = Gofer::start(root, threads);
    let c = g.client();
    let rootn = c.mount(b"").expect("mount").root.id;

    // The floor: one FStat round trip, and a bare SOCK_SEQPACKET ping-pong between two
    // threads (what any request over the socket costs before the gofer does anything).
    let n = scale(20_000);
    let fstat_rtt = time(n, || {
        c.fstat(rootn).expect("fstat");
    });
    let pingpong = seqpacket_pingpong(n);
    println!(
        "{:<34} gofer {fstat_rtt:>9.2} us   bare socket round trip {pingpong:>7.2} us",
        "FStat round trip (floor)"
    );

    // Walk + FStat (nodes released in batches, as a caching client would).
    let n = scale(20_000);
    let mut pending: Vec<NodeId> = Vec::new();
    let gofer_walk = time(n, || {
        let w = c.walk(rootn, &["a", "b", "file"]).expect("walk");
        let last = w.nodes[2].id;
        c.fstat(last).expect("fstat");
        pending.extend(w.nodes.iter().map(|i| i.id));
        if pending.len() >= 3000 {
            c.close(&pending, &[]).expect("close");
            pending.clear();
        }
    });
    c.close(&pending, &[]).expect("close");
    let path = root.join("a/b/file");
    let native_walk = time(n, || {
        fs::symlink_metadata(&path).expect("stat");
    });
    row("Walk(3 components)+FStat", gofer_walk, native_walk);

    // OpenAt + 4 KiB read on the donated fd.
    let file = c.walk(rootn, &["a", "b", "file"]).expect("walk").nodes[2].id;
    let mut buf = vec![0u8; 4096];
    let mut handles: Vec<HandleId> = Vec::new();
    let gofer_open = time(n, || {
        let o = c.open_at(file, libc::O_RDONLY as u32).expect("open");
        let f = fs::File::from(o.fd.expect("donated fd"));
        assert_eq!(f.read_at(&mut buf, 0).expect("read"), 4096);
        handles.push(o.handle);
        if handles.len() >= 1000 {
            c.close(&[], &handles).expect("close");
            handles.clear();
        }
    });
    c.close(&[], &handles).expect("close");
    let native_open = time(n, || {
        let f = fs::File::open(&path).expect("open");
        assert_eq!(f.read_at(&mut buf, 0).expect("read"), 4096);
    });
    row(
        "OpenAt + read(4 KiB) on donated fd",
        gofer_open,
        native_open,
    );

    // Getdents64 of a 10k-entry directory (64 KiB per request).
    let big = c.walk(rootn, &["big"]).expect("walk").nodes[0].id;
    let m = scale(100);
    let gofer_dents = time(m, || {
        let o = c.open_at(big, libc::O_RDONLY as u32).expect("open");
        let (mut off, mut count) = (0, 0);
        loop {
            let ents = c.getdents64(o.handle, off, 65536).expect("getdents");
            let Some(last) = ents.last() else { break };
            off = last.off;
            count += ents.len();
        }
        assert_eq!(count, 10_000);
        c.close(&[], &[o.handle]).expect("close");
    });
    let bigp = root.join("big");
    let mut dbuf = vec![0u8; 65536];
    let native_dents = time(m, || {
        let d = fs::File::open(&bigp).expect("open dir");
        let mut count = 0;
        loop {
            let n = native_getdents(&d, &mut dbuf);
            if n == 0 {
                break;
            }
            count += count_entries(&dbuf[..n]);
        }
        assert_eq!(count, 10_000);
    });
    row(
        "Getdents64 of 10k entries (whole dir)",
        gofer_dents,
        native_dents,
    );
    drop(g);

    // Concurrency: server threads 1/2/4, each measured in 3 interleaved rounds (best
    // kept): single-client Walk+FStat latency and 4-client Walk+FStat+Close throughput.
    println!("\nserver threads (best of 3 interleaved rounds):");
    let mut best = [(f64::INFINITY, 0f64); 3];
    for _round in 0..3 {
        for (slot, threads) in [1usize, 2, 4].into_iter().enumerate() {
            let g = Gofer::start(root, threads);
            let c = g.client().clone();
            let rootn = c.mount(b"").expect("mount").root.id;
            let walk_fstat_close = |c: &Client| {
                let w = c.walk(rootn, &["a", "b", "file"]).expect("walk");
                c.fstat(w.nodes[2].id).expect("fstat");
                let ids: Vec<NodeId> = w.nodes.iter().map(|i| i.id).collect();
                c.close(&ids, &[]).expect("close");
            };
            let lat = time(scale(3_000), || walk_fstat_close(&c));
            let per_thread = scale(2_000);
            let t = Instant::now();
            std::thread::scope(|s| {
                for _ in 0..4 {
                    let c = &c;
                    s.spawn(move || {
                        for _ in 0..per_thread {
                            walk_fstat_close(c);
                        }
                    });
                }
            });
            let tput = (4 * per_thread) as f64 / t.elapsed().as_secs_f64();
            best[slot].0 = best[slot].0.min(lat);
            best[slot].1 = best[slot].1.max(tput);
        }
    }
    for (slot, threads) in [1, 2, 4].into_iter().enumerate() {
        println!(
            "  {threads} thread(s): 1 client {:>8.1} us per Walk+FStat+Close; 4 clients {:>7.0} per second",
            best[slot].0, best[slot].1
        );
    }
}
